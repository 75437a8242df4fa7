"""The usage roll-ups: `/stats` from them equals `/stats` from the day rows, exactly.

Random records on three clocks (UTC, UTC+14 and Los Angeles with its DST), random
forget-me deletions and random windows, on SQLite and PostgreSQL; and the roll-ups the
writer and the deletions keep equal those migration 0015 computes from the day rows.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from guildmeter.reports.usage import EACH_GUILDS_DAYS, usage_summary
from guildmeter.store import Store, rollups, schema
from guildmeter.store.migrations.m0015_usage_rollups import backfill
from guildmeter.store.rights import RightsStore
from guildmeter.store.usage import UsageStore
from guildmeter.usage_records import CommandUse, Generation, LabelledUsage

NOW = datetime(2026, 4, 10, 9, 0, tzinfo=UTC)
UTC_GUILD, EAST, WEST = 1, 2, 3  # UTC, Pacific/Kiritimati (+14), America/Los_Angeles
GUILDS = (UTC_GUILD, EAST, WEST)
DURATIONS = (0.05, 1.0, 3.3, 12.0, 12.5, 40.0, 250.0, 1800.0)

records = st.lists(
    st.tuples(
        st.sampled_from(GUILDS),
        st.integers(0, 5),  # user
        st.integers(0, 24 * 75),  # hours before NOW
        st.sampled_from(("draw", "ping", "img")),
        st.sampled_from(DURATIONS),
        st.booleans(),  # a generation rather than a command
    ),
    max_size=60,
)
windows = st.lists(
    st.tuples(
        st.sampled_from((*GUILDS, None)),
        st.integers(1, 90),  # days
        st.integers(0, 24 * 50),  # now, hours before NOW
    ),
    min_size=1,
    max_size=6,
)


def _set_zones(store: Store) -> None:
    if EAST not in store.calendars.known:
        store.set_timezone(EAST, "Pacific/Kiritimati", NOW)
        store.set_timezone(WEST, "America/Los_Angeles", NOW)


def _write(store: Store, drawn: list[tuple[int, int, int, str, float, bool]]) -> list[Any]:
    items = []
    for guild, user, hours, command, duration, is_job in drawn:
        calendar = store.calendars.get(guild)
        at = NOW - timedelta(hours=hours)
        hour = calendar.bucket_of(at)
        record: CommandUse | Generation
        if is_job:
            record = Generation(guild, user, at, None, "512x512", (), 1.0, duration, False, "std")
        else:
            record = CommandUse(guild, 9, user, command, "slash", at, duration, hours % 7 > 0, None)
        items.append(LabelledUsage(record, hour, f"member-{user}"))
    UsageStore(store).write(uuid.uuid4().hex, items)
    return items


def _rollup_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    with store.engine.connect() as conn:
        return {
            t.name: sorted(tuple(row) for row in conn.execute(select(t)))
            for t in rollups.rollup_tables
        }


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=records, second=records, forgets=st.lists(st.integers(0, 200), max_size=3),
       asked=windows)  # fmt: skip
def test_stats_from_rollups_equal_stats_from_day_rows(
    store: Store,
    first: list[tuple[int, int, int, str, float, bool]],
    second: list[tuple[int, int, int, str, float, bool]],
    forgets: list[int],
    asked: list[tuple[int | None, int, int]],
) -> None:
    _set_zones(store)
    UsageStore(store).reset(None)
    written = _write(store, first) + _write(store, second)  # two batches: upserts add up
    rights = RightsStore(store)
    for index in forgets:
        if written:
            item = written[index % len(written)]
            calendar = store.calendars.get(item.record.guild_id)
            rights.delete_member(
                item.record.guild_id, calendar.month_of_bucket(item.hour), item.label
            )
    for guild, days, back in asked:
        now = NOW - timedelta(hours=back)
        fast = usage_summary(store, guild, days, now=now)
        assert fast == usage_summary(store, guild, days, now=now, use_rollups=False)

    kept = _rollup_rows(store)
    with store.transaction() as conn:
        for table in rollups.rollup_tables:
            conn.execute(delete(table))
        backfill(conn)
    assert _rollup_rows(store) == kept


@given(first=st.integers(0, 800), length=st.integers(1, 400))
def test_a_plan_adds_up_to_exactly_its_days(first: int, length: int) -> None:
    start = 20_000 + first  # 2024-10-04 on
    last = start + length - 1
    pieces = rollups.plan(start, last)
    covered: Counter[int] = Counter()
    for (level, begin), sign in pieces.items():
        lo, hi = rollups.period_days(level, begin)
        for day in range(lo, hi + 1):
            covered[day] += sign
    assert {d: n for d, n in covered.items() if n} == dict.fromkeys(range(start, last + 1), 1)
    # Cheap whatever the length: whole months, and at the edges at most a few parts and
    # about eight days.
    months = sum(1 for level, _ in pieces if level == rollups.MONTH)
    assert len(pieces) - months <= 12
    assert len(pieces) <= min(length, 12 + length // 28)


def test_periods_tile_each_month() -> None:
    feb = 20_485  # 2026-02-01
    assert rollups.month_first_day(feb + 27) == feb
    assert rollups.period_days(rollups.MONTH, feb) == (feb, feb + 27)
    parts = [rollups.period_days(rollups.PART, feb + 8 * i) for i in range(4)]
    assert parts == [
        (feb, feb + 7),
        (feb + 8, feb + 15),
        (feb + 16, feb + 23),
        (feb + 24, feb + 27),
    ]
    assert rollups.part_first_day(feb + 27) == feb + 24
    assert rollups.month_masks(feb + 26, feb + 29) == {feb: 0b11 << 26, feb + 28: 0b11}


def test_over_every_guild_each_guild_counts_its_own_last_days(store: Store) -> None:
    _set_zones(store)
    # Commands on each guild's local today (Apr 10 09:00 UTC; at UTC+14: Apr 11 01:00),
    # and one of the UTC+14 guild's yesterday (Apr 9 23:00 UTC: Apr 10 13:00 there).
    asked = NOW + timedelta(hours=3)  # Apr 10 12:00 UTC: Apr 11 at UTC+14
    drawn = [(UTC_GUILD, 1, 0, "draw", 5.0, False), (WEST, 1, 0, "draw", 5.0, False),
             (EAST, 1, -2, "draw", 5.0, False), (EAST, 2, 10, "draw", 5.0, False)]  # fmt: skip
    _write(store, drawn)
    today = usage_summary(store, None, 1, now=asked)
    # Apr 10 for the UTC and Los Angeles guilds, Apr 11 for the UTC+14 one.
    assert today.commands_total == 3 and today.zone == EACH_GUILDS_DAYS
    assert (today.start.isoformat(), today.end.isoformat()) == ("2026-04-10", "2026-04-11")
    assert [d.commands for d in today.daily] == [2, 1]
    assert usage_summary(store, None, 2, now=asked).commands_total == 4
    assert usage_summary(store, EAST, 1, now=asked).zone == "Pacific/Kiritimati"
    for days in (1, 2, 40):
        assert usage_summary(store, None, days, now=asked) == usage_summary(
            store, None, days, now=asked, use_rollups=False
        )


def test_every_guild_on_utc_clocks_says_utc(store: Store) -> None:
    _write(store, [(UTC_GUILD, 1, 0, "draw", 5.0, False)])
    summary = usage_summary(store, None, 7, now=NOW)
    assert (summary.zone, summary.end.isoformat(), len(summary.daily)) == ("UTC", "2026-04-10", 7)


@pytest.mark.parametrize(("days", "most"), [(7, 7), (30, 11), (365, 22)])
def test_windows_of_any_length_read_few_pieces(days: int, most: int) -> None:
    """The worst window of each length over a year of end days."""
    worst = max(len(rollups.plan(last - days + 1, last)) for last in range(20_400, 20_800))
    assert worst == most  # the day rows alone: ``days`` pieces


def test_migration_0015_fills_the_rollups_of_an_existing_database(
    store_factory: Callable[..., Store],
) -> None:
    store = store_factory()
    _set_zones(store)
    drawn = [(g, u, h * 29, c, d, j) for g in GUILDS for u in range(3)
             for h, (c, d, j) in enumerate([("draw", 40.0, False), ("ping", 1.0, False),
                                            ("img", 12.0, True)] * 20)]  # fmt: skip
    _write(store, drawn)
    before = [usage_summary(store, g, days, now=NOW) for g in (*GUILDS, None) for days in (7, 30)]
    kept = _rollup_rows(store)
    with store.transaction() as conn:  # the database as it was before migration 0015
        for table in rollups.rollup_tables:
            table.drop(conn)
        done = schema.schema_migrations
        conn.execute(delete(done).where(done.c.version == 15))
    store.close()
    again = store_factory()
    assert _rollup_rows(again) == kept
    after = [usage_summary(again, g, days, now=NOW) for g in (*GUILDS, None) for days in (7, 30)]
    assert after == before and before[1].commands_total > 0
