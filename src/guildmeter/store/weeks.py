"""Distinct users per week of closed months, stored so the dashboard need not count them.

Distinct users of a span inside a month are counted from the members' day bits
(`guildmeter.store.summaries.member_days`): a scan of the month's rows, about 12 ms per
month on a server of 20,000 posting members, so a 12-month weekly chart costs 0.13 s.
``week_users`` holds, per guild, statistics month, channel (and `WHOLE_GUILD`) and
Monday-start week (days since 1970-01-01 on the guild's clock, + 3, // 7), the distinct
active and voice users of the days of that week inside the month; row `ALL_WEEKS` holds the
month's members with any bit (the check that the bits are complete, below).

Two sources:

- `HELD` — a cache of the bits the month holds now, built off the hot path for closed
  months only (`build_held`, by the monthly job and, in a background thread, by the
  dashboard). Any write into the month drops it (`forget_held`: from
  `guildmeter.store.snapshots.after_write`, forget-me, a timezone change); nothing is
  added to the write path of the current month.
- `DROPPED` — the bits a fold to aggregates only or retention deletes (`keep_dropped`, in
  their transaction, just before `drop_member_days`): aggregates like the day and month
  totals that stay, so a week inside such a month can still be shown. Late tokens of a
  folded month come with fresh ids and keep their bits: the month's figures are then
  DROPPED + the held bits, exactly. Months whose bits were dropped before this table (or
  by a rebuild) have no DROPPED rows: the reader sees that the held bits do not add up to
  the month's own distinct users (``month_users``) and says "not available".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    text,
)

from guildmeter.errors import StoreUnavailableError
from guildmeter.store import schema
from guildmeter.store.summaries import WHOLE_GUILD, day_of_bucket, month_first_day
from guildmeter.timeutil import add_months
from guildmeter.zones import Calendars, GuildCalendar

if TYPE_CHECKING:
    from guildmeter.store.sql import Store

__all__ = [
    "ALL_WEEKS",
    "DROPPED",
    "HELD",
    "build_held",
    "build_missing",
    "count_spans",
    "forget_closed",
    "forget_guild",
    "forget_held",
    "keep_dropped",
    "missing_held",
    "month_weeks",
    "read_weeks",
    "week_of_day",
    "week_users",
]

log = logging.getLogger(__name__)

HELD, DROPPED = 0, 1
#: The ``week`` of the row that counts the month's members with any bit.
ALL_WEEKS = -1

week_users = Table(
    "week_users",
    schema.metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("month", Integer, nullable=False),
    Column("channel_id", BigInteger, nullable=False),
    Column("source", SmallInteger, nullable=False),
    Column("week", Integer, nullable=False),
    Column("active_users", Integer, nullable=False),
    Column("voice_users", Integer, nullable=False),
    PrimaryKeyConstraint("guild_id", "month", "source", "channel_id", "week"),
)

#: (active, voice) distinct users per (channel, span) of a month.
SpanCounts = dict[tuple[int, int], tuple[int, int]]


def week_of_day(day: int) -> int:
    """The Monday-start week of a local day (1970-01-01 was a Thursday)."""
    return (day + 3) // 7


def month_weeks(calendar: GuildCalendar, month: int) -> dict[int, tuple[int, int]]:
    """The month's weeks: week -> its local days inside the month, [first, end)."""
    first = month_first_day(calendar, month)
    end = day_of_bucket(calendar, calendar.first_bucket(add_months(month, 1)) - 1) + 1
    weeks = {}
    for week in range(week_of_day(first), week_of_day(end - 1) + 1):
        weeks[week] = (max(week * 7 - 3, first), min(week * 7 + 4, end))
    return weeks


def count_spans(
    conn: Connection,
    guild_id: int,
    calendar: GuildCalendar,
    month: int,
    spans: Sequence[tuple[int, int]],
    channel: str,
    params: dict[str, object],
) -> SpanCounts:
    """Distinct active and voice users of each span [first, end) of local days inside the
    month, per channel, from the held day bits (one scan of the month's rows); the span
    `(ALL_WEEKS, ALL_WEEKS)` counts members with any bit. ``channel``: an SQL condition on
    ``channel_id`` with its ``params``."""
    first = month_first_day(calendar, month)
    masks = []
    for low, high in spans:
        if (low, high) == (ALL_WEEKS, ALL_WEEKS):
            masks.append(-1)
        else:
            masks.append(((1 << (high - first)) - 1) ^ ((1 << (low - first)) - 1))
    sums = ", ".join(
        f"SUM(CASE WHEN (msg_days & {bits}) <> 0 THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN (voice_days & {bits}) <> 0 THEN 1 ELSE 0 END)"
        for bits in masks
    )
    query = text(
        f"SELECT channel_id, {sums} FROM member_days WHERE guild_id = :g "
        f"AND month = {int(month)} AND {channel} GROUP BY channel_id"
    )
    found: SpanCounts = {}
    for row in conn.execute(query, {**params, "g": guild_id}):
        for i, span in enumerate(spans):
            found[(int(row[0]), _span_key(span))] = (int(row[1 + 2 * i]), int(row[2 + 2 * i]))
    return found


def _span_key(span: tuple[int, int]) -> int:
    """Spans are keyed by their first day (ALL_WEEKS: the whole month)."""
    return span[0]


def read_weeks(
    conn: Connection, guild_id: int, months: Iterable[int], channel_id: int | None
) -> dict[tuple[int, int, int, int], tuple[int, int]]:
    """Stored rows: (month, source, channel, week) -> (active, voice); ``channel_id`` None:
    every channel, not the whole guild."""
    wanted = ", ".join(str(int(m)) for m in sorted(set(months)))
    if not wanted:
        return {}
    channel = "channel_id <> :w" if channel_id is None else "channel_id IN (:c, :w)"
    query = text(
        "SELECT month, source, channel_id, week, active_users, voice_users FROM week_users "
        f"WHERE guild_id = :g AND month IN ({wanted}) AND {channel}"
    )
    params = {"g": guild_id, "w": WHOLE_GUILD, "c": channel_id}
    return {
        (int(m), int(s), int(c), int(w)): (int(a), int(v))
        for m, s, c, w, a, v in conn.execute(query, params)
    }


def _month_rows(
    conn: Connection, guild_id: int, calendar: GuildCalendar, month: int
) -> list[tuple[int, int, int, int]]:
    """(channel, week, active, voice) of every channel with held bits, and `WHOLE_GUILD`'s
    `ALL_WEEKS` row even when there are none (it marks the cache as built)."""
    weeks = month_weeks(calendar, month)
    spans = [(ALL_WEEKS, ALL_WEEKS), *weeks.values()]
    counts = count_spans(conn, guild_id, calendar, month, spans, "1 = 1", {})
    rows = {(c, ALL_WEEKS if key == ALL_WEEKS else week_of_day(key)): v
            for (c, key), v in counts.items()}  # fmt: skip
    rows.setdefault((WHOLE_GUILD, ALL_WEEKS), (0, 0))
    return [(c, w, a, v) for (c, w), (a, v) in sorted(rows.items())]


def _lock_month(conn: Connection, guild_id: int) -> None:
    """Take the writers' turn before reading the bits: SQLite's write lock (a no-op write),
    PostgreSQL's per-guild advisory lock of the summaries' writers."""
    if conn.dialect.name == "postgresql":
        from guildmeter.store.summaries import _lock_key

        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(guild_id)})
    else:
        conn.execute(text("DELETE FROM week_users WHERE guild_id = -1"))


def _insert(conn: Connection, guild_id: int, month: int, source: int,
            rows: Sequence[tuple[int, int, int, int]]) -> None:  # fmt: skip
    if rows:
        conn.execute(
            week_users.insert(),
            [
                {"guild_id": guild_id, "month": month, "source": source, "channel_id": c,
                 "week": w, "active_users": a, "voice_users": v}
                for c, w, a, v in rows
            ],
        )  # fmt: skip


def build_held(conn: Connection, calendars: Calendars, guild_id: int, month: int) -> int:
    """Store the weekly counts of a closed month's held bits (in the caller's transaction,
    which writes nothing else: the bits are read under the writers' lock, so a write into
    the month either came before and is counted, or comes after and drops them)."""
    _lock_month(conn, guild_id)
    forget_held(conn, [(guild_id, month)])
    rows = _month_rows(conn, guild_id, calendars.get(guild_id), month)
    _insert(conn, guild_id, month, HELD, rows)
    return len(rows)


def keep_dropped(conn: Connection, calendar: GuildCalendar, guild_id: int, month: int) -> None:
    """Before a month's day bits are deleted (fold, retention), in that transaction: add
    their weekly counts to the month's DROPPED rows; the HELD cache goes with the bits."""
    fresh = {(c, w): (a, v) for c, w, a, v in _month_rows(conn, guild_id, calendar, month)}
    params = {"g": guild_id, "m": month}
    earlier = conn.execute(
        text(
            "SELECT channel_id, week, active_users, voice_users FROM week_users "
            f"WHERE guild_id = :g AND month = :m AND source = {DROPPED}"
        ),
        params,
    )
    for c, w, a, v in earlier:  # dropped before (a fold, then retention): tokens differ
        was = fresh.get((int(c), int(w)), (0, 0))
        fresh[(int(c), int(w))] = (was[0] + int(a), was[1] + int(v))
    conn.execute(text("DELETE FROM week_users WHERE guild_id = :g AND month = :m"), params)
    _insert(conn, guild_id, month, DROPPED,
            [(c, w, a, v) for (c, w), (a, v) in sorted(fresh.items())])  # fmt: skip


def forget_held(conn: Connection, pairs: Iterable[tuple[int, int]]) -> None:
    """Drop the HELD cache of these (guild, month) pairs (their bits changed)."""
    for guild_id, month in sorted(set(pairs)):
        conn.execute(
            text(f"DELETE FROM week_users WHERE guild_id = :g AND month = :m AND source = {HELD}"),
            {"g": guild_id, "m": month},
        )


def forget_guild(conn: Connection, guild_id: int, *, dropped_too: bool) -> None:
    """Drop a guild's HELD cache (its clock changed), and its DROPPED counts too when its
    statistics are deleted."""
    held = "" if dropped_too else f" AND source = {HELD}"
    conn.execute(text(f"DELETE FROM week_users WHERE guild_id = :g{held}"), {"g": guild_id})


def forget_closed(
    conn: Connection, calendars: Calendars, months: Iterable[tuple[int, int]], now: datetime
) -> None:
    """After a write, in its transaction: drop the HELD cache of the closed months it
    touched (none for a flush of the current month, which is never cached)."""
    stamp = int(now.timestamp())
    closed = []
    for guild_id, month in months:
        calendar = calendars.get(guild_id)
        if month < calendar.month_of_bucket(calendar.bucket_of_s(stamp)):
            closed.append((guild_id, month))
    forget_held(conn, closed)


def missing_held(
    conn: Connection, calendars: Calendars, now: datetime, guild_id: int | None = None
) -> list[tuple[int, int]]:
    """Closed guild-months with distinct users counted but no HELD cache (two small
    tables), oldest first."""
    where = "" if guild_id is None else "AND u.guild_id = :g"
    query = text(
        "SELECT u.guild_id, u.month FROM month_users u WHERE u.channel_id = :w "
        f"{where} AND NOT EXISTS (SELECT 1 FROM week_users k WHERE k.guild_id = u.guild_id "
        f"AND k.month = u.month AND k.source = {HELD} AND k.channel_id = :w "
        f"AND k.week = {ALL_WEEKS}) ORDER BY u.month, u.guild_id"
    )
    stamp = int(now.timestamp())
    out = []
    for g, m in conn.execute(query, {"w": WHOLE_GUILD, "g": guild_id}):
        calendar = calendars.get(int(g))
        if int(m) < calendar.month_of_bucket(calendar.bucket_of_s(stamp)):
            out.append((int(g), int(m)))
    return out


def build_missing(store: Store, now: datetime, limit: int | None = None) -> list[tuple[int, int]]:
    """Build the HELD cache of closed months that lack it, a month per transaction (one
    scan of its day bits: a third of a second on a server of 20,000 members); returns
    those built. Stops at a busy database (the next check goes on)."""
    with store.engine.connect() as conn:
        missing = missing_held(conn, store.calendars, now)
    built = []
    for guild_id, month in missing[:limit]:
        try:
            with store.transaction() as conn:
                build_held(conn, store.calendars, guild_id, month)
        except StoreUnavailableError as exc:
            log.info("weekly counts of month %d postponed: %s", month, exc)
            break
        built.append((guild_id, month))
    return built
