"""Guilds' zones in the database, on both backends: the change rule, pinning, migration."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, text

from guildmeter.activity import ActivityStats
from guildmeter.privacy.statement import key_destroyed_at, month_end
from guildmeter.reports import DateRange, compute_report
from guildmeter.store import Store, schema
from guildmeter.zones import GuildCalendar

GUILD = 31337
NOV = datetime(2026, 11, 10, 12, tzinfo=UTC)


def _count_something(store: Store, when: datetime = NOV) -> ActivityStats:
    stats = ActivityStats(store)
    stats.collector.message(GUILD, 5, 1000, when)
    assert stats.flush(when + timedelta(minutes=1)).error is None
    return stats


def test_a_guild_without_statistics_switches_at_once(store: Store) -> None:
    change = store.set_timezone(GUILD, "Asia/Kolkata", NOV)
    assert change.from_month is None
    assert store.calendars.get(GUILD).schedule == ((0, "Asia/Kolkata"),)


def test_a_guild_with_statistics_switches_next_month_and_it_persists(
    store_factory: Callable[..., Store],
) -> None:
    store = store_factory()
    _count_something(store)
    change = store.set_timezone(GUILD, "America/New_York", NOV)
    assert (change.zone, change.from_month) == ("America/New_York", 202612)
    again = store_factory()  # another process reads it
    calendar = again.calendars.get(GUILD)
    assert calendar.schedule == ((0, "UTC"), (202612, "America/New_York"))
    assert calendar.month_start(202612) == datetime(2026, 12, 1, 5, tzinfo=UTC)
    # November keeps its UTC buckets and so its report.
    report = compute_report(again, GUILD, "full", DateRange.month(202611, calendar))
    assert report.rows[0].messages == 1
    # Asking again for the zone of this month cancels the waiting change.
    assert store.set_timezone(GUILD, "UTC", NOV).unchanged
    assert store_factory().calendars.get(GUILD).schedule == ((0, "UTC"),)


def test_a_zone_east_of_the_old_one_never_starts_a_month_already_begun(store: Store) -> None:
    _count_something(store)
    late = datetime(2026, 11, 30, 20, tzinfo=UTC)  # 1 December 01:30 in Kolkata already
    change = store.set_timezone(GUILD, "Asia/Kolkata", late)
    assert change.from_month == 202701
    calendar = store.calendars.get(GUILD)
    assert calendar.month_start(202612) == datetime(2026, 12, 1, tzinfo=UTC)
    assert calendar.month_of(late) == 202611


def test_new_guilds_are_pinned_to_the_zone_they_were_counted_in(
    store_factory: Callable[..., Store],
) -> None:
    store = store_factory()
    store.reload_calendars("Asia/Kathmandu")  # the configured default
    stats = _count_something(store)
    assert stats.flush(NOV + timedelta(hours=1)).error is None
    later = store_factory()  # the default changed back to UTC
    assert later.calendars.get(GUILD).schedule == ((0, "Asia/Kathmandu"),)
    assert later.calendars.get(GUILD + 1).is_utc


def test_the_migration_keeps_existing_rows_as_utc_buckets(
    store_factory: Callable[..., Store],
) -> None:
    store = store_factory()
    _count_something(store)
    with store.engine.begin() as conn:  # as a database from before timezones
        conn.execute(text("DROP TABLE guild_timezones"))
        conn.execute(
            delete(schema.schema_migrations).where(schema.schema_migrations.c.version == 8)
        )
        before = sorted(conn.execute(select(schema.activity)).all())
    migrated = store_factory()
    with migrated.engine.connect() as conn:
        assert sorted(conn.execute(select(schema.activity)).all()) == before
        assert conn.execute(select(schema.guild_timezones)).all() == []
    assert migrated.calendars.get(GUILD).is_utc
    report = compute_report(migrated, GUILD, "hourly", DateRange.month(202611))
    assert report.rows[12].messages == 1


def test_the_key_dies_at_local_midnight() -> None:
    kolkata = GuildCalendar(((0, "Asia/Kolkata"),))
    assert month_end(NOV, kolkata) == datetime(2026, 11, 30, 18, 30, tzinfo=UTC)
    assert month_end(NOV) == datetime(2026, 12, 1, tzinfo=UTC)
    destroyed = key_destroyed_at(NOV, timedelta(minutes=5), kolkata)
    assert destroyed.isoformat() == "2026-12-01T00:05:00+05:30"


def test_aggregates_only_folds_the_local_month_and_nothing_after(store: Store) -> None:
    from guildmeter.store.settings import AGGREGATES_ONLY, SettingsStore

    store.set_timezone(GUILD, "Asia/Kolkata", NOV)
    SettingsStore(store).set_single(GUILD, "anonymised_rows", AGGREGATES_ONLY)
    stats = ActivityStats(store)
    last_of_november = datetime(2026, 11, 30, 18, 29, tzinfo=UTC)  # 23:59 IST
    first_of_december = datetime(2026, 11, 30, 18, 31, tzinfo=UTC)  # 00:01 IST
    for when in (last_of_november, first_of_december):
        stats.collector.message(GUILD, 5, 1000, when)
    result = stats.flush(datetime(2026, 11, 30, 18, 40, tzinfo=UTC))
    assert [(r.guild_id, r.month) for r in result.anonymised] == [(GUILD, 202611)]
    calendar = store.calendars.get(GUILD)
    with store.engine.connect() as conn:
        rows = dict(
            conn.execute(
                select(schema.activity.c.hour, schema.activity.c.member_id).where(
                    schema.activity.c.guild_id == GUILD
                )
            ).all()
        )
    assert rows[calendar.bucket_of(last_of_november)] == 0  # folded: counts for nobody
    assert rows[calendar.bucket_of(first_of_december)] != 0  # December is not touched


def test_server_wide_counts_alone_do_not_hold_the_switch(store: Store) -> None:
    stats = ActivityStats(store)
    stats.collector.member_total(GUILD, 40, NOV)  # on every (re)connection: nobody's
    assert stats.flush(NOV + timedelta(minutes=1)).error is None
    assert store.set_timezone(GUILD, "Asia/Kolkata", NOV).from_month is None


def test_a_worker_process_reads_guilds_with_the_configured_default(
    store_factory: Callable[..., Store],
) -> None:
    store = store_factory()
    store.reload_calendars("Asia/Kolkata")
    assert store.reopen is not None
    worker = store.reopen.open()  # what a heavy job opens in its own process
    try:
        assert worker.calendars.get(GUILD).schedule == ((0, "Asia/Kolkata"),)
    finally:
        worker.close()


def test_a_flush_that_finds_no_change_keeps_the_calendars(store: Store) -> None:
    _count_something(store)
    before = store.reload_calendars()
    assert store.reload_calendars() is before  # the collector keeps its cached spans
    store.set_timezone(GUILD, "Asia/Kolkata", NOV)
    assert store.calendars is not before
