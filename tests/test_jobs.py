"""The heavy jobs the bot runs in worker processes, called here in-process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from guildmeter import jobs
from guildmeter.activity import ActivityStats
from guildmeter.reports import DateRange
from guildmeter.store import Store

MAY = DateRange(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))


def test_a_dump_too_large_to_send_stops_early(store: Store) -> None:
    stats = ActivityStats(store)
    start = datetime(2026, 5, 1, tzinfo=UTC)
    for day in range(30):
        for user in range(300):
            stats.collector.message(1, 10, user, start + timedelta(days=day, hours=user % 24))
    assert stats.flush(start + timedelta(days=30)).error is None
    data, _warning, rows = jobs.dump(store, 1, MAY)
    assert rows == 9_000 and len(data) > 20_000
    with pytest.raises(jobs.DumpTooLargeError, match="more than Discord accepts"):
        jobs.dump(store, 1, MAY, 20_000)
