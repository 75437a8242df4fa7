"""What the backfill keeps, on SQLite and PostgreSQL: live starts, cursors with their
counts in one transaction, one owner per run, and months held from the live month end."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from guildmeter.activity import anonymise_finished_months
from guildmeter.events import EventKind
from guildmeter.store import Store
from guildmeter.store.backfill import (
    GUILD_WIDE,
    RunTakenOver,
    backfill_holds,
    claim_run,
    ensure_guild_start,
    finish_run,
    read_cursors,
    read_live_starts,
    record_live_starts,
    release_run,
    runs_to_resume,
    snowflake_at,
    time_of_snowflake,
    write_progress,
)
from guildmeter.timeutil import utcnow

GUILD = 42
NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
MSG = int(EventKind.MSG)


def test_a_live_start_is_never_moved_and_the_earlier_one_bounds_a_channel(store: Store) -> None:
    guild_start = snowflake_at(NOW)
    assert ensure_guild_start(store, GUILD, guild_start) == guild_start
    assert ensure_guild_start(store, GUILD, guild_start + 10**9) == guild_start
    early, late = guild_start - 5, guild_start + 7
    record_live_starts(store, {(GUILD, 1): early, (GUILD, 2): late})
    record_live_starts(store, {(GUILD, 1): late})  # a later first message: ignored
    starts = read_live_starts(store, GUILD)
    assert starts.guild == guild_start
    assert starts.boundary(1, 0) == early  # a message seen live before the guild start
    assert starts.boundary(2, 0) == guild_start
    assert starts.boundary(3, 99) == guild_start
    assert read_live_starts(store, GUILD + 1).boundary(3, 99) == 99


def test_snowflake_times_round_trip() -> None:
    assert time_of_snowflake(snowflake_at(NOW)) == NOW


def test_cursors_land_with_their_counts_or_not_at_all(store: Store) -> None:
    run = claim_run(
        store, GUILD, "a" * 32, target_id=snowflake_at(NOW - timedelta(days=30)), days=30
    )
    assert run is not None
    counts = {(GUILD, 490_000, MSG, "h$" + "0" * 32, 7): 3}
    write_progress(store, GUILD, "a" * 32, counts, {(GUILD, 7): "general"}, {7: 12345})
    assert read_cursors(store, GUILD) == {7: 12345}
    assert sum(store.activity_totals(GUILD).values()) == 3
    # Another process took the run over: nothing of ours lands, cursor nor count.
    with pytest.raises(RunTakenOver):
        write_progress(store, GUILD, "b" * 32, counts, {}, {7: 999})
    assert read_cursors(store, GUILD) == {7: 12345}
    assert sum(store.activity_totals(GUILD).values()) == 3


def test_one_owner_at_a_time_and_a_clean_stop_resumes_at_once(store: Store) -> None:
    target = snowflake_at(NOW - timedelta(days=30))
    assert claim_run(store, GUILD, "a" * 32, target_id=target, days=30) is not None
    assert claim_run(store, GUILD, "b" * 32, target_id=target, days=30) is None  # it beats
    assert claim_run(store, GUILD, "b" * 32, target_id=target, days=30, claim_seconds=0) is not None
    with pytest.raises(RunTakenOver):  # the first owner lost it
        write_progress(store, GUILD, "a" * 32, {}, {}, {1: 5})
    release_run(store, GUILD, "b" * 32)
    (interrupted,) = runs_to_resume(store, [GUILD, 7])
    assert (interrupted.target_id, interrupted.days) == (target, 30)
    resumed = claim_run(store, GUILD, "c" * 32, target_id=None, days=0)
    assert resumed is not None and resumed.target_id == target
    finish_run(store, GUILD, "c" * 32, "done")
    assert runs_to_resume(store, [GUILD]) == []
    assert claim_run(store, GUILD, "d" * 32, target_id=None, days=0) is None  # nothing left


def test_the_live_month_end_leaves_a_running_backfills_months_alone(
    store_factory: Callable[..., Store],
) -> None:
    store = store_factory()
    store.get_or_create_key(GUILD, 202603, b"k" * 32)  # a past month the backfill counts
    store.get_or_create_key(GUILD, 202601, b"j" * 32)  # before the window: not held
    target = snowflake_at(datetime(2026, 2, 15, tzinfo=UTC))
    claim_run(store, GUILD, "a" * 32, target_id=target, days=84)
    assert backfill_holds(store, NOW) == {GUILD: 202602}
    done = anonymise_finished_months(store, NOW, scrub=False)
    assert [(r.guild_id, r.month) for r in done] == [(GUILD, 202601)]
    assert store.get_or_create_key(GUILD, 202603, b"x" * 32) == b"k" * 32  # still there
    # A run that stopped beating long ago (a crash) holds nothing any more.
    assert backfill_holds(store, utcnow() + timedelta(hours=1)) == {}
    finish_run(store, GUILD, "a" * 32, "done")
    assert backfill_holds(store, NOW) == {}
    done = anonymise_finished_months(store, NOW, scrub=False)
    assert [(r.guild_id, r.month) for r in done] == [(GUILD, 202603)]


def test_the_migration_starts_guilds_counted_before_it_before_their_first_hour(
    store: Store,
) -> None:
    from guildmeter.store.migrations import m0014_backfill_progress as migration

    counts = {(GUILD, 490_000, MSG, "h$" + "1" * 32, 7): 1}
    with store.import_session(GUILD) as session:
        session.add(counts, {})
    from guildmeter.store.backfill import backfill_cursors, backfill_runs, live_starts

    with store.transaction() as conn:
        for table in (live_starts, backfill_cursors, backfill_runs):
            table.drop(conn)
        migration.upgrade(conn)
    start = read_live_starts(store, GUILD).guild
    assert start is not None
    assert time_of_snowflake(start) == datetime.fromtimestamp(489_999 * 3600, UTC)
    assert read_cursors(store, GUILD) == {}
    assert GUILD_WIDE == 0
