"""The dashboard inside the bot's process (``dashboard = true``): one process for small bots.

It shares the bot's loop and store; moderators are checked against the bot's own view of
the member (its cache, or a member fetch), so no second token or process is needed.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from discord.ext import commands

from guildmeter.config import Config
from guildmeter.store import Store

__all__ = ["DashboardCog"]


class DashboardCog(commands.Cog, name="Dashboard"):
    """Starts the web server with the extension and stops it on unload."""

    def __init__(self, bot: commands.Bot, config: Config, store: Store) -> None:
        self.bot = bot
        self.config = config
        self.store = store
        self.runner: web.AppRunner | None = None

    async def cog_load(self) -> None:
        from guildmeter.web.server import start_in_bot

        self.runner = await start_in_bot(self.bot, self.config, self.store)

    async def cog_unload(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def app(self) -> Any:
        return None if self.runner is None else self.runner.app
