"""``guildmeter backfill``: the history backfill from the command line, with a progress bar.

The options are declared in ``cli.py``; the work is here. It reads Discord with
discord.py's own HTTP client (its rate limiting) and the bot's token, and writes through
the same runner as ``/userstats backfill``: a run started by the bot or here continues
where the other stopped, and both refuse to run one guild twice at once.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING

import click

from guildmeter.errors import GuildmeterError

if TYPE_CHECKING:
    from guildmeter.config import Config
    from guildmeter.store import Store

__all__ = ["run_backfill"]


def run_backfill(
    store: Store,
    config: Config,
    guild: int,
    days: int,
    token: str,
    api_base: str | None,
    *,
    requests_per_second: float = 46.0,
) -> None:
    """Count the guild's history back ``days`` days; prints what was done.

    Nothing is written before Discord has answered: the token is checked (``/users/@me``)
    and the channels listed first, so a refused token, an unknown server or an unreachable
    API leave the database as it was.
    """
    import aiohttp
    import discord
    from discord.http import HTTPClient
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from guildmeter.backfill import Backfill, HistorySource, describe
    from guildmeter.bot import use_endpoints
    from guildmeter.cli import _console
    from guildmeter.ext.backfill import joins_note

    use_endpoints(api_base, None)
    executor = ThreadPoolExecutor(1, thread_name_prefix="guildmeter-backfill")

    async def main() -> tuple[str, bool]:
        http = HTTPClient(asyncio.get_running_loop())
        try:
            await http.static_login(token)
            source = HistorySource(http, guild, requests_per_second=requests_per_second)
            runner = Backfill(
                store,
                source,
                guild,
                days,
                executor=executor,
                ignored_users=config.ignored_users,
                ignored_channels=config.ignored_channels,
                anonymise_grace=timedelta(seconds=config.anonymise_grace_seconds),
                members=source.members,
            )
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} channels"),
                TimeElapsedColumn(),
            )
            console = _console()
            with Progress(*columns, console=console, transient=True,
                          disable=not console.is_terminal) as bar:  # fmt: skip
                shown = bar.add_task("Reading history", total=None)
                task = asyncio.create_task(runner.run())
                while not task.done():
                    await asyncio.wait({task}, timeout=0.5)
                    p = runner.progress
                    bar.update(
                        shown,
                        total=p.channels_total or None,
                        completed=p.channels_done,
                        description=f"{p.messages_counted:,} messages counted",
                    )
                progress = await task
            return describe(progress), progress.joins is not None
        except discord.LoginFailure:
            raise GuildmeterError(
                "Discord refused the token in DISCORD_TOKEN: copy it again from the developer "
                "portal (Bot, Reset Token)"
            ) from None
        except discord.HTTPException as exc:
            raise GuildmeterError(f"Discord answered {exc.status}: {exc.text[:100]}") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            reason = (str(exc).splitlines() or [""])[0] or type(exc).__name__
            raise GuildmeterError(
                f"cannot reach Discord ({api_base or 'discord.com'}): {reason}. Check the "
                "network connection, or --api-base"
            ) from None
        finally:
            await http.close()

    try:
        text, joins = asyncio.run(main())
    finally:
        executor.shutdown(wait=True)
    click.echo(f"Backfill done: {text}.")
    click.echo(joins_note(joins))
