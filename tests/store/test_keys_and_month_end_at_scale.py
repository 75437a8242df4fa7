"""Many guilds: keys fetched in one transaction, month end spread over several flushes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from guildmeter.activity import ActivityStats
from guildmeter.store import Store

MAY = datetime(2026, 5, 20, 12, tzinfo=UTC)
JUNE = datetime(2026, 6, 1, 0, 5, tzinfo=UTC)


def test_keys_for_many_guild_months_in_one_go(store_factory: Callable[..., Store]) -> None:
    first, second = store_factory(), store_factory()  # two processes on one database
    assert first.get_or_create_key(1, 202605, b"a" * 32) == b"a" * 32
    candidates = {(g, 202605): g.to_bytes(2, "big") * 16 for g in range(1, 600)}
    keys = first.get_or_create_keys(candidates)
    assert keys[(1, 202605)] == b"a" * 32  # the stored key, not the candidate
    assert all(keys[(g, 202605)] == g.to_bytes(2, "big") * 16 for g in range(2, 600))
    again = second.get_or_create_keys({pair: b"z" * 32 for pair in candidates})
    assert again == keys  # the other process derives the same pseudonyms


def test_month_end_for_many_guilds_is_spread_over_flushes(store: Store) -> None:
    stats = ActivityStats(store)
    for guild in range(1, 121):
        stats.collector.message(guild, 10, 7, MAY)
    assert stats.flush(MAY).error is None
    done: list[int] = []
    for _ in range(3):
        done.append(len(stats.flush(JUNE).anonymised))
    assert done == [50, 50, 20]
    assert all(store.anonymised_at(guild, 202605) is not None for guild in range(1, 121))
