"""Where month end, retention, late counts, zone changes and backfill state meet.

Found by an attack on the merged features: each of these left member-level rows or stale
reports behind.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from guildmeter.activity import ActivityStats
from guildmeter.reports.snapshots import build_month_snapshots
from guildmeter.store import Store, schema
from guildmeter.store.backfill import ensure_guild_start, read_live_starts, snowflake_at
from guildmeter.store.retention import delete_member_rows
from guildmeter.store.rollups import monthly_users
from guildmeter.store.settings import AGGREGATES_ONLY, SettingsStore
from guildmeter.store.snapshots import markers
from guildmeter.store.summaries import day_summaries, member_days, month_users

MARCH = 202603
IN_MARCH = datetime(2026, 3, 10, 12, tzinfo=UTC)
APRIL = datetime(2026, 4, 2, 12, tzinfo=UTC)


def _rows(store: Store, table: object, guild: int) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(table).where(table.c.guild_id == guild)  # type: ignore[attr-defined]
            ).scalar()
            or 0
        )


def _march(store: Store, guild: int, users: range) -> ActivityStats:
    stats = ActivityStats(store)
    for user in users:
        stats.collector.message(guild, 10, user, IN_MARCH)
        stats.usage.command(
            "ping", guild_id=guild, channel_id=10, user_id=user, kind="slash",
            duration_ms=5.0, ok=True, at=IN_MARCH,
        )  # fmt: skip
    assert stats.flush(IN_MARCH).error is None
    return stats


def test_retention_deletes_every_member_level_row_of_the_month(store: Store) -> None:
    guild = 81_001
    _march(store, guild, range(500, 507))
    assert _rows(store, monthly_users, guild) == 7 and _rows(store, member_days, guild) > 0
    store.anonymise_month(guild, MARCH)
    assert build_month_snapshots(store, guild, MARCH)
    assert delete_member_rows(store, guild, MARCH, retention_months=1) is not None
    assert _rows(store, monthly_users, guild) == 0  # /stats' per-member day masks
    assert _rows(store, member_days, guild) == 0  # the summaries' per-token day bits
    assert _rows(store, schema.members, guild) == 0


def _member_rows_and_messages(store: Store, guild: int) -> tuple[int, int]:
    act = schema.activity
    with store.engine.connect() as conn:
        member_rows = conn.execute(
            select(func.count()).where(act.c.guild_id == guild, act.c.member_id != 0)
        ).scalar()
        messages = conn.execute(
            select(func.sum(act.c.count)).where(act.c.guild_id == guild, act.c.event == 1)
        ).scalar()
    return int(member_rows or 0), int(messages or 0)


def _active_users(store: Store, guild: int) -> tuple[int, int]:
    """The guild's day summary (all channels) of 10 March and March's distinct users."""
    with store.engine.connect() as conn:
        day = conn.execute(
            select(func.max(day_summaries.c.active_users)).where(day_summaries.c.guild_id == guild)
        ).scalar()
        month = conn.execute(
            select(func.max(month_users.c.active_users)).where(
                month_users.c.guild_id == guild, month_users.c.month == MARCH
            )
        ).scalar()
    return int(day or 0), int(month or 0)


def test_late_counts_of_an_aggregates_only_month_are_folded_at_write_time(store: Store) -> None:
    guild = 81_002
    SettingsStore(store).set_single(guild, "anonymised_rows", AGGREGATES_ONLY)
    _march(store, guild, range(500, 508))
    store.anonymise_month(guild, MARCH)  # folds March: no member rows left
    assert _member_rows_and_messages(store, guild) == (0, 8)
    assert _active_users(store, guild) == (8, 8)
    late = ActivityStats(store)  # a late shard, after the fold: fresh tokens
    late.keyring.retire(guild, MARCH)
    late.collector.message(guild, 10, 501, IN_MARCH)
    late.collector.message(guild, 10, 502, IN_MARCH)
    assert late.flush(APRIL).error is None
    assert _member_rows_and_messages(store, guild) == (0, 10)  # folded, exact, for nobody
    assert _active_users(store, guild) == (10, 10)  # two more tokens (no way to know better)
    # The same late shard flushes the same users again: the same tokens, whose day bits
    # stayed, so they are not counted again.
    late.collector.message(guild, 10, 501, IN_MARCH)
    late.collector.message(guild, 10, 502, IN_MARCH)
    assert late.flush(APRIL).error is None
    assert _member_rows_and_messages(store, guild) == (0, 12)
    assert _active_users(store, guild) == (10, 10)
    assert build_month_snapshots(store, guild, MARCH)  # a rebuilt snapshot: no per-user rows


def test_a_late_write_folds_only_the_hours_it_wrote(store: Store) -> None:
    guild = 81_003
    SettingsStore(store).set_single(guild, "anonymised_rows", AGGREGATES_ONLY)
    _march(store, guild, range(500, 508))
    store.anonymise_month(guild, MARCH)
    other = IN_MARCH.replace(day=20)  # an hour of March this test's late write never touches
    hour, other_hour = (int(t.timestamp()) // 3600 for t in (IN_MARCH, other))
    # A member row left in that other hour (as no writer leaves one): a fold of the whole
    # month would take it; the late write's fold must not even look at it.
    act = schema.activity
    with store.engine.begin() as conn:
        member = conn.execute(
            select(schema.members.c.id).where(schema.members.c.guild_id == guild).limit(1)
        ).scalar_one()
        conn.execute(act.insert().values(guild_id=guild, event=1, hour=other_hour,
                                         channel_id=10, member_id=member, count=5))  # fmt: skip
    late = ActivityStats(store)
    late.keyring.retire(guild, MARCH)
    late.collector.message(guild, 10, 501, IN_MARCH)
    assert late.flush(APRIL).error is None
    with store.engine.connect() as conn:
        member_rows = dict(
            conn.execute(
                select(act.c.hour, func.count())
                .where(act.c.guild_id == guild, act.c.member_id != 0)
                .group_by(act.c.hour)
            ).all()
        )
    assert member_rows == {other_hour: 1}  # the written hour folded, the other one untouched
    assert hour != other_hour
    assert _member_rows_and_messages(store, guild) == (1, 8 + 1 + 5)


def test_a_zone_change_at_once_drops_the_stored_reports(store: Store) -> None:
    guild = 81_003
    stats = ActivityStats(store)
    stats.collector.member_total(guild, 120, IN_MARCH)  # server-wide only: changes at once
    assert stats.flush(IN_MARCH).error is None
    store.anonymise_month(guild, MARCH)
    assert build_month_snapshots(store, guild, MARCH)
    assert MARCH in markers(store, guild)
    change = store.set_timezone(guild, "Asia/Kolkata", APRIL)
    assert change.from_month is None
    assert MARCH not in markers(store, guild)  # rebuilt later, on the new clock


def test_deleting_a_guild_forgets_its_backfill_state(store: Store) -> None:
    guild = 81_004
    _march(store, guild, range(500, 502))
    start = ensure_guild_start(store, guild, snowflake_at(APRIL))
    assert start < snowflake_at(IN_MARCH)  # counts already stored: the start is before them
    store.delete_guild(guild)
    assert read_live_starts(store, guild).guild is None
