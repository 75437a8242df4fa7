"""A real discord.py bot with the extension, connected to the local emulator."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from discord.ext import commands

from guildmeter.activity import ActivityStats
from guildmeter.bot import create_bot, use_endpoints
from guildmeter.config import Config
from guildmeter.ext.cog import StatsCog
from guildmeter.reports import DateRange
from guildmeter.store import Store

from tests.discord_emulator import Emulator
from tests.discord_emulator.server import MANAGE_GUILD, FakeGuild, FakeInteraction, Sent
from tests.helpers import Clock

START = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
MAY = DateRange(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))


@dataclass
class Running:
    emulator: Emulator
    bot: commands.Bot
    stats: ActivityStats
    clock: Clock

    @property
    def cog(self) -> StatsCog:
        # Not isinstance: unloading an extension makes discord.py drop guildmeter.ext.* from
        # sys.modules, so a later load brings a fresh StatsCog class.
        cog = self.bot.get_cog("Statistics")
        assert cog is not None and type(cog).__name__ == "StatsCog"
        return cog  # type: ignore[return-value]

    async def settle(self) -> None:
        """Let the bot process what the emulator sent."""
        for _ in range(20):
            await asyncio.sleep(0.01)

    @property
    def alpha(self) -> FakeGuild:
        return next(iter(self.emulator.guilds.values()))

    def channel(self, name: str, guild: FakeGuild | None = None) -> int:
        guild = guild or self.alpha
        return next(cid for cid, n in guild.text_channels.items() if n == name)

    async def say(self, channel: str, user_id: int, content: str, answers: int = 1) -> list[Sent]:
        """Post ``content`` as ``user_id`` in the Alpha channel; wait for ``answers`` replies."""
        before = len(self.emulator.sent)
        await self.emulator.message(self.alpha, self.channel(channel), user_id, content=content)
        sent = await self.emulator.wait_for_post(before + answers)
        await self.settle()
        return sent[before:]

    async def slash(
        self, user_id: int, name: str, subcommand: str | None = None, *,
        where: str = "general", **options: object,
    ) -> FakeInteraction:  # fmt: skip
        """Run a slash command in Alpha and wait for its (final) answer."""
        interaction = await self.emulator.slash(
            self.alpha, self.channel(where), user_id, name, dict(options), subcommand=subcommand
        )
        await asyncio.wait_for(interaction.answered.wait(), 15)
        await self.settle()
        return interaction


def gunzip_lines(data: bytes) -> list[str]:
    """A gzip CSV's lines (BOM removed)."""
    return gzip.decompress(data).decode("utf-8-sig").splitlines()


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    emulator = Emulator()
    alpha = emulator.add_guild(
        "Alpha", ["general", "art", "mods"], ["Lounge"], [(1001, "ann"), (1002, "bob")]
    )
    alpha.private_channels.add(next(c for c, n in alpha.text_channels.items() if n == "mods"))
    # ann moderates (Manage Server) and manages the bot (the seed's "Bot Manager" role)
    alpha.member_roles[1001] = [
        alpha.add_role("Moderators", MANAGE_GUILD),
        alpha.add_role("Bot Manager", 0),
    ]
    emulator.add_guild("Beta", ["general"], ["Voice"], [(1001, "ann"), (2002, "cyd")])
    await emulator.start()
    clock = Clock(START)
    config = Config(db=str(tmp_path / "e2e.db"), flush_interval_seconds=3600)
    stats = ActivityStats(Store.open(config.db), clock=clock)
    use_endpoints(emulator.api_base, emulator.gateway_url)
    bot = create_bot(config, stats, guild_ready_timeout=0.05)
    # A host bot without a global default: the extension must silence mentions itself.
    bot.allowed_mentions = None
    task = asyncio.create_task(bot.start("emulated-token"))
    await asyncio.wait_for(bot.wait_until_ready(), 15)
    yield Running(emulator, bot, stats, clock)
    await bot.close()
    await asyncio.wait_for(task, 15)
    await emulator.stop()
    stats.store.close()
    assert emulator.errors == [], "the bot sent payloads Discord would refuse"
    loud = [s.content[:60] for s in emulator.sent if s.allowed_mentions != {"parse": []}]
    assert loud == [], "every send must use allowed_mentions=AllowedMentions.none()"
