"""A dashboard served on its own stores the distinct users of closed months, as the bot's
monthly job does, so its long periods do not count them from day bits on every page."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from guildmeter.activity import ActivityStats
from guildmeter.store import Store
from guildmeter.store.spans import missing_held
from guildmeter.web.server import keep_spans_stored

NOW = datetime(2026, 4, 20, tzinfo=UTC)


async def test_a_standalone_dashboard_stores_the_spans_of_closed_months(store: Store) -> None:
    stats = ActivityStats(store)
    for day in range(3):
        stats.collector.message(77, 10, 500 + day, datetime(2026, 3, 5 + day, tzinfo=UTC))
    assert stats.flush(datetime(2026, 3, 9, tzinfo=UTC)).error is None
    assert stats.flush(NOW).error is None  # March closes; nothing stores its spans yet

    def missing() -> list[tuple[int, int]]:
        with store.engine.connect() as conn:
            return missing_held(conn, store.calendars, NOW)

    assert missing() == [(77, 202603)]
    task = asyncio.create_task(keep_spans_stored(store, every_s=0.05, clock=lambda: NOW))
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while await asyncio.to_thread(missing) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert await asyncio.to_thread(missing) == []
        stats.collector.message(77, 10, 900, datetime(2026, 3, 20, tzinfo=UTC))  # a late write
        assert stats.flush(NOW + timedelta(minutes=1)).error is None
        # The late write dropped them (tests/reports/test_dashboard_spans.py): built again.
        while await asyncio.to_thread(missing) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert await asyncio.to_thread(missing) == []
    finally:
        task.cancel()
