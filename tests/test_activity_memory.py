"""Memory while the database is down: merged batches, a high-water mark, a loud warning."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from guildmeter.activity import ActivityStats
from guildmeter.store import Store
from guildmeter.timeutil import hour_index

from tests.conftest import PgSchema, require_postgresql
from tests.helpers import FlakyStore

T = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_an_outage_holds_each_counter_once_not_once_per_flush(store: Store) -> None:
    flaky = FlakyStore(store)
    stats = ActivityStats(flaky)
    flaky.plan = ["before"] * 20
    for flush in range(20):  # the same 100 members talk in every flush while it is down
        for user in range(100):
            stats.collector.message(1, 10, user, T + timedelta(seconds=flush))
        assert stats.flush(T + timedelta(seconds=flush)).error is not None
    assert stats.waiting_batches == 2  # the one sent (maybe committed) and one merged
    assert stats.counters_in_memory == 200  # not 2,000
    assert stats.flush(T + timedelta(minutes=1)).error is None
    assert sum(store.activity_totals(1).values()) == 2_000


def test_at_the_high_water_mark_new_events_are_dropped_counted_and_reported(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FlakyStore(store)
    stats = ActivityStats(flaky, max_counters=50)
    flaky.plan = ["before"] * 3
    for user in range(80):
        stats.collector.message(1, 10, user, T)
    stats.flush(T)  # down: 80 counters wait, above the mark of 50
    for user in range(80, 99):
        stats.collector.message(1, 10, user, T)  # dropped: memory is at its mark
    stats.collector.message_at_hour(1, 10, 99, hour_index(T))  # the listener's fast path too
    stats.flush(T + timedelta(seconds=5))
    assert stats.counters_in_memory == 80
    assert stats.collector.dropped == 20
    assert "high-water mark 50" in caplog.text and "20 events" in caplog.text
    stats.flush(T + timedelta(seconds=10))
    assert stats.flush(T + timedelta(seconds=15)).error is None  # back: written, accepting
    assert not stats.collector.saturated
    stats.collector.message(1, 10, 999, T)
    stats.flush(T + timedelta(seconds=20))
    assert sum(store.activity_totals(1).values()) == 81


def test_scrubbing_waits_only_briefly_for_a_long_sqlite_read(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "scrub.db"))
    stats = ActivityStats(store)
    stats.collector.message(1, 10, 500, T)
    stats.flush(T)
    reader = store.engine.connect()
    reader.exec_driver_sql("BEGIN")
    reader.exec_driver_sql("SELECT count(*) FROM activity").fetchall()  # holds a snapshot
    other = Store.open(str(tmp_path / "scrub.db"))
    with other.engine.begin() as conn:  # a write after the snapshot: the WAL must be kept
        conn.exec_driver_sql("UPDATE activity SET count = count + 1")
    started = time.monotonic()
    assert store.scrub(wait_s=0.2) is False
    assert time.monotonic() - started < 2
    reader.exec_driver_sql("ROLLBACK")
    reader.close()
    assert store.scrub(wait_s=0.2) is True
    other.close()
    store.close()


def test_scrubbing_waits_only_briefly_for_a_postgresql_lock() -> None:
    require_postgresql()
    schema = PgSchema()
    try:
        store = Store.open(schema.url, **schema.engine_kwargs)
        holder = store.engine.connect()
        holder.execute(text("BEGIN"))
        holder.execute(text("SELECT * FROM guild_keys FOR SHARE"))  # a long transaction
        started = time.monotonic()
        done: list[bool] = []
        worker = threading.Thread(target=lambda: done.append(store.scrub(wait_s=0.2)))
        worker.start()
        worker.join(10)
        assert done == [False] and time.monotonic() - started < 5
        holder.execute(text("ROLLBACK"))
        holder.close()
        assert store.scrub(wait_s=2) is True
        store.close()
    finally:
        schema.drop()
