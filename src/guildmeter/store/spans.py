"""Distinct users of spans of closed months, stored so the dashboard need not count them.

Distinct users of a span inside a month are counted from the members' day bits
(`guildmeter.store.summaries.member_days`): a scan of the month's rows, about 12 ms per
month on a server of 20,000 posting members, so a 12-month weekly chart costs 0.13 s.
``span_users`` holds, per guild, statistics month, channel (and `WHOLE_GUILD`) and span
of the month's local days [first_day, end_day), the distinct active and voice users of:
the whole month, each Monday-start week (its days inside the month), and each prefix and
suffix of the month (what a rolling period such as "30 days" takes of the months at its
ends). Other spans (inside one month, not a whole week) are counted from the bits.

Two sources:

- `HELD` — a cache of the bits the month holds now, built off the hot path for closed
  months only (`build_missing`, by the bot's monthly job). Any change of the month's bits
  drops it (`forget_held`: from `guildmeter.store.snapshots.after_write`, forget-me, a
  timezone change); nothing is added to a flush of the current month.
- `DROPPED` — the counts of the bits a fold to aggregates only or retention deletes
  (`keep_dropped`, in their transaction, just before ``drop_member_days``): aggregates
  like the day and month totals that stay. Late tokens of a folded month come with fresh
  ids and keep their bits, so a span's figure is then DROPPED + the held bits, exactly.
  Months whose bits were deleted before this table (or whose summaries were rebuilt) have
  no DROPPED rows: the reader sees that the bits known do not add up to the month's own
  distinct users (``month_users``) and says "not available".

A build (`build_missing`) never holds the writers' turn while it counts (a second or two
per month of 20,000 members, which the flush would wait for): it claims the month with a
`BUILDING` row under the turn, counts from the committed bits without it, and stores its
rows under the turn only if its claim is still there. Every change of the month's bits
drops the claim with the cache (`forget_held`), so a build that raced one is discarded.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
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
    "BUILDING",
    "DROPPED",
    "HELD",
    "WRITER_SKEW",
    "Span",
    "build_held",
    "build_missing",
    "count_spans",
    "forget_closed",
    "forget_guild",
    "forget_held",
    "keep_dropped",
    "missing_held",
    "month_span",
    "read_spans",
    "span_users",
    "stored_spans",
]

log = logging.getLogger(__name__)

HELD, DROPPED = 0, 1
#: A build's claim on a month (see the module docstring): a row with no span (days 0 to 0)
#: whose ``active_users`` is the build's random number.
BUILDING = 2
#: How far behind a writer's clock may be (a shard on another host): `forget_closed` treats
#: a month as closed from this long before its end, so such a writer, still thinking the
#: month current, drops the cache built at its end all the same.
WRITER_SKEW = timedelta(days=1)

span_users = Table(
    "span_users",
    schema.metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("month", Integer, nullable=False),
    Column("source", SmallInteger, nullable=False),
    Column("channel_id", BigInteger, nullable=False),
    # Local days since 1970-01-01 on the guild's clock, [first_day, end_day).
    Column("first_day", Integer, nullable=False),
    Column("end_day", Integer, nullable=False),
    Column("active_users", Integer, nullable=False),
    Column("voice_users", Integer, nullable=False),
    # Read by month, channel and span (the dashboard), dropped by month.
    PrimaryKeyConstraint("guild_id", "month", "channel_id", "first_day", "end_day", "source"),
)

#: Local days [first, end).
Span = tuple[int, int]
#: (channel, span) -> (active, voice) distinct users.
SpanCounts = dict[tuple[int, Span], tuple[int, int]]


def month_span(calendar: GuildCalendar, month: int) -> Span:
    """A statistics month's local days, [first, end)."""
    first = month_first_day(calendar, month)
    return first, day_of_bucket(calendar, calendar.first_bucket(add_months(month, 1)) - 1) + 1


def stored_spans(calendar: GuildCalendar, month: int) -> set[Span]:
    """The spans of a month that are stored: the month, its weeks, prefixes and suffixes."""
    first, end = month_span(calendar, month)
    spans = {(first, end)}
    for day in range(first, end):
        week = (day + 3) // 7  # Monday-start weeks (1970-01-01 was a Thursday)
        spans.add((max(week * 7 - 3, first), min(week * 7 + 4, end)))
        if day > first:
            spans.update(((first, day), (day, end)))
    return spans


def _mask(first: int, span: Span) -> int:
    return ((1 << (span[1] - first)) - 1) ^ ((1 << (span[0] - first)) - 1)


def count_spans(
    conn: Connection,
    guild_id: int,
    calendar: GuildCalendar,
    month: int,
    spans: Sequence[Span],
    channel: str,
    params: dict[str, object],
) -> SpanCounts:
    """Distinct active and voice users of each span of local days inside the month, per
    channel, from the held day bits (one scan of the month's rows). ``channel``: an SQL
    condition on ``channel_id`` with its ``params``."""
    first = month_first_day(calendar, month)
    sums = ", ".join(
        f"SUM(CASE WHEN (msg_days & {_mask(first, span)}) <> 0 THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN (voice_days & {_mask(first, span)}) <> 0 THEN 1 ELSE 0 END)"
        for span in spans
    )
    query = text(
        f"SELECT channel_id, {sums} FROM member_days WHERE guild_id = :g "
        f"AND month = {int(month)} AND {channel} GROUP BY channel_id"
    )
    found: SpanCounts = {}
    for row in conn.execute(query, {**params, "g": guild_id}):
        for i, span in enumerate(spans):
            found[(int(row[0]), span)] = (int(row[1 + 2 * i]), int(row[2 + 2 * i]))
    return found


#: Day bits a month can hold: 28 to 31 days, and up to 33 local days in the month a
#: guild's zone changes (+14:00 to -12:00 makes a month 26 hours longer).
DAY_BITS = 40


def _highest_bit(x: str, low: int = 0, high: int = DAY_BITS) -> str:
    """SQL for the index of the highest set bit of ``x`` (0 < x < 2**high), by halves."""
    if high - low == 1:
        return str(low)
    middle = (low + high) // 2
    above, below = _highest_bit(x, middle, high), _highest_bit(x, low, middle)
    return f"CASE WHEN {x} >= {1 << middle} THEN {above} ELSE {below} END"


def _edge_counts(conn: Connection, guild_id: int, month: int) -> dict[str, dict[int, list[int]]]:
    """Per channel, members by the offset of their first and of their last active day:
    ``{"first"|"last": {channel: [n per offset] for msg, then for voice}}`` (`DAY_BITS`
    each)."""
    out: dict[str, dict[int, list[int]]] = {"first": {}, "last": {}}
    for edge in ("first", "last"):
        columns = []
        for bits in ("msg_days", "voice_days"):
            x = f"({bits} & -{bits})" if edge == "first" else bits
            columns.append(f"CASE WHEN {bits} = 0 THEN -1 ELSE {_highest_bit(x)} END")
        query = text(
            f"SELECT channel_id, {columns[0]} AS m, {columns[1]} AS v, COUNT(*) "
            f"FROM member_days WHERE guild_id = :g AND month = {int(month)} "
            "GROUP BY channel_id, m, v"
        )
        for channel_id, m, v, n in conn.execute(query, {"g": guild_id}):
            found = out[edge].setdefault(int(channel_id), [0] * (2 * DAY_BITS))
            for kind, offset in ((0, int(m)), (1, int(v))):
                if offset >= 0:
                    found[kind * DAY_BITS + offset] += int(n)
    return out


def _month_rows(
    conn: Connection, guild_id: int, calendar: GuildCalendar, month: int
) -> dict[tuple[int, Span], tuple[int, int]]:
    """Every stored span's counts of every channel with held bits, and `WHOLE_GUILD`'s whole
    month even when there are none (that row marks a HELD cache as built).

    Weeks (and the month) from one scan; prefixes and suffixes from the members' first
    and last active days (a prefix of k days: members whose first day is in it).
    """
    first, end = month_span(calendar, month)
    spans = stored_spans(calendar, month)
    weeks = sorted(s for s in spans if s == (first, end) or (s[0] != first and s[1] != end))
    rows = count_spans(conn, guild_id, calendar, month, weeks, "1 = 1", {})
    edges = _edge_counts(conn, guild_id, month)
    for channel_id, firsts in edges["first"].items():
        lasts = edges["last"][channel_id]
        for day in range(first + 1, end):
            k = day - first
            rows[(channel_id, (first, day))] = (
                sum(firsts[:k]),
                sum(firsts[DAY_BITS : DAY_BITS + k]),
            )
            rows[(channel_id, (day, end))] = (sum(lasts[k:DAY_BITS]), sum(lasts[DAY_BITS + k :]))
    rows.setdefault((WHOLE_GUILD, (first, end)), (0, 0))
    return rows


def read_spans(
    conn: Connection,
    guild_id: int,
    months: Iterable[int],
    spans: Iterable[Span],
    channel_id: int | None,
) -> dict[tuple[int, int, int, Span], tuple[int, int]]:
    """Stored rows of these months and spans (and maybe a few more): (month, source,
    channel, span) -> (active, voice); ``channel_id`` None: every channel, else that one
    and `WHOLE_GUILD`."""
    wanted = ", ".join(str(int(m)) for m in sorted(set(months)))
    spans = set(spans)
    if not wanted or not spans:
        return {}
    firsts = ", ".join(str(int(f)) for f in sorted({f for f, _ in spans}))
    ends = ", ".join(str(int(e)) for e in sorted({e for _, e in spans}))
    channel = "1 = 1" if channel_id is None else "channel_id IN (:c, :w)"
    query = text(
        "SELECT month, source, channel_id, first_day, end_day, active_users, voice_users "
        f"FROM span_users WHERE guild_id = :g AND month IN ({wanted}) AND {channel} "
        f"AND first_day IN ({firsts}) AND end_day IN ({ends}) AND source <> {BUILDING}"
    )
    params = {"g": guild_id, "w": WHOLE_GUILD, "c": channel_id}
    return {
        (int(m), int(s), int(c), (int(f), int(e))): (int(a), int(v))
        for m, s, c, f, e, a, v in conn.execute(query, params)
    }


def _writers_turn(conn: Connection, guild_id: int) -> None:
    """Take the turn of the guild's writers of day bits before reading or dropping stored
    counts: SQLite's write lock (a no-op write), PostgreSQL's per-guild advisory lock that
    every summaries writer takes (``summaries._apply``)."""
    if conn.dialect.name == "postgresql":
        from guildmeter.store.summaries import _lock_key

        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(guild_id)})
    else:
        conn.execute(text("DELETE FROM span_users WHERE guild_id = -1"))


def _insert(
    conn: Connection,
    guild_id: int,
    month: int,
    source: int,
    rows: dict[tuple[int, Span], tuple[int, int]],
) -> None:
    if rows:
        conn.execute(
            span_users.insert(),
            [
                {"guild_id": guild_id, "month": month, "source": source, "channel_id": c,
                 "first_day": f, "end_day": e, "active_users": a, "voice_users": v}
                for (c, (f, e)), (a, v) in sorted(rows.items())
            ],
        )  # fmt: skip


def build_held(store: Store, guild_id: int, month: int) -> int | None:
    """Store the span counts of a closed month's held bits; returns the rows stored, or
    None when the bits changed while they were counted (nothing stored; the next check
    builds again).

    Three transactions (see the module docstring): the claim and the store are short and
    hold the writers' turn; the count between them holds no lock. A lost or busy database
    in any of them is `StoreUnavailableError` (`build_missing` postpones); a claim left
    behind is never read as counts, and the next build of the month replaces it.
    """
    claim = secrets.randbelow(2**31 - 1) + 1
    with store.transaction() as conn:
        _writers_turn(conn, guild_id)
        forget_held(conn, [(guild_id, month)], turn_taken=True)  # an older claim too
        conn.execute(
            span_users.insert().values(
                guild_id=guild_id, month=month, source=BUILDING, channel_id=WHOLE_GUILD,
                first_day=0, end_day=0, active_users=claim, voice_users=0,
            )
        )  # fmt: skip
    # Writes nothing. Its statements may read different commits (pysqlite begins no
    # transaction for reads; READ COMMITTED): a write between them drops the claim.
    with store.transaction() as conn:
        rows = _month_rows(conn, guild_id, store.calendars.get(guild_id), month)
    with store.transaction() as conn:
        _writers_turn(conn, guild_id)
        claimed = conn.execute(
            text(
                "DELETE FROM span_users WHERE guild_id = :g AND month = :m "
                f"AND source = {BUILDING} AND active_users = :claim"
            ),
            {"g": guild_id, "m": month, "claim": claim},
        )
        if claimed.rowcount != 1:
            return None  # the bits changed meanwhile (or another build claimed the month)
        _insert(conn, guild_id, month, HELD, rows)
    return len(rows)


def keep_dropped(conn: Connection, calendar: GuildCalendar, guild_id: int, month: int) -> None:
    """Before a month's day bits are deleted (fold, retention), in that transaction: add
    their span counts to the month's DROPPED rows; the HELD cache goes with the bits."""
    _writers_turn(conn, guild_id)
    rows = _month_rows(conn, guild_id, calendar, month)
    params = {"g": guild_id, "m": month}
    earlier = conn.execute(
        text(
            "SELECT channel_id, first_day, end_day, active_users, voice_users FROM span_users "
            f"WHERE guild_id = :g AND month = :m AND source = {DROPPED}"
        ),
        params,
    ).all()
    for c, f, e, a, v in earlier:  # dropped before (a fold, then retention): tokens differ
        key = (int(c), (int(f), int(e)))
        was = rows.get(key, (0, 0))
        rows[key] = (was[0] + int(a), was[1] + int(v))
    conn.execute(text("DELETE FROM span_users WHERE guild_id = :g AND month = :m"), params)
    _insert(conn, guild_id, month, DROPPED, rows)


def forget_held(
    conn: Connection, pairs: Iterable[tuple[int, int]], *, turn_taken: bool = False
) -> None:
    """Drop the HELD cache (and a build's claim) of these (guild, month) pairs (their bits
    changed), in the transaction that changed them; ``turn_taken``: it holds the writers'
    turn already."""
    for guild_id, month in sorted(set(pairs)):
        if not turn_taken:
            _writers_turn(conn, guild_id)
        conn.execute(
            text(
                f"DELETE FROM span_users WHERE guild_id = :g AND month = :m AND source <> {DROPPED}"
            ),
            {"g": guild_id, "m": month},
        )


def forget_guild(conn: Connection, guild_id: int, *, dropped_too: bool) -> None:
    """Drop a guild's HELD cache (its clock changed), and its DROPPED counts too when its
    statistics are deleted."""
    held = "" if dropped_too else f" AND source <> {DROPPED}"  # HELD and claims
    _writers_turn(conn, guild_id)
    conn.execute(text(f"DELETE FROM span_users WHERE guild_id = :g{held}"), {"g": guild_id})


def _closed(calendar: GuildCalendar, month: int, now: datetime) -> bool:
    return month < calendar.month_of_bucket(calendar.bucket_of_s(int(now.timestamp())))


def forget_closed(
    conn: Connection, calendars: Calendars, months: Iterable[tuple[int, int]], now: datetime
) -> None:
    """After a write, in its transaction: drop the HELD cache of the closed months it
    touched (no SQL for a flush of the current month, which is never cached, except in its
    last day: see `WRITER_SKEW`)."""
    closed = [(g, m) for g, m in months if _closed(calendars.get(g), m, now + WRITER_SKEW)]
    # A write changes day bits only in ``summaries._apply``, under the writers' turn.
    forget_held(conn, closed, turn_taken=True)


def missing_held(conn: Connection, calendars: Calendars, now: datetime) -> list[tuple[int, int]]:
    """Closed guild-months with distinct users counted but no HELD cache (two small
    tables), oldest first."""
    query = text(
        "SELECT u.guild_id, u.month FROM month_users u WHERE u.channel_id = :w "
        "AND NOT EXISTS (SELECT 1 FROM span_users k WHERE k.guild_id = u.guild_id "
        f"AND k.month = u.month AND k.source = {HELD} AND k.channel_id = :w) "
        "ORDER BY u.month, u.guild_id"
    )
    pairs = [(int(g), int(m)) for g, m in conn.execute(query, {"w": WHOLE_GUILD})]
    return [(g, m) for g, m in pairs if _closed(calendars.get(g), m, now)]


def build_missing(store: Store, now: datetime, limit: int | None = None) -> list[tuple[int, int]]:
    """Build the HELD cache of closed months that lack it, a month at a time (about a
    second each on a server of 20,000 members, without the writers' turn); returns those
    built. Stops at a busy database (the next check goes on)."""
    with store.engine.connect() as conn:
        missing = missing_held(conn, store.calendars, now)
    built = []
    for guild_id, month in missing[:limit]:
        try:
            stored = build_held(store, guild_id, month)
        except StoreUnavailableError as exc:
            log.info("stored distinct users of month %d postponed: %s", month, exc)
            break
        if stored is None:
            log.info("month %d changed while its distinct users were counted; next check", month)
        else:
            built.append((guild_id, month))
    return built
