"""The runner alone (what ``guildmeter backfill`` runs), with discord.py's HTTP client
against the emulator, on SQLite and PostgreSQL: runs again count nothing twice, a deeper
run only what lies further back, and a database that stays down stops the run (no hang)."""

from __future__ import annotations

import asyncio
import gzip
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import discord
import pytest
from discord.http import HTTPClient

from guildmeter.activity import ActivityStats
from guildmeter.backfill import Backfill, HistorySource, describe
from guildmeter.backfill.counting import HistoryCounter
from guildmeter.bot import use_endpoints
from guildmeter.collect.accumulator import CountKey
from guildmeter.errors import StoreUnavailableError
from guildmeter.events import EventKind
from guildmeter.export import import_files
from guildmeter.privacy.keyring import Keyring
from guildmeter.privacy.optout import OptOuts
from guildmeter.reports.snapshots import build_month_snapshots
from guildmeter.store import Store
from guildmeter.store.backfill import (
    GUILD_WIDE,
    peek_run,
    read_cursors,
    read_live_starts,
    record_live_starts,
    snowflake_at,
)
from guildmeter.store.retention import delete_member_rows

from tests.discord_emulator import Emulator
from tests.discord_emulator.history import TEXT, History
from tests.discord_emulator.server import FakeGuild
from tests.helpers import Clock

NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
async def discord_http() -> AsyncIterator[tuple[HTTPClient, History, FakeGuild]]:
    emulator = Emulator()
    guild = emulator.add_guild("Alpha", [], [], [(1001, "ann")])
    history = History(emulator)
    early = datetime(2025, 1, 1, tzinfo=UTC)
    for name in ("general", "art"):
        channel = history.add_channel(guild, name, TEXT, created=early)
        for hour in range(0, 24 * 60, 5):  # sixty days back from NOW, one every 5 hours
            history.add(channel.id, 2000 + hour % 7, NOW - timedelta(hours=hour + 1))
    await emulator.start(history.routes)
    use_endpoints(emulator.api_base, None)
    http = HTTPClient(asyncio.get_running_loop())
    await http.static_login("emulated-token")
    yield http, history, guild
    await http.close()
    await emulator.stop()
    assert emulator.errors == []


def _messages(store: Store, guild_id: int) -> int:
    return sum(
        count for (_h, event, _c, _l), count in store.activity_totals(guild_id).items()
        if event == int(EventKind.MSG)
    )  # fmt: skip


def _in_window(history: History, days: int) -> int:
    since = NOW - timedelta(days=days)
    return sum(
        1
        for channel in history.channels.values()
        for mid in channel.ids
        if datetime.fromtimestamp(((mid >> 22) + 1_420_070_400_000) / 1000, UTC) >= since
    )


async def test_runs_again_count_nothing_twice_and_deeper_runs_only_what_is_older(
    store: Store, discord_http: tuple[HTTPClient, History, FakeGuild]
) -> None:
    http, history, guild = discord_http
    clock = Clock(NOW)
    with ThreadPoolExecutor(1) as executor:

        async def backfill(days: int) -> None:
            source = HistorySource(http, guild.id)
            await Backfill(store, source, guild.id, days, executor=executor, clock=clock).run()

        await backfill(20)
        assert _messages(store, guild.id) == _in_window(history, 20)
        await backfill(20)  # again: nothing new
        assert _messages(store, guild.id) == _in_window(history, 20)
        clock.now = NOW + timedelta(days=1)  # a day later, deeper: only the older part
        await backfill(45)
        assert _messages(store, guild.id) == _in_window(history, 44)
        await backfill(10)  # shallower: nothing
        assert _messages(store, guild.id) == _in_window(history, 44)
    assert set(read_cursors(store, guild.id)) == set(history.channels)


async def test_a_database_that_stays_down_stops_the_run(
    store: Store,
    discord_http: tuple[HTTPClient, History, FakeGuild],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from guildmeter.backfill import runner as module

    def down(*_args: object) -> int:
        raise StoreUnavailableError("database unavailable or busy: injected")

    monkeypatch.setattr(module, "write_progress", down)
    monkeypatch.setattr(module, "_WRITE_ATTEMPTS", 2)
    monkeypatch.setattr(module, "_QUEUE_PAGES", 2)  # the readers fill it at once
    http, _history, guild = discord_http
    with ThreadPoolExecutor(1) as executor:
        runner = Backfill(
            store, HistorySource(http, guild.id), guild.id, 60, executor=executor, clock=Clock(NOW)
        )
        with pytest.raises(StoreUnavailableError):
            await asyncio.wait_for(runner.run(), 30)
    assert runner.progress.state == "failed"
    assert _messages(store, guild.id) == 0


async def test_a_crash_mid_run_resumes_where_the_last_commit_left_it(
    store: Store,
    discord_http: tuple[HTTPClient, History, FakeGuild],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from guildmeter.backfill import runner as module

    http, history, guild = discord_http
    monkeypatch.setattr(module, "_WRITE_PAGES", 1)  # a commit per page: a crash between
    with ThreadPoolExecutor(1) as executor:
        first = Backfill(
            store, HistorySource(http, guild.id, requests_per_second=10), guild.id, 60,
            executor=executor, clock=Clock(NOW), concurrency=1,
        )  # fmt: skip
        task = asyncio.create_task(first.run())
        while first.progress.messages_counted == 0:
            await asyncio.sleep(0.01)
        # The process dies: no clean stop, its claim still looks alive.
        monkeypatch.setattr(module, "release_run", lambda *_args: None)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        partial = _messages(store, guild.id)
        assert 0 < partial < _in_window(history, 60)
        resumed = Backfill(
            store, HistorySource(http, guild.id), guild.id, None, executor=executor,
            clock=Clock(NOW), claim_seconds=0.3,
        )  # fmt: skip
        with pytest.raises(module.BackfillBusy):  # the dead claim has not lapsed yet
            await resumed.run()
        await asyncio.sleep(0.4)
        await resumed.run()
    assert resumed.progress.state == "done"
    assert _messages(store, guild.id) == _in_window(history, 60)


async def test_messages_of_a_month_past_retention_are_said_discarded_not_counted(
    store: Store, discord_http: tuple[HTTPClient, History, FakeGuild]
) -> None:
    """March holds older counts (an import) whose member rows retention deleted: the
    backfill's March messages are discarded, and its result says how many and why."""
    http, history, guild = discord_http
    stats = ActivityStats(store)
    stats.collector.message(guild.id, 5, 77, datetime(2026, 3, 2, 9, tzinfo=UTC))
    assert stats.flush(NOW).error is None
    record_live_starts(store, {(guild.id, GUILD_WIDE): snowflake_at(NOW)})  # live from NOW
    store.anonymise_month(guild.id, 202603)
    assert build_month_snapshots(store, guild.id, 202603)
    assert delete_member_rows(store, guild.id, 202603, retention_months=1) is not None
    march = _in_window(history, 60) - sum(
        1
        for channel in history.channels.values()
        for mid in channel.ids
        if datetime.fromtimestamp(((mid >> 22) + 1_420_070_400_000) / 1000, UTC)
        >= datetime(2026, 4, 1, tzinfo=UTC)
    )
    assert march > 0
    with ThreadPoolExecutor(1) as executor:
        runner = Backfill(
            store, HistorySource(http, guild.id), guild.id, 60, executor=executor, clock=Clock(NOW)
        )
        progress = await runner.run()
    assert progress.messages_discarded == march
    assert progress.messages_counted == _in_window(history, 60) - march
    assert _messages(store, guild.id) == 1 + progress.messages_counted
    text = describe(progress)
    assert f"{progress.messages_counted:,} messages counted" in text
    assert (
        f"{march:,} messages read but discarded: 2026-03 is past retention "
        "(retention_months = 1: member-level rows were deleted, reports are final); the "
        "first month still held is 2026-04"
    ) in text


async def test_a_server_discord_does_not_know_leaves_no_run_and_no_live_start(
    store: Store, discord_http: tuple[HTTPClient, History, FakeGuild]
) -> None:
    http, _history, guild = discord_http
    unknown = guild.id + 1
    with ThreadPoolExecutor(1) as executor:
        runner = Backfill(
            store, HistorySource(http, unknown), unknown, 30, executor=executor, clock=Clock(NOW)
        )
        with pytest.raises(discord.NotFound):
            await runner.run()
    assert runner.progress.state == "failed"
    assert read_live_starts(store, unknown).guild is None
    assert peek_run(store, unknown) == (None, False)


def _kaztron(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "2026-05-10.csv.gz"
    path.write_bytes(gzip.compress("".join(line + "\r\n" for line in lines).encode()))
    return path


async def test_a_backfill_does_not_count_again_the_hours_an_import_filled(
    store: Store, discord_http: tuple[HTTPClient, History, FakeGuild], tmp_path: Path
) -> None:
    """The bot counts live from NOW; a KazTron archive of the hours before was imported."""
    http, history, guild = discord_http
    record_live_starts(store, {(guild.id, GUILD_WIDE): snowflake_at(NOW)})
    hour = NOW - timedelta(hours=6)  # each channel has a message at exactly this time
    archive = _kaztron(tmp_path, [f"{hour:%Y-%m-%d %H:%M:%S},msg,h${'a' * 64},#general,10"])
    assert import_files(store, guild.id, [archive]).rows_imported == 1
    with ThreadPoolExecutor(1) as executor:
        runner = Backfill(
            store, HistorySource(http, guild.id), guild.id, 20, executor=executor, clock=Clock(NOW)
        )
        progress = await runner.run()
    assert progress.messages_skipped == 2
    assert progress.messages_counted == _in_window(history, 20) - 2
    assert _messages(store, guild.id) == _in_window(history, 20) - 2 + 10
    assert (
        "2 messages of the hours from 2026-05-10 06:00 to 2026-05-10 07:00 UTC not counted "
        "again: a KazTron import had filled them" in describe(progress)
    )


async def test_an_import_after_a_backfill_skips_the_messages_of_its_hours(
    store: Store, discord_http: tuple[HTTPClient, History, FakeGuild], tmp_path: Path
) -> None:
    http, history, guild = discord_http
    with ThreadPoolExecutor(1) as executor:
        await Backfill(
            store, HistorySource(http, guild.id), guild.id, 20, executor=executor, clock=Clock(NOW)
        ).run()
    inside, before = NOW - timedelta(days=3), NOW - timedelta(days=25)
    archive = _kaztron(
        tmp_path,
        [
            f"{inside:%Y-%m-%d %H:%M:%S},msg,h${'a' * 64},#general,10",
            f"{inside:%Y-%m-%d %H:%M:%S},voice,h${'a' * 64},#general,600",
            f"{before:%Y-%m-%d %H:%M:%S},msg,h${'a' * 64},#general,7",
        ],
    )
    result = import_files(store, guild.id, [archive])
    assert (result.rows, result.rows_skipped, result.rows_imported) == (3, 1, 2)
    assert result.skipped == (inside, inside + timedelta(hours=1))
    assert _messages(store, guild.id) == _in_window(history, 20) + 7


def test_joins_of_hours_an_import_filled_are_not_counted_again(store: Store) -> None:
    counter = HistoryCounter(store, 77, Keyring(OptOuts()))
    when = datetime(2026, 4, 2, 10, 30, tzinfo=UTC)
    bucket = store.calendars.get(77).bucket_of(when)
    counter.skip_hours({int(EventKind.JOIN): {bucket}})
    counts: dict[CountKey, int] = {}
    skipped: Counter[int] = Counter()
    later = when + timedelta(hours=1)
    assert counter.count_joins([(5, when), (6, when), (7, later)], counts, skipped) == 1
    assert skipped == Counter({bucket: 2})
    assert [key[1] for key in counts] == [bucket + 1]
