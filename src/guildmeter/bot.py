"""The standalone bot: discord.py with the guildmeter extension, and nothing else."""

from __future__ import annotations

from typing import Any

import discord
import yarl
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from guildmeter.activity import ActivityStats
from guildmeter.config import Config
from guildmeter.intents import intents_for

__all__ = ["INTENTS", "create_bot", "use_endpoints"]

#: Everything guildmeter can use: both privileged intents (see `guildmeter.intents`).
INTENTS = intents_for("all")


def use_endpoints(api_base: str | None, gateway: str | None) -> None:
    """Point discord.py at REST and gateway proxies (or the test emulator).

    discord.py reads both from class attributes; setting them is its supported way to
    change them, and applies to every client of the process.
    """
    if api_base:
        Route.BASE = api_base.rstrip("/")
    if gateway:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)


def create_bot(
    config: Config,
    stats: ActivityStats,
    *,
    prefix: str = ".",
    sync_commands: bool = True,
    intents: discord.Intents | None = None,
    **client_options: Any,
) -> commands.Bot:
    """A bot whose engine is created once, by the caller, and handed to the extension.

    With ``sync_commands`` the slash commands are registered with Discord at start-up
    (global commands: Discord may take a while to show them everywhere).
    ``intents``: default, those of ``config.intents`` (`guildmeter.intents.start_with_fallback`
    passes fewer when Discord refuses some). ``client_options`` go to discord.py's Bot (e.g.
    ``guild_ready_timeout``).
    """
    bot = commands.Bot(
        command_prefix=commands.when_mentioned_or(prefix),
        intents=intents if intents is not None else intents_for(config.intents),
        help_command=None,
        allowed_mentions=discord.AllowedMentions.none(),
        **client_options,
    )
    bot.guildmeter = stats  # type: ignore[attr-defined]
    bot.guildmeter_config = config  # type: ignore[attr-defined]
    #: Our own process: heavy work may run in worker processes (see ``heavy_work``).
    bot.guildmeter_standalone = True  # type: ignore[attr-defined]

    async def setup_hook() -> None:
        await bot.load_extension("guildmeter.ext")
        if sync_commands:
            await bot.tree.sync()

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    return bot
