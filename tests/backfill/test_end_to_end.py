"""The history backfill end to end: the real bot (discord.py) against the emulator holding
four months of history — channels, a voice chat, threads, forum posts, bots, webhooks,
an unreadable and an ignored channel, 429s — with a restart in the middle.

The backfilled reports must equal an independent count of the emulator's history in the
guild's local time; where the backfill meets live counting nothing is counted twice; past
months are anonymised and their keys gone; the month the bot runs in keeps its live key.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from discord.ext import commands
from sqlalchemy import select

from guildmeter.activity import ActivityStats
from guildmeter.bot import create_bot, use_endpoints
from guildmeter.config import Config
from guildmeter.events import EventKind
from guildmeter.reports import DateRange, compute_report
from guildmeter.store import Store, schema
from guildmeter.store.backfill import backfill_runs, snowflake_at

from tests.discord_emulator import Emulator
from tests.discord_emulator.history import (
    FORUM,
    PUBLIC_THREAD,
    TEXT,
    VOICE,
    History,
    HistoryChannel,
)
from tests.discord_emulator.server import MANAGE_GUILD, FakeGuild
from tests.helpers import Clock, database_bytes

ZONE = "Asia/Kolkata"
START = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)  # the bot's clock: live counting begins
DAYS = 100
TARGET = START - timedelta(days=DAYS)
ANN, BOB, CYD = 1001, 1002, 1003  # ann moderates; cyd opted out
BIG = 987_654_321_012_345_678  # a real-looking id: its digits cannot occur by chance
AUTHORS = [ANN, BOB, CYD, BIG, *range(2000, 2012)]
BOT_AUTHOR, HOOK = 9000, 9100


@dataclass
class World:
    emulator: Emulator
    history: History
    guild: FakeGuild
    counted: list[HistoryChannel]  # channels whose history the backfill may count
    ignored: HistoryChannel
    unreadable: HistoryChannel
    db: str
    clock: Clock

    def config(self) -> Config:
        return Config(
            db=self.db,
            flush_interval_seconds=3600,
            ignored_channels=frozenset({self.ignored.id}),
            backfill_progress_seconds=0.2,
        )

    async def start_bot(self) -> tuple[commands.Bot, asyncio.Task[None], ActivityStats]:
        config = self.config()
        stats = ActivityStats(
            Store.open(config.db), ignored_channels=config.ignored_channels, clock=self.clock
        )
        bot = create_bot(config, stats, guild_ready_timeout=0.05)
        task = asyncio.create_task(bot.start("emulated-token"))
        await asyncio.wait_for(bot.wait_until_ready(), 15)
        return bot, task, stats


def _fill(history: History, guild: FakeGuild, rng: random.Random) -> list[HistoryChannel]:
    """Channels, threads and forum posts with months of messages (some before the window)."""
    early = datetime(2025, 1, 1, tzinfo=UTC)
    channels = [history.add_channel(guild, n, TEXT, created=early) for n in ("general", "art")]
    channels.append(history.add_channel(guild, "Lounge", VOICE, created=early))  # its chat
    general = channels[0]
    forum = history.add_channel(guild, "help", FORUM, created=datetime(2025, 12, 1, tzinfo=UTC))
    posts = [
        history.add_channel(
            guild, f"post-{i}", PUBLIC_THREAD, parent=forum.id,
            created=datetime(2026, 1, 5, tzinfo=UTC) + timedelta(days=20 * i),
            archived_at=None if i >= 3
            else datetime(2026, 1, 10, tzinfo=UTC) + timedelta(days=22 * i),
        )
        for i in range(5)
    ]  # fmt: skip
    thread = history.add_channel(
        guild, "a-thread", PUBLIC_THREAD, parent=general.id,
        created=datetime(2026, 3, 1, tzinfo=UTC), archived_at=datetime(2026, 3, 20, tzinfo=UTC),
    )  # fmt: skip
    counted = channels + posts + [thread]
    first = datetime(2026, 1, 1, tzinfo=UTC)
    span = (START - timedelta(hours=1) - first).total_seconds()
    for channel in counted:
        created = datetime.fromtimestamp(((channel.id >> 22) + 1_420_070_400_000) / 1000, UTC)
        ends = channel.archived_at or START - timedelta(hours=1)
        for _ in range(rng.randint(600, 1200)):
            when = first + timedelta(seconds=rng.uniform(0, span))
            if not created < when < ends:
                continue
            roll = rng.random()
            if roll < 0.05:
                history.add(channel.id, BOT_AUTHOR, when, bot=True)
            elif roll < 0.08:
                history.add(channel.id, HOOK, when, webhook=True)
            else:
                history.add(channel.id, rng.choice(AUTHORS), when)
    return counted


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    rng = random.Random(14)
    emulator = Emulator()
    guild = emulator.add_guild("Alpha", [], [], [(ANN, "ann"), (BOB, "bob"), (CYD, "cyd")])
    guild.member_roles[ANN] = [guild.add_role("Moderators", MANAGE_GUILD)]
    for uid, joined in [(2000, "2026-02-03T10:00:00+00:00"), (2001, "2026-04-30T23:59:00+00:00"),
                        (2002, "2025-06-01T00:00:00+00:00")]:  # fmt: skip
        guild.members[uid] = {"id": str(uid), "username": f"u{uid}", "discriminator": "0",
                              "global_name": None, "avatar": None, "bot": False}  # fmt: skip
        guild.joined_at[uid] = joined
    guild.joined_at[BOB] = "2026-03-15T08:00:00+00:00"
    history = History(emulator, global_per_second=50, bucket_limit=2, bucket_window=1.0)
    counted = _fill(history, guild, rng)
    ignored = history.add_channel(
        guild, "off-topic", TEXT, created=datetime(2025, 1, 1, tzinfo=UTC)
    )
    unreadable = history.add_channel(
        guild, "secret", TEXT, created=datetime(2025, 1, 1, tzinfo=UTC)
    )
    history.add_channel(
        guild, "ignored-thread", PUBLIC_THREAD, parent=ignored.id,
        created=datetime(2026, 2, 1, tzinfo=UTC),
    )  # fmt: skip
    for channel in (ignored, unreadable, history.channels[max(history.channels)]):
        for day in range(1, 60):
            history.add(channel.id, BOB, datetime(2026, 2, 1, tzinfo=UTC) + timedelta(hours=day))
    history.unreadable.add(unreadable.id)
    mods = history.add_channel(guild, "mods", TEXT, created=datetime(2025, 1, 1, tzinfo=UTC))
    guild.private_channels.add(mods.id)
    history.force_429 = 3
    await emulator.start(history.routes)
    use_endpoints(emulator.api_base, emulator.gateway_url)
    db = str(tmp_path / "backfill.db")
    store = Store.open(db)
    store.set_timezone(guild.id, ZONE, START)
    stats = ActivityStats(store)
    stats.opt_out(guild.id, CYD)
    store.close()
    yield World(emulator, history, guild, counted, ignored, unreadable, db, Clock(START))
    await emulator.stop()
    assert emulator.errors == [], "the bot sent requests Discord would refuse"
    loud = [s.content[:60] for s in emulator.sent if s.allowed_mentions != {"parse": []}]
    assert loud == [], "every send must use allowed_mentions=AllowedMentions.none()"


def _expected(world: World) -> Counter[tuple[int, datetime]]:
    """Independently: every countable message from TARGET on, per (channel, local hour)."""
    zone = ZoneInfo(ZONE)
    target = snowflake_at(TARGET)
    found: Counter[tuple[int, datetime]] = Counter()
    for channel in world.counted:
        for mid, author, flags in zip(channel.ids, channel.authors, channel.flags, strict=True):
            if mid < target or flags or author == CYD:
                continue
            when = datetime.fromtimestamp(((mid >> 22) + 1_420_070_400_000) / 1000, zone)
            found[(channel.id, when.replace(minute=0, second=0, microsecond=0))] += 1
    return found


async def _wait(predicate: object, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_backfill_with_a_restart_equals_an_independent_count(world: World) -> None:
    emu, history, guild = world.emulator, world.history, world.guild
    general, art = world.counted[0], world.counted[1]
    post = next(c for c in world.counted if c.name == "post-4")
    bot, task, stats = await world.start_bot()
    # Live counting from START: messages in the history AND delivered live. One was made
    # two seconds before the bot's start and arrives after it (a clock a little ahead).
    await history.live(guild, art.id, BOB, START - timedelta(seconds=2))
    await history.live(guild, general.id, ANN, START + timedelta(minutes=1))
    await history.live(guild, post.id, BOB, START + timedelta(minutes=2))
    await history.live(guild, general.id, 9999, START + timedelta(minutes=3), bot=True)
    await asyncio.sleep(0.2)

    interaction = await emu.slash(
        guild, general.id, ANN, "userstats", {"days": str(DAYS)}, subcommand="backfill"
    )
    await asyncio.wait_for(interaction.answered.wait(), 15)
    assert "Backfill started" in interaction.replies[0].content
    assert "parts" in interaction.replies[0].content  # what cannot be recovered
    cog = bot.get_cog("Backfill")
    assert cog is not None
    runner = cog.running(guild.id)  # type: ignore[attr-defined]
    assert runner is not None
    await _wait(lambda: runner.progress.messages_counted > 500)
    await bot.close()  # a restart in the middle
    await asyncio.wait_for(task, 15)
    stats.store.close()
    assert runner.progress.state == "paused"
    assert any("Backfill running" in r.content for r in interaction.replies)
    assert "Backfill paused" in interaction.replies[-1].content
    assert history.bucket_429s >= 3  # the forced ones, at least: retried by discord.py

    world.clock.now = START + timedelta(minutes=30)
    bot, task, stats = await world.start_bot()  # resumes on READY
    cog = bot.get_cog("Backfill")
    await _wait(lambda: cog.running(guild.id) is not None)  # type: ignore[union-attr]
    resumed = cog.running(guild.id)  # type: ignore[union-attr]
    await _wait(lambda: resumed.progress.state == "done", timeout=90)
    assert resumed.progress.resumed
    assert resumed.progress.channels_unreadable == 1
    await history.live(guild, art.id, ANN, START + timedelta(minutes=31))
    await asyncio.sleep(0.1)
    await bot.close()
    await asyncio.wait_for(task, 15)
    store = stats.store
    try:
        _check_counts(world, store)
        _check_months(world, store)
        with store.engine.connect() as conn:
            state = conn.execute(select(backfill_runs.c.state)).scalar()
        assert state == "done"
    finally:
        store.close()
    raw = database_bytes(Path(world.db))
    assert str(BIG).encode() not in raw  # no raw id anywhere in the files
    # As a stored integer, too. Only a snowflake-sized id makes a needle that cannot occur by
    # chance: an 8-byte 1003 is six zero bytes and 0x03eb, as in any page's offsets.
    for needle in (BIG.to_bytes(8, "big"), BIG.to_bytes(8, "little")):
        assert needle not in raw


def _check_counts(world: World, store: Store) -> None:
    zone = ZoneInfo(ZONE)
    guild = world.guild
    calendar = store.calendars.get(guild.id)
    assert calendar.zone_name_for_month(202602) == ZONE
    expected = _expected(world)
    stored: Counter[tuple[int, datetime]] = Counter()
    for (bucket, event, channel, _label), count in store.activity_totals(guild.id).items():
        if event == int(EventKind.MSG):
            local = calendar.bucket_start(bucket).astimezone(zone)
            stored[(channel, local)] += count
    # Ignored and unreadable channels, bots, webhooks and cyd: nothing. Live messages: once.
    assert stored == expected
    assert all(c not in {world.ignored.id, world.unreadable.id} for c, _ in stored)
    # The reports, in local time: each month's hourly report against the same count.
    for month in (202601, 202602, 202603, 202604, 202605):
        first = datetime(month // 100, month % 100, 1, tzinfo=zone)
        after = datetime(month // 100 + month % 100 // 12, month % 100 % 12 + 1, 1, tzinfo=zone)
        report = compute_report(store, guild.id, "hourly", DateRange(first, after, calendar))
        by_hour = Counter({int(row.case): row.messages for row in report.rows})
        wanted: Counter[int] = Counter()
        users: set[int] = set()
        for (_c, local), count in expected.items():
            if first <= local < after:
                wanted[local.hour] += count
        for channel in world.counted:
            for mid, author, flags in zip(channel.ids, channel.authors, channel.flags, strict=True):
                local = datetime.fromtimestamp(((mid >> 22) + 1_420_070_400_000) / 1000, zone)
                countable = mid >= snowflake_at(TARGET) and not flags and author != CYD
                if countable and first <= local < after:
                    users.add(author)
        assert +by_hour == +wanted, month
        full = compute_report(store, guild.id, "full", DateRange(first, after, calendar)).rows[0]
        # One member row per author and month, though the run was interrupted and resumed.
        assert full.active_users == len(users), month
    # Joins of current members inside the window (bob, 2000, 2001), by their joined_at.
    joins = sum(
        count for (_b, event, _c, _l), count in store.activity_totals(guild.id).items()
        if event == int(EventKind.JOIN)
    )  # fmt: skip
    assert joins == 3


def _check_months(world: World, store: Store) -> None:
    summary = {row["month"]: row for row in store.month_summary(world.guild.id)}
    for month in (202601, 202602, 202603, 202604):
        assert summary[month]["pseudonyms"] == 0, month
        assert not summary[month]["key_present"], month
    assert summary[202605]["pseudonyms"] > 0 and summary[202605]["key_present"]
    keys = schema.guild_keys
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(keys.c.month, keys.c.key).where(keys.c.guild_id == world.guild.id)
        )
        destroyed = {int(r.month) for r in rows if r.key is None}
    assert {202601, 202602, 202603, 202604} <= destroyed


async def test_prefix_backfill_reports_progress_and_cancel_anonymises_what_it_wrote(
    world: World,
) -> None:
    emu, guild = world.emulator, world.guild
    mods = next(c for c, n in guild.text_channels.items() if n == "mods")
    bot, task, stats = await world.start_bot()

    async def say(user: int, text: str) -> str:
        """The bot's reply: its first new post, not a progress edit that came between."""
        before = len(emu.sent)
        await emu.message(guild, mods, user, content=text)
        return (await emu.wait_for_new_post(before)).content

    assert "is now a moderator channel" in await say(ANN, f".statsconfig modchannel <#{mods}>")
    assert "Manage Server or Administrator" in await say(BOB, ".userstats backfill 10")
    assert "from 1 to 366" in await say(ANN, ".userstats backfill 400")
    assert "No history backfill is running" in await say(ANN, ".userstats backfill cancel")
    started = await say(ANN, f".userstats backfill {DAYS}")
    assert "Backfill started" in started and "cannot be recovered" in started
    cog = bot.get_cog("Backfill")
    runner = cog.running(guild.id)  # type: ignore[union-attr]
    await _wait(lambda: runner.progress.messages_counted > 0)
    assert "already running" in await say(ANN, f".userstats backfill {DAYS}")
    assert "Cancelling" in await say(ANN, ".userstats backfill cancel")
    await _wait(lambda: runner.progress.state == "cancelled")

    def edits() -> list[str]:
        return [s.content for s in emu.sent if s.channel_id == mods]

    # The final edit follows the cancel by a REST round trip: on a loaded machine, seconds.
    await _wait(lambda: any(e.startswith("Backfill cancelled") for e in edits()), timeout=30)
    await bot.close()
    await asyncio.wait_for(task, 15)
    store = stats.store
    try:
        with store.engine.connect() as conn:
            assert conn.execute(select(backfill_runs.c.state)).scalar() == "cancelled"
        # Past months it wrote are anonymised at once; nothing is left to resume.
        for row in store.month_summary(guild.id):
            if row["month"] < 202605:
                assert row["pseudonyms"] == 0 and not row["key_present"], row
    finally:
        store.close()
    bot, task, stats = await world.start_bot()
    await asyncio.sleep(0.3)
    assert bot.get_cog("Backfill").running(guild.id) is None  # type: ignore[union-attr]
    await bot.close()
    await asyncio.wait_for(task, 15)
    stats.store.close()
