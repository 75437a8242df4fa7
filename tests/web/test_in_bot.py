"""The dashboard inside the bot's process (``dashboard = true``): moderators are checked
against the bot's own view of the member, which follows role changes at once."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from discord.ext import commands

from guildmeter.activity import ActivityStats
from guildmeter.bot import create_bot, use_endpoints
from guildmeter.config import Config
from guildmeter.store import Store
from guildmeter.web.app import dashboard_of

from tests.discord_emulator import Emulator
from tests.discord_emulator.server import MANAGE_GUILD, FakeGuild

ANN, BOB = 1001, 1002


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class InBot:
    emulator: Emulator
    bot: commands.Bot
    guild: FakeGuild
    url: str


@pytest.fixture
async def in_bot(tmp_path: Path) -> AsyncIterator[InBot]:
    emulator = Emulator()
    guild = emulator.add_guild("Alpha", ["general"], ["Lounge"], [(ANN, "ann"), (BOB, "bob")])
    moderators = guild.add_role("Moderators", MANAGE_GUILD)
    guild.member_roles[ANN] = [moderators]
    await emulator.start()
    port = _free_port()
    config = Config(
        db=str(tmp_path / "bot.db"), flush_interval_seconds=3600, dashboard=True,
        dashboard_port=port, oauth_client_id=emulator.oauth_client_id,
        oauth_client_secret=emulator.oauth_client_secret,
        oauth_authorize_url=emulator.oauth_authorize_url, discord_api_base=emulator.api_base,
    )  # fmt: skip
    stats = ActivityStats(Store.open(config.db))
    use_endpoints(emulator.api_base, emulator.gateway_url)
    bot = create_bot(config, stats, guild_ready_timeout=0.05)
    task = asyncio.create_task(bot.start("emulated-token"))
    await asyncio.wait_for(bot.wait_until_ready(), 15)
    general = next(iter(guild.text_channels))
    await emulator.message(guild, general, BOB, datetime.now(UTC), "hello")
    await asyncio.sleep(0.2)
    await bot.get_cog("Statistics").flush()  # type: ignore[union-attr]
    try:
        yield InBot(emulator, bot, guild, f"http://127.0.0.1:{port}")
    finally:
        await bot.close()
        await asyncio.wait_for(task, 15)
        await emulator.stop()
        stats.store.close()


async def _login(site: InBot, client: aiohttp.ClientSession, user: int) -> str:
    site.emulator.oauth_user = user
    async with client.get(f"{site.url}/login") as r:
        assert r.status == 200
        return await r.text()


async def test_dashboard_served_by_the_bot(in_bot: InBot) -> None:
    cog = in_bot.bot.get_cog("Dashboard")
    assert cog is not None and dashboard_of(cog.app).oauth is not None  # type: ignore[attr-defined]
    page = f"/g/{in_bot.guild.id}/api/tiles?period=today"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        listing = await _login(in_bot, client, ANN)
        assert f"/g/{in_bot.guild.id}" in listing and "Alpha" in listing  # the bot's name
        async with client.get(in_bot.url + page) as r:
            assert r.status == 200
            tiles = {t["key"]: t["value"] for t in (await r.json())["tiles"]}
        assert tiles["messages"] == 1
        fetches = in_bot.emulator.member_fetches
        await in_bot.emulator.set_roles(in_bot.guild, ANN, [])  # no longer a moderator
        await asyncio.sleep(0.2)
        await asyncio.sleep(3.1)  # beyond the check's short cache
        async with client.get(in_bot.url + page) as r:
            assert r.status == 403
        assert in_bot.emulator.member_fetches == fetches  # from the bot's cache, no REST
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        listing = await _login(in_bot, client, BOB)
        assert 'id="no-guilds"' in listing
        async with client.get(in_bot.url + page) as r:
            assert r.status == 403
