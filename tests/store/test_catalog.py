"""Which guilds have statistics, over which span: what commands check before they work."""

from __future__ import annotations

from guildmeter.activity import ActivityStats
from guildmeter.store import Store
from guildmeter.store.catalog import data_span, guilds_with_statistics, has_statistics

from tests.reports.reference import utc


def test_guilds_and_their_spans(store: Store) -> None:
    stats = ActivityStats(store)
    stats.collector.message(30, 1, 7, utc(2026, 3, 2, 10, 5))
    stats.collector.member_total(30, 12, utc(2026, 4, 9, 23, 59))
    stats.collector.join(2**62, 8, utc(2026, 3, 1))
    for guild in (5, 99):
        stats.collector.message(guild, 1, 7, utc(2026, 3, 5))
    assert stats.flush(utc(2026, 4, 10)).error is None
    assert guilds_with_statistics(store) == [5, 30, 99, 2**62]
    assert guilds_with_statistics(store, limit=2) == [5, 30]
    span = data_span(store, 30)
    assert span is not None and (span.first, span.last) == (
        utc(2026, 3, 2, 10),
        utc(2026, 4, 9, 23),
    )
    assert data_span(store, 31) is None
    hour = int(utc(2026, 3, 2, 10).timestamp() // 3600)
    assert has_statistics(store, 30, hour, hour + 1)
    assert not has_statistics(store, 30, hour + 1, hour + 24)
    assert not has_statistics(store, 31, 0, 10**6)
