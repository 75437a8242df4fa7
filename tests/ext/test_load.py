"""The bot under load: a high-cardinality burst while moderators run heavy commands.

The flush runs every second on the real clock. Every message must reach the database
within two flush intervals of the bot receiving it, however many dumps and ``/stats`` run
at the same time (they have their own threads and limits), and every command gets an
answer. A flush that raises is logged and the next one runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import discord
import pytest
from discord.ext import commands
from sqlalchemy import func, select

from guildmeter.activity import ActivityStats
from guildmeter.bot import create_bot, use_endpoints
from guildmeter.config import Config
from guildmeter.events import EventKind
from guildmeter.store import Store, schema

from tests.discord_emulator import Emulator
from tests.discord_emulator.server import MANAGE_GUILD, FakeGuild, FakeInteraction

FLUSH_SECONDS = 1.0
MODERATORS = (1001, 1002, 1003)
SENTINEL = 999_999  # the last message of a burst: when the bot sees it, it saw them all


@dataclass
class Loaded:
    emulator: Emulator
    guild: FakeGuild
    bot: commands.Bot
    stats: ActivityStats
    sentinel_seen: asyncio.Event


def _messages_stored(store: Store, guild_id: int) -> int:
    act = schema.activity
    with store.engine.connect() as conn:
        total = conn.scalar(
            select(func.coalesce(func.sum(act.c.count), 0)).where(
                act.c.guild_id == guild_id, act.c.event == int(EventKind.MSG)
            )
        )
    return int(total or 0)


def _seed_history(store: Store, guild_id: int, channel_id: int) -> None:
    """Months of earlier counts, so that the moderators' year-long dumps have work to do."""
    history = ActivityStats(store)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for day in range(120):
        for user in range(500):
            history.collector.message(
                guild_id, channel_id, 50_000 + user, start + timedelta(days=day, hours=user % 24)
            )
        if day % 30 == 29:
            history.flush(start + timedelta(days=day))
    history.flush(start + timedelta(days=120))


@pytest.fixture
async def loaded(tmp_path: Path) -> AsyncIterator[Loaded]:
    emulator = Emulator()
    guild = emulator.add_guild(
        "Load",
        ["general", "art", "memes", "help", "mods"],
        [],
        [(m, f"mod{m}") for m in MODERATORS] + [(u, f"user{u}") for u in range(100_000, 100_020)],
    )
    mod_role = guild.add_role("Moderators", MANAGE_GUILD)
    for moderator in MODERATORS:
        guild.member_roles[moderator] = [mod_role]
    guild.private_channels.add(list(guild.text_channels)[-1])
    await emulator.start()
    config = Config(db=str(tmp_path / "load.db"), flush_interval_seconds=FLUSH_SECONDS)
    store = Store.open(config.db)
    _seed_history(store, guild.id, next(iter(guild.text_channels)))
    stats = ActivityStats(store)
    use_endpoints(emulator.api_base, emulator.gateway_url)
    bot = create_bot(config, stats, guild_ready_timeout=0.05)
    sentinel_seen = asyncio.Event()

    async def on_message(message: discord.Message) -> None:
        if message.author.id == SENTINEL:
            sentinel_seen.set()

    bot.add_listener(on_message)
    task = asyncio.create_task(bot.start("emulated-token"))
    await asyncio.wait_for(bot.wait_until_ready(), 15)
    yield Loaded(emulator, guild, bot, stats, sentinel_seen)
    await bot.close()
    await asyncio.wait_for(task, 30)
    await emulator.stop()
    store.close()
    assert emulator.errors == [], "the bot sent payloads Discord would refuse"


async def _heavy_commands(loaded: Loaded, members: range) -> list[FakeInteraction]:
    """A year-long dump from every moderator (two at a time per guild, the rest refused),
    then more dumps and ``/stats 365`` spam (cooldowns and limits answer the excess)."""
    emu, guild = loaded.emulator, loaded.guild
    general = next(iter(guild.text_channels))
    year = {"daterange": "2025-12-02 to 2026-12-01"}
    sent = []
    for moderator in MODERATORS:
        dump = await emu.slash(guild, general, moderator, "userstats", year, subcommand="dump")
        while not dump.callbacks:  # acknowledged: it holds its slot (or was refused)
            await asyncio.sleep(0.01)
        sent.append(dump)
    for moderator in MODERATORS:
        sent.append(
            await emu.slash(guild, general, moderator, "userstats", year, subcommand="dump")
        )
    for member in members:
        for _ in range(3):
            sent.append(await emu.slash(guild, general, member, "stats", {"days": 365}))
    return sent


async def test_a_burst_reaches_the_database_within_two_flushes_while_heavy_commands_run(
    loaded: Loaded,
) -> None:
    emu, guild, store = loaded.emulator, loaded.guild, loaded.stats.store
    channels = list(guild.text_channels)[:4]
    before = _messages_stored(store, guild.id)
    heavy = await _heavy_commands(loaded, range(100_000, 100_010))
    burst = 20_000
    for i in range(burst):  # 10,000 distinct authors over four channels: high cardinality
        await emu.message(guild, channels[i % 4], 100_000 + i % 10_000)
        if i == burst // 2:
            heavy.extend(await _heavy_commands(loaded, range(100_010, 100_020)))
    await emu.message(guild, channels[0], SENTINEL)
    await asyncio.wait_for(loaded.sentinel_seen.wait(), 60)
    seen_at = time.monotonic()
    expected = before + burst + 1
    while _messages_stored(store, guild.id) < expected:
        assert time.monotonic() - seen_at < 2 * FLUSH_SECONDS + 1.0, (
            f"{_messages_stored(store, guild.id) - before} of {burst + 1} stored "
            f"{time.monotonic() - seen_at:.1f} s after the bot saw the last message"
        )
        await asyncio.sleep(0.05)
    assert _messages_stored(store, guild.id) == expected
    # Every command was answered: a file, an embed, or a one-line refusal or cooldown.
    await asyncio.wait_for(asyncio.gather(*(i.answered.wait() for i in heavy)), 120)
    answers = [i.replies[-1] for i in heavy]
    assert any(a.files and a.content.startswith("Raw statistics") for a in answers)
    assert all(a.files or a.embeds or a.content for a in answers)
    assert not any("Something went wrong" in a.content for a in answers)


async def test_a_flush_that_raises_is_logged_and_the_next_one_runs(
    loaded: Loaded, caplog: pytest.LogCaptureFixture
) -> None:
    emu, guild, stats = loaded.emulator, loaded.guild, loaded.stats
    real_write_batch = stats.store.write_batch
    calls = {"n": 0}

    def write_batch_failing_once(batch):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("an unexpected bug in one flush")
        return real_write_batch(batch)

    stats.store.write_batch = write_batch_failing_once  # type: ignore[method-assign]
    before = _messages_stored(stats.store, guild.id)
    for i in range(100):
        await emu.message(guild, next(iter(guild.text_channels)), 200_000 + i)
    deadline = time.monotonic() + 5 * FLUSH_SECONDS
    while _messages_stored(stats.store, guild.id) < before + 100:
        assert time.monotonic() < deadline, "the flush loop did not recover"
        await asyncio.sleep(0.05)
    assert calls["n"] >= 2
    assert "an unexpected bug in one flush" in caplog.text
    cog = loaded.bot.get_cog("Statistics")
    assert cog is not None and cog.flush_loop.is_running()  # type: ignore[attr-defined]
