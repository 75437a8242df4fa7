"""Live reports read in chunks of member ids (`guildmeter.reports.chunks`) equal the same
reports read in one pass, whatever the ids of the month's members look like."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from guildmeter.activity import ActivityStats
from guildmeter.reports import DateRange, chunks
from guildmeter.reports.compute import Report, compute_live_report
from guildmeter.store import Store
from guildmeter.store.opening import open_store

from tests.reports.reference import utc

MARCH = DateRange(utc(2026, 3, 1), utc(2026, 4, 1))
_guilds = itertools.count(80_000)

#: (flush, guild of three, day of March or of late February, hour, user, voice seconds
#: or 0 for a message): members of three guilds and two months, created over several
#: flushes, so a month's member ids are interleaved with others' in their span.
_events = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.integers(0, 2),
        st.integers(-3, 30),
        st.integers(0, 23),
        st.integers(1, 25),
        st.sampled_from([0, 0, 0, 60, 3600, 2**20, 2**21 + 1]),
    ),
    max_size=60,
)


def _named(stats: ActivityStats, guild: int) -> None:
    for name, channel_id in (("general", 11), ("Lounge", 21)):
        stats.collector.name_channel(guild, channel_id, name)


def _reports(store: Store, guild: int) -> list[Report]:
    return [
        compute_live_report(store, guild, kind, MARCH, channel)  # type: ignore[arg-type]
        for kind in ("full", "weekday", "hourly")
        for channel in (None, "general")
    ]


def _in_one_pass(store: Store, guild: int) -> list[Report]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chunks, "MAX_CHUNKS", 1)
        return _reports(store, guild)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(str(tmp_path / "chunks.db"))
    yield store
    store.close()


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=_events, members_per_chunk=st.sampled_from([1, 2, 3]))
def test_chunked_reports_equal_one_pass(
    sqlite_store: Store, events: list[tuple[int, int, int, int, int, int]], members_per_chunk: int
) -> None:
    """SQLite only: PostgreSQL reads every member in one scan, no chunks to compare."""
    store = sqlite_store
    guilds = [next(_guilds) for _ in range(3)]
    stats = ActivityStats(store)
    for guild in guilds:
        _named(stats, guild)
    for flush, group in itertools.groupby(sorted(events), key=lambda e: e[0]):
        for _, g, day, hour, user, seconds in group:
            when = utc(2026, 3, 1) + timedelta(days=day, hours=hour, minutes=user)
            if seconds:
                stats.collector.add("voice", guilds[g], 21, user, when, seconds)
            else:
                stats.collector.message(guilds[g], 11, user, when)
        assert stats.flush(utc(2026, 3, 15) + timedelta(hours=flush)).error is None
    assert stats.flush(utc(2026, 3, 16)).error is None  # the channels' names at least
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chunks, "MEMBERS_PER_CHUNK", members_per_chunk)
        patch.setattr(chunks, "MAX_CHUNKS", 1_000)
        middle = guilds[1]  # ids interleaved with both other guilds'
        assert _reports(store, middle) == _in_one_pass(store, middle)


def test_an_overflow_in_a_chunk_read_by_another_thread_falls_back_to_exact_sums(
    store: Store,
) -> None:
    """Three voice rows of 2**20 s at 23:00: the packed hourly sum overflows 64 bits in
    the member's chunk (on a worker thread on SQLite); the report is read unpacked."""
    guild = next(_guilds)
    stats = ActivityStats(store)
    _named(stats, guild)
    for user in range(1, 8):
        stats.collector.message(guild, 11, user, utc(2026, 3, 2, user))
    for day in (2, 3, 4):
        stats.collector.add("voice", guild, 21, 9, utc(2026, 3, day, 23), 2**20)
    assert stats.flush(utc(2026, 3, 15)).error is None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chunks, "MEMBERS_PER_CHUNK", 1)
        hourly = compute_live_report(store, guild, "hourly", MARCH)
    assert (hourly.rows[23].voice_users, hourly.rows[23].voice_man_hours) == (1, 3 * 2**20 / 3600)
    assert hourly == _in_one_pass(store, guild)[4]


def test_a_sum_too_large_to_pack_in_one_chunk_is_seen_whatever_the_other_chunks_hold(
    store: Store,
) -> None:
    """A member in voice 2**21 s or more at 10:00 in a chunk of their own, small members in
    the others: the largest member total of all chunks decides, the report is exact."""
    guild = next(_guilds)
    stats = ActivityStats(store)
    _named(stats, guild)
    stats.collector.add("voice", guild, 21, 1, utc(2026, 3, 2, 10), 2**21 - 5)
    stats.collector.add("voice", guild, 21, 1, utc(2026, 3, 3, 10), 7)
    for user in range(2, 6):
        stats.collector.add("voice", guild, 21, user, utc(2026, 3, 2, 10 + user), 60)
    assert stats.flush(utc(2026, 3, 15)).error is None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chunks, "MEMBERS_PER_CHUNK", 1)
        hourly = compute_live_report(store, guild, "hourly", MARCH)
    assert hourly.rows[10].voice_man_hours == (2**21 + 2) / 3600
    assert [row.voice_users for row in hourly.rows[10:16]] == [1, 0, 1, 1, 1, 1]
    assert hourly == _in_one_pass(store, guild)[4]


def test_an_in_memory_database_is_read_on_its_one_connection() -> None:
    """``sqlite://`` is one database per connection: chunks run on the report's own."""
    store = Store.open("sqlite://")
    try:
        stats = ActivityStats(store)
        for user in range(1, 6):
            stats.collector.message(1, 11, user, utc(2026, 3, 2, user))
        assert stats.flush(utc(2026, 3, 15)).error is None
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(chunks, "MEMBERS_PER_CHUNK", 1)
            full = compute_live_report(store, 1, "full", MARCH)
        assert (full.rows[0].messages, full.rows[0].active_users) == (5, 5)
    finally:
        store.close()


def test_a_database_opened_for_a_command_is_read_on_two_connections(tmp_path: Path) -> None:
    """`guildmeter report` and `guildmeter serve` open the database with `open_store`: a
    file there is read in chunks on two threads too (it was read on one: no way to open
    it again was recorded); an in-memory one has none."""
    path = tmp_path / "stats.db"
    writer = Store.open(str(path))
    stats = ActivityStats(writer)
    for user in range(1, 6):
        stats.collector.message(1, 11, user, utc(2026, 3, 2, user))
    assert stats.flush(utc(2026, 3, 15)).error is None
    writer.close()
    store = open_store(str(path), create=False)
    threads: set[str] = set()

    def seen(*_args: object) -> None:
        threads.add(threading.current_thread().name)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(chunks, "MEMBERS_PER_CHUNK", 1)
            full = compute_live_report(store, 1, "full", MARCH)
        assert full.rows[0].active_users == 5
        assert any(name.startswith("guildmeter-report") for name in threads)
    finally:
        store.close()
    memory = open_store("sqlite://", create=True)
    assert memory.reopen is None
    memory.close()
