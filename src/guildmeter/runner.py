"""Running the standalone bot from the command line, with one-line answers for failures.

Discord unreachable, a refused token and missing privileged intents are things the person
starting the bot must fix (network, token, developer portal), like a bad argument: they
become a `GuildmeterError` (exit status 2), not discord.py's page of chained tracebacks.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import discord

from guildmeter.activity import ActivityStats
from guildmeter.bot import create_bot, use_endpoints
from guildmeter.config import Config
from guildmeter.errors import GuildmeterError

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

    discord.py logs warnings and errors; its INFO lines (connecting, resuming) with -v.
    """
    stats = ActivityStats.from_config(config)
    use_endpoints(api_base, gateway)
    bot = create_bot(config, stats, prefix=prefix)
    handler = logging.StreamHandler()
    discord.utils.setup_logging(handler=handler, level=logging.INFO if verbose else logging.WARNING)

    async def start() -> None:
        async with bot:
            await bot.start(token)

    where = api_base or "discord.com"
    try:
        asyncio.run(start())
    except KeyboardInterrupt:
        return
    except discord.LoginFailure:
        raise GuildmeterError(
            "Discord refused the token in DISCORD_TOKEN: copy it again from the developer "
            "portal (Bot, Reset Token)"
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise GuildmeterError(
            "the bot needs the Server Members and Message Content intents: enable both in "
            "the developer portal (Bot, Privileged Gateway Intents)"
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
        logging.getLogger().removeHandler(handler)
