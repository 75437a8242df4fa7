"""The engine as one piece: totals stored equal events fed, whatever the flushes do."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guildmeter.activity import ActivityStats
from guildmeter.events import EventKind
from guildmeter.store import Store
from guildmeter.timeutil import hour_index

from tests.helpers import FlakyStore, distinct_users_per_month, shape

BASE = datetime(2026, 4, 30, 21, 0, tzinfo=UTC)  # the month ends three hours later
_guilds = itertools.count(1_000)

event = st.tuples(
    st.sampled_from(["msg", "msg", "msg", "join", "part", "voice", "total_users"]),
    st.integers(0, 2),  # guild offset
    st.integers(1, 3),  # channel
    st.integers(1, 6),  # user
    st.integers(0, 6 * 60),  # minute after BASE
    st.integers(1, 500),  # count or total
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    events=st.lists(event, max_size=60),
    flushes=st.lists(st.tuples(st.integers(0, 60), st.sampled_from(["ok", "before", "after"]))),
)
def test_totals_stored_equal_events_fed(
    store: Store, events: list[tuple[str, int, int, int, int, int]], flushes: list[tuple[int, str]]
) -> None:
    first_guild = next(_guilds) * 10
    flaky = FlakyStore(store)
    stats = ActivityStats(flaky)
    expected: dict[int, dict[tuple[int, int, int, str], int]] = defaultdict(dict)
    flush_at = defaultdict(list)
    for position, mode in flushes:
        flush_at[position].append(mode)
    ordered = sorted(events, key=lambda e: e[4])
    now = BASE
    for position, (kind, g, channel, user, minute, count) in enumerate(ordered):
        for mode in flush_at.get(position, []):
            flaky.plan.append(mode)
            stats.flush(now)
        guild = first_guild + g
        now = BASE + timedelta(minutes=minute)
        hour = hour_index(now)
        bucket = expected[guild]
        if kind == "total_users":
            stats.collector.member_total(guild, count, now)
            bucket[(hour, EventKind.TOTAL_USERS, 0, "")] = count
        elif kind == "voice":
            stats.collector.add("voice", guild, channel, user, now, count)
            key = (hour, EventKind.VOICE, channel, str(user))
            bucket[key] = bucket.get(key, 0) + count
        else:
            channel_id = channel if kind == "msg" else 0
            getattr(stats.collector, {"msg": "message", "join": "join", "part": "part"}[kind])(
                *((guild, channel_id, user, now) if kind == "msg" else (guild, user, now))
            )
            key = (hour, int(EventKind.parse(kind)), channel_id, str(user))
            bucket[key] = bucket.get(key, 0) + 1
    result = stats.close(now)
    while result.error is not None:  # planned failures may outlast the last flush
        result = stats.flush(now)
    assert stats.waiting_batches == 0
    for g in range(3):
        stored = store.activity_totals(first_guild + g)
        assert shape(stored) == shape(expected[first_guild + g])
        assert distinct_users_per_month(stored) == distinct_users_per_month(
            expected[first_guild + g]
        )


def test_a_clean_shutdown_flushes_everything(store: Store) -> None:
    stats = ActivityStats(store)
    t = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    stats.collector.message(1, 10, 500, t)
    stats.voice.update(1, 500, 20, t)
    stats.close(t + timedelta(minutes=30))
    assert sorted(store.activity_totals(1).values()) == [1, 1800]


def test_counts_wait_in_memory_while_the_database_is_down(store: Store) -> None:
    flaky = FlakyStore(store)
    stats = ActivityStats(flaky)
    t = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    flaky.plan = ["before", "before", "after"]
    for minute in range(3):
        stats.collector.message(1, 10, 500, t + timedelta(minutes=minute))
        result = stats.flush(t + timedelta(minutes=minute))
        assert result.error is not None and "injected" in result.error
    # The batch that was sent (its commit may have landed) keeps its id; the later ones,
    # never sent, are merged into one: an outage holds each counter once.
    assert stats.waiting_batches == 2
    assert stats.flush(t).error is None
    assert stats.waiting_batches == 0
    assert list(store.activity_totals(1).values()) == [3]


def test_a_voice_only_user_is_written_by_the_first_flush(store: Store) -> None:
    """Regression: voice seconds credited by a flush may need a key not loaded yet."""
    stats = ActivityStats(store)
    t = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    stats.voice.update(1, 500, 20, t)
    stats.flush(t + timedelta(minutes=10))
    assert list(store.activity_totals(1).values()) == [600]


def test_old_batch_ids_are_pruned_from_the_flush_log(store: Store) -> None:
    from sqlalchemy import func, insert, select

    from guildmeter.store import schema

    with store.engine.begin() as conn:
        conn.execute(
            insert(schema.flush_log).values(
                batch_id="old", applied_at=datetime(2020, 1, 1, tzinfo=UTC)
            )
        )
    stats = ActivityStats(store)
    t = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    stats.collector.message(1, 10, 500, t)
    stats.flush(t)
    with store.engine.connect() as conn:
        ids = list(conn.scalars(select(schema.flush_log.c.batch_id)))
        assert "old" not in ids and len(ids) == 1
        assert conn.scalar(select(func.count()).select_from(schema.flush_log)) == 1
