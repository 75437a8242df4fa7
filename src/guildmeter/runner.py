"""Running the standalone bot from the command line, with one-line answers for failures.

Discord unreachable and a refused token are things the person starting the bot must fix
(network, token), like a bad argument: they become a `GuildmeterError` (exit status 2), not
discord.py's page of chained tracebacks. Refused privileged intents are not fatal: the bot
reconnects without them (`guildmeter.intents.start_with_fallback`) and logs what is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import aiohttp
import discord
from discord.ext import commands

from guildmeter.activity import ActivityStats
from guildmeter.bot import create_bot, use_endpoints
from guildmeter.config import Config
from guildmeter.errors import GuildmeterError
from guildmeter.intents import intents_for, start_with_fallback

__all__ = ["run_bot"]


def run_bot(
    config: Config,
    token: str,
    api_base: str | None,
    gateway: str | None,
    prefix: str,
    *,
    verbose: bool = False,
) -> None:
    """Start the bot and run it until Ctrl-C or a failure (see the module docstring).

    discord.py logs warnings and errors; its INFO lines (connecting, resuming) with -v. Where
    logging is set up already (the CLI's), every line goes through that one handler, once.
    """
    stats = ActivityStats.from_config(config)
    use_endpoints(api_base, gateway)
    # The bot counts voice from voice-state events and never joins a voice channel: the
    # libraries voice connections need (PyNaCl, davey) are not missing, whatever
    # discord.py warns at start.
    discord.VoiceClient.warn_nacl = False
    discord.VoiceClient.warn_dave = False
    level = logging.INFO if verbose else logging.WARNING
    root = logging.getLogger()
    handler: logging.Handler | None = None
    if root.handlers:
        root.setLevel(level)
    else:
        handler = logging.StreamHandler()
        discord.utils.setup_logging(handler=handler, level=level)

    def make_bot(intents: discord.Intents) -> commands.Bot:
        return create_bot(config, stats, prefix=prefix, intents=intents)

    async def start() -> None:
        # SIGTERM (docker stop, systemctl stop) ends the bot like Ctrl-C: the main task is
        # cancelled, so the extension unloads and flushes what memory holds.
        task = asyncio.current_task()
        if task is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await start_with_fallback(make_bot, token, intents_for(config.intents))

    where = api_base or "discord.com"
    try:
        asyncio.run(start())
    except (KeyboardInterrupt, asyncio.CancelledError):
        return
    except discord.LoginFailure:
        raise GuildmeterError(
            "Discord refused the token in DISCORD_TOKEN: copy it again from the developer "
            "portal (Bot, Reset Token)"
        ) from None
    except discord.PrivilegedIntentsRequired:  # pragma: no cover - 4014 is for privileged ones
        raise GuildmeterError(
            "Discord refused even the unprivileged gateway intents (close code 4014)"
        ) from None
    except (aiohttp.ClientError, discord.GatewayNotFound, OSError, TimeoutError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0] or type(exc).__name__
        raise GuildmeterError(
            f"cannot reach Discord ({where}): {reason}. Check the network connection, or "
            "--api-base/--gateway"
        ) from None
    except discord.HTTPException as exc:
        raise GuildmeterError(f"Discord answered {exc.status}: {exc.text[:100]}") from None
    finally:
        if handler is not None:
            root.removeHandler(handler)
