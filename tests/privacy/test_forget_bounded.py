"""Forget-me never holds the flush behind a long reader: its scrub is bounded, and finished
by the next flushes."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from guildmeter.activity import ActivityStats
from guildmeter.ext.privacy import forget_member
from guildmeter.store import Store

T = datetime(2026, 5, 10, 12, tzinfo=UTC)


async def test_a_forget_during_a_long_read_returns_and_the_scrub_is_finished_later(
    tmp_path: Path,
) -> None:
    store = Store.open(str(tmp_path / "forget.db"))
    stats = ActivityStats(store, clock=lambda: T)
    for user in (1, 2):
        stats.collector.message(5, 10, user, T)
    assert stats.flush(T).error is None
    reader = Store.open(str(tmp_path / "forget.db"))
    conn = reader.engine.connect()
    conn.exec_driver_sql("BEGIN")
    conn.exec_driver_sql("SELECT count(*) FROM members").fetchall()  # a long dump, say
    started = time.monotonic()
    report = await forget_member(None, stats, 1, 5)
    assert time.monotonic() - started < 10
    assert report.activity_rows == 1
    assert stats._scrub_pending  # could not finish behind the reader: left to the flush
    conn.exec_driver_sql("ROLLBACK")
    conn.close()
    reader.close()
    assert stats.flush(T).error is None
    assert not stats._scrub_pending
    store.close()
