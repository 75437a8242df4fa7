"""Day summaries: per guild, local day and channel, kept exact by every writer (issue 13).

Reports over long ranges should not read every hourly member row. Four small tables hold
what they need, all derived from ``activity``:

- ``hour_summaries``: per bucket (hour) and channel, the sums — messages, voice seconds,
  joins, parts — and the member total; channel `WHOLE_GUILD` sums every channel.
- ``member_days``: per statistics month, channel and member (a pseudonym's or token's
  integer id), the local days of the month the member sent a message (``msg_days``) and
  was in voice (``voice_days``), as bits (bit 0: the month's first local day). No counts,
  no hours. Distinct users of any set of days of a month are counted from these bits.
- ``day_summaries``: per local day and channel (and `WHOLE_GUILD`), messages, voice
  seconds, active users, voice users, joins, parts and the latest member total.
- ``month_users``: per statistics month and channel, distinct active and voice users.

Every writer recomputes what it touched inside its own transaction (`refresh`): the sums
of each touched local day are re-read from the hourly rows, the day bits of the members in
them are set, and the distinct counts of the touched days and months are recounted from
the bits. Writes only add rows, so setting bits is exact; the writers that remove rows
say what they removed (`forget_member`, `delete_guild`). When an "aggregates only" guild's
month is folded (`guildmeter.store.rights.collapse_if_aggregates_only`) the member rows go
but the bits stay — they hold only which days an anonymous token was active, never how
much — so the distinct counts stay those computed before the fold, and a late event of
that month (written under a fresh token) adds to them exactly.

Days are the guild's local days (`guildmeter.zones`): day ``d`` holds the buckets whose
local wall-clock hours since the epoch, divided by 24, are ``d``. A zone change only takes
effect from a month without counts (see `guildmeter.store.timezones`), except for a guild
without member statistics, which switches at once: then its summaries are rebuilt from
the hourly rows on the new clock (`rebuild_guild`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    text,
)

from guildmeter.events import EventKind
from guildmeter.store import schema
from guildmeter.zones import Calendars, GuildCalendar

__all__ = [
    "WHOLE_GUILD",
    "after_zone_change",
    "day_summaries",
    "delete_guild",
    "forget_member",
    "has_member_days",
    "hour_summaries",
    "member_days",
    "month_users",
    "rebuild_all",
    "rebuild_guild",
    "refresh",
    "refresh_rows",
    "summary_tables",
]

#: The channel id of rows that cover the whole guild (no Discord or import id is this low).
WHOLE_GUILD = -(2**63)

_MSG, _JOIN, _PART = int(EventKind.MSG), int(EventKind.JOIN), int(EventKind.PART)
_VOICE, _TOTAL = int(EventKind.VOICE), int(EventKind.TOTAL_USERS)
_EVENTS = ", ".join(str(int(kind)) for kind in EventKind)

hour_summaries = Table(
    "hour_summaries",
    schema.metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("hour", Integer, nullable=False),
    Column("channel_id", BigInteger, nullable=False),
    Column("messages", BigInteger, nullable=False),
    Column("voice_seconds", BigInteger, nullable=False),
    Column("joins", BigInteger, nullable=False),
    Column("parts", BigInteger, nullable=False),
    Column("member_total", BigInteger, nullable=True),
    PrimaryKeyConstraint("guild_id", "hour", "channel_id"),
)

#: The heatmap reads one channel's (or the whole guild's) hours in order.
hour_summaries_by_channel = Index(
    "ix_hour_summaries_channel",
    hour_summaries.c.guild_id,
    hour_summaries.c.channel_id,
    hour_summaries.c.hour,
    hour_summaries.c.messages,
)

member_days = Table(
    "member_days",
    schema.metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("month", Integer, nullable=False),
    Column("channel_id", BigInteger, nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("msg_days", BigInteger, nullable=False),
    Column("voice_days", BigInteger, nullable=False),
    PrimaryKeyConstraint("guild_id", "month", "channel_id", "member_id"),
)

day_summaries = Table(
    "day_summaries",
    schema.metadata,
    Column("guild_id", BigInteger, nullable=False),
    # Local days since 1970-01-01 on the guild's clock.
    Column("day", Integer, nullable=False),
    Column("channel_id", BigInteger, nullable=False),
    Column("messages", BigInteger, nullable=False),
    Column("voice_seconds", BigInteger, nullable=False),
    Column("active_users", Integer, nullable=False),
    Column("voice_users", Integer, nullable=False),
    Column("joins", BigInteger, nullable=False),
    Column("parts", BigInteger, nullable=False),
    # The last member total recorded in the day, and its bucket.
    Column("member_total", BigInteger, nullable=True),
    Column("member_total_hour", Integer, nullable=True),
    PrimaryKeyConstraint("guild_id", "day", "channel_id"),
)

month_users = Table(
    "month_users",
    schema.metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("month", Integer, nullable=False),
    Column("channel_id", BigInteger, nullable=False),
    Column("active_users", Integer, nullable=False),
    Column("voice_users", Integer, nullable=False),
    PrimaryKeyConstraint("guild_id", "month", "channel_id"),
)

summary_tables = (hour_summaries, member_days, day_summaries, month_users)

# -- the guild's local days ------------------------------------------------------------------


@lru_cache(maxsize=1 << 18)
def day_of_bucket(calendar: GuildCalendar, bucket: int) -> int:
    """The local day (days since 1970-01-01 on the guild's wall clock) of a bucket."""
    return calendar.local_hours(bucket) // 24


@lru_cache(maxsize=1 << 14)
def month_first_day(calendar: GuildCalendar, month: int) -> int:
    """The local day of a month's first bucket: bit 0 of its ``member_days``."""
    return day_of_bucket(calendar, calendar.first_bucket(month))


@lru_cache(maxsize=1 << 16)
def day_buckets(calendar: GuildCalendar, day: int) -> tuple[int, ...]:
    """Every bucket of a local day (23, 24 or 25 of them; fewer at a zone change)."""
    if calendar.is_utc:
        return tuple(range(day * 24, day * 24 + 24))
    window = range(day * 24 - 16, day * 24 + 40)
    return tuple(b for b in window if day_of_bucket(calendar, b) == day)


# -- maintenance -------------------------------------------------------------------------------

_TOUCHED = "gm_touched_hours"
_TOUCHED_COLUMNS = "guild_id, hour, day, month, bit, bitval"


def refresh_rows(conn: Connection, calendars: Calendars, rows: Iterable[tuple[int, ...]]) -> None:
    """`refresh` for freshly upserted activity rows ``(guild, event, hour, …)``."""
    touched: dict[int, set[int]] = defaultdict(set)
    for row in rows:
        touched[row[0]].add(row[2])
    refresh(conn, calendars, touched)


def refresh(conn: Connection, calendars: Calendars, touched: Mapping[int, Iterable[int]]) -> None:
    """Recompute every summary of each (guild, local day) holding one of the ``touched``
    buckets (``{guild: buckets}``), in the caller's transaction."""
    hours: list[dict[str, int]] = []
    for guild_id in sorted(touched):
        calendar = calendars.get(guild_id)
        days = {day_of_bucket(calendar, b) for b in touched[guild_id]}
        for day in sorted(days):
            for bucket in day_buckets(calendar, day):
                month = calendar.month_of_bucket(bucket)
                bit = day - month_first_day(calendar, month)
                hours.append(
                    {"g": guild_id, "h": bucket, "d": day, "m": month, "b": bit, "v": 1 << bit}
                )
    if not hours:
        return
    dialect = conn.dialect.name
    if dialect == "postgresql":
        # Shards writing the same guild take turns (sorted: no deadlock between them).
        for guild_id in sorted(touched):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(guild_id)})
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {_TOUCHED} (guild_id BIGINT, hour INTEGER, "
            "day INTEGER, month INTEGER, bit INTEGER, bitval BIGINT) ON COMMIT DELETE ROWS"
        )
    else:
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {_TOUCHED} (guild_id INTEGER, hour INTEGER, "
            "day INTEGER, month INTEGER, bit INTEGER, bitval INTEGER)"
        )
    conn.exec_driver_sql(f"DELETE FROM {_TOUCHED}")
    conn.execute(
        text(f"INSERT INTO {_TOUCHED} ({_TOUCHED_COLUMNS}) VALUES (:g, :h, :d, :m, :b, :v)"),
        hours,
    )
    if dialect == "postgresql":
        conn.exec_driver_sql(f"ANALYZE {_TOUCHED}")
    for sql in _REFRESH_SQL:
        conn.exec_driver_sql(sql)
    _write_days(conn)
    conn.exec_driver_sql(f"DELETE FROM {_TOUCHED}")


def _lock_key(guild_id: int) -> int:
    """An advisory lock key of the guild's summaries (apart from the migration lock)."""
    return (guild_id ^ 0x5EED_0013) & 0x7FFF_FFFF_FFFF_FFFF


_T = _TOUCHED
_W = WHOLE_GUILD
_REFRESH_SQL = (
    # Hour sums of the touched days, from the hourly rows.
    f"DELETE FROM hour_summaries WHERE (guild_id, hour) IN (SELECT guild_id, hour FROM {_T})",
    "INSERT INTO hour_summaries (guild_id, hour, channel_id, messages, voice_seconds, joins, "
    "parts, member_total) "
    "SELECT a.guild_id, a.hour, a.channel_id, "
    f"SUM(CASE WHEN a.event = {_MSG} THEN a.count ELSE 0 END), "
    f"SUM(CASE WHEN a.event = {_VOICE} THEN a.count ELSE 0 END), "
    f"SUM(CASE WHEN a.event = {_JOIN} THEN a.count ELSE 0 END), "
    f"SUM(CASE WHEN a.event = {_PART} THEN a.count ELSE 0 END), "
    f"MAX(CASE WHEN a.event = {_TOTAL} THEN a.count END) "
    f"FROM {_T} t CROSS JOIN activity a "
    f"WHERE a.guild_id = t.guild_id AND a.event IN ({_EVENTS}) AND a.hour = t.hour "
    "GROUP BY a.guild_id, a.hour, a.channel_id "
    "ON CONFLICT (guild_id, hour, channel_id) DO UPDATE SET messages = excluded.messages, "
    "voice_seconds = excluded.voice_seconds, joins = excluded.joins, parts = excluded.parts, "
    "member_total = excluded.member_total",
    "INSERT INTO hour_summaries (guild_id, hour, channel_id, messages, voice_seconds, joins, "
    "parts, member_total) "
    f"SELECT h.guild_id, h.hour, {_W}, SUM(h.messages), SUM(h.voice_seconds), SUM(h.joins), "
    "SUM(h.parts), MAX(h.member_total) "
    f"FROM {_T} t CROSS JOIN hour_summaries h "
    f"WHERE h.guild_id = t.guild_id AND h.hour = t.hour AND h.channel_id <> {_W} "
    "GROUP BY h.guild_id, h.hour "
    "ON CONFLICT (guild_id, hour, channel_id) DO UPDATE SET messages = excluded.messages, "
    "voice_seconds = excluded.voice_seconds, joins = excluded.joins, parts = excluded.parts, "
    "member_total = excluded.member_total",
    # The members' day bits (per channel, then for the whole guild): only ever set.
    *(
        "INSERT INTO member_days (guild_id, month, channel_id, member_id, msg_days, voice_days) "
        f"SELECT guild_id, month, {channel}, member_id, "
        f"SUM(CASE WHEN event = {_MSG} THEN bitval ELSE 0 END), "
        f"SUM(CASE WHEN event = {_VOICE} THEN bitval ELSE 0 END) "
        f"FROM (SELECT DISTINCT a.guild_id, t.month, {inner}a.member_id, a.event, t.bitval "
        f"FROM {_T} t CROSS JOIN activity a WHERE a.guild_id = t.guild_id "
        f"AND a.event IN ({_MSG}, {_VOICE}) AND a.hour = t.hour AND a.member_id <> 0) p "
        f"WHERE true GROUP BY guild_id, month, {group}member_id "
        "ON CONFLICT (guild_id, month, channel_id, member_id) DO UPDATE SET "
        "msg_days = member_days.msg_days | excluded.msg_days, "
        "voice_days = member_days.voice_days | excluded.voice_days"
        for channel, inner, group in (
            ("channel_id", "a.channel_id, ", "channel_id, "),
            (str(_W), "", ""),
        )
    ),
    # Distinct users of the touched months, from the bits.
    "DELETE FROM month_users WHERE (guild_id, month) IN "
    f"(SELECT DISTINCT guild_id, month FROM {_T})",
    "INSERT INTO month_users (guild_id, month, channel_id, active_users, voice_users) "
    "SELECT m.guild_id, m.month, m.channel_id, "
    "SUM(CASE WHEN m.msg_days <> 0 THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN m.voice_days <> 0 THEN 1 ELSE 0 END) "
    f"FROM (SELECT DISTINCT guild_id, month FROM {_T}) t CROSS JOIN member_days m "
    "WHERE m.guild_id = t.guild_id AND m.month = t.month "
    "GROUP BY m.guild_id, m.month, m.channel_id "
    "ON CONFLICT (guild_id, month, channel_id) DO UPDATE SET "
    "active_users = excluded.active_users, voice_users = excluded.voice_users",
)

_DAY_USERS_SQL = (
    "SELECT m.guild_id, t.day, m.channel_id, SUM((m.msg_days >> t.bit) & 1), "
    "SUM((m.voice_days >> t.bit) & 1) "
    f"FROM (SELECT DISTINCT guild_id, month, day, bit FROM {_T}) t CROSS JOIN member_days m "
    "WHERE m.guild_id = t.guild_id AND m.month = t.month "
    "GROUP BY m.guild_id, t.day, m.channel_id"
)
_DAY_SUMS_SQL = (
    "SELECT h.guild_id, t.day, h.channel_id, SUM(h.messages), SUM(h.voice_seconds), "
    "SUM(h.joins), SUM(h.parts) "
    f"FROM {_T} t CROSS JOIN hour_summaries h "
    "WHERE h.guild_id = t.guild_id AND h.hour = t.hour "
    "GROUP BY h.guild_id, t.day, h.channel_id"
)
_DAY_TOTALS_SQL = (
    "SELECT h.guild_id, t.day, h.hour, h.member_total "
    f"FROM {_T} t CROSS JOIN hour_summaries h "
    f"WHERE h.guild_id = t.guild_id AND h.hour = t.hour AND h.channel_id = {_W} "
    "AND h.member_total IS NOT NULL"
)
_DAY_COLUMNS = (
    "guild_id", "day", "channel_id", "messages", "voice_seconds", "active_users",
    "voice_users", "joins", "parts", "member_total", "member_total_hour",
)  # fmt: skip


def _write_days(conn: Connection) -> None:
    """The touched days' rows: sums from the hour sums, users from the bits."""
    rows: dict[tuple[int, int, int], dict[str, Any]] = {}

    def row(guild_id: int, day: int, channel_id: int) -> dict[str, Any]:
        key = (int(guild_id), int(day), int(channel_id))
        found = rows.get(key)
        if found is None:
            found = rows[key] = dict.fromkeys(_DAY_COLUMNS[3:9], 0) | {
                "guild_id": key[0], "day": key[1], "channel_id": key[2],
                "member_total": None, "member_total_hour": None,
            }  # fmt: skip
        return found

    for g, d, c, messages, voice, joins, parts in conn.exec_driver_sql(_DAY_SUMS_SQL):
        entry = row(g, d, c)
        entry.update(messages=int(messages), voice_seconds=int(voice), joins=int(joins),
                     parts=int(parts))  # fmt: skip
    for g, d, c, active, in_voice in conn.exec_driver_sql(_DAY_USERS_SQL):
        if active or in_voice or (int(g), int(d), int(c)) in rows:
            entry = row(g, d, c)
            # A day split between two months (a zone change) is counted in both.
            entry["active_users"] += int(active)
            entry["voice_users"] += int(in_voice)
    for g, d, hour, total in conn.exec_driver_sql(_DAY_TOTALS_SQL):
        entry = row(g, d, _W)
        if entry["member_total_hour"] is None or hour > entry["member_total_hour"]:
            entry.update(member_total=int(total), member_total_hour=int(hour))
    conn.exec_driver_sql(
        "DELETE FROM day_summaries WHERE (guild_id, day) IN "
        f"(SELECT DISTINCT guild_id, day FROM {_T})"
    )
    if rows:
        updates = ", ".join(f"{c} = excluded.{c}" for c in _DAY_COLUMNS[3:])
        conn.execute(
            text(
                f"INSERT INTO day_summaries ({', '.join(_DAY_COLUMNS)}) VALUES "
                f"({', '.join(':' + c for c in _DAY_COLUMNS)}) "
                f"ON CONFLICT (guild_id, day, channel_id) DO UPDATE SET {updates}"
            ),
            [rows[key] for key in sorted(rows)],
        )


# -- the writers that remove rows ------------------------------------------------------------


def member_hours(conn: Connection, guild_id: int, member_id: int) -> list[int]:
    """The buckets holding a member's rows (read before `forget_member` deletes them)."""
    act = schema.activity
    from sqlalchemy import select

    return [
        int(h)
        for h in conn.scalars(
            select(act.c.hour)
            .where(act.c.guild_id == guild_id, act.c.event.in_([int(k) for k in EventKind]))
            .where(act.c.member_id == member_id)
            .distinct()
        )
    ]


def forget_member(
    conn: Connection,
    calendars: Calendars,
    guild_id: int,
    month: int,
    member_id: int,
    hours: Iterable[int],
) -> None:
    """After a member's rows of ``hours`` were deleted: their bits go, their days are
    recomputed."""
    conn.execute(
        text("DELETE FROM member_days WHERE guild_id = :g AND month = :m AND member_id = :i"),
        {"g": guild_id, "m": month, "i": member_id},
    )
    refresh(conn, calendars, {guild_id: list(hours)})


def delete_guild(conn: Connection, guild_id: int) -> int:
    """Every summary of a guild; returns the rows deleted."""
    deleted = 0
    for table in summary_tables:
        result = conn.execute(table.delete().where(table.c.guild_id == guild_id))
        deleted += int(result.rowcount or 0)
    return deleted


def has_member_days(conn: Connection, guild_id: int) -> bool:
    """Whether distinct users of the guild were counted (they may outlive member rows)."""
    found = conn.execute(
        text("SELECT 1 FROM member_days WHERE guild_id = :g LIMIT 1"), {"g": guild_id}
    ).first()
    return found is not None


def rebuild_guild(conn: Connection, calendar: GuildCalendar, guild_id: int) -> None:
    """Every summary of a guild, again from its hourly rows, on ``calendar``.

    Only right where the hourly rows still hold every member (nothing folded at month
    end): a guild whose clock changes at once has no member statistics at all.
    """
    delete_guild(conn, guild_id)
    rebuild_guilds(conn, Calendars({guild_id: calendar.schedule}), [guild_id])


def rebuild_guilds(conn: Connection, calendars: Calendars, guild_ids: Iterable[int]) -> None:
    """Summaries of guilds that have none yet, from their hourly rows, a month at a time."""
    for guild_id in guild_ids:
        calendar = calendars.get(guild_id)
        by_month: dict[int, list[int]] = defaultdict(list)
        hours = conn.execute(
            text("SELECT DISTINCT hour FROM activity WHERE guild_id = :g"), {"g": guild_id}
        ).scalars()
        for hour in hours:
            by_month[calendar.month_of_bucket(int(hour))].append(int(hour))
        for month in sorted(by_month):
            refresh(conn, calendars, {guild_id: by_month[month]})


def rebuild_all(conn: Connection, calendars: Calendars) -> None:
    """Summaries of every guild from the hourly rows (a database that had none)."""
    guilds = conn.execute(text("SELECT DISTINCT guild_id FROM activity")).scalars()
    rebuild_guilds(conn, calendars, sorted(int(g) for g in guilds))


def after_zone_change(
    conn: Connection, calendars: Calendars, guild_id: int, from_month: int | None
) -> None:
    """The guild's clock changed (``calendars`` hold the new one) from ``from_month`` on,
    or at once (None): recompute what the new clock moves.

    At once happens only to a guild without member statistics (neither member rows nor
    day bits): everything is rebuilt from the hourly rows. From a month on, only counts
    already stored for that month or later (normally none: it has not begun) are read
    again on the new clock; earlier days keep their clock and their summaries.
    """
    calendar = calendars.get(guild_id)
    if from_month is None:
        rebuild_guild(conn, calendar, guild_id)
        return
    first_day = day_of_bucket(calendar, calendar.first_bucket(from_month) - 48)
    start = day_buckets(calendar, first_day)[0] if day_buckets(calendar, first_day) else 0
    params = {"g": guild_id, "s": start, "d": first_day, "m": from_month}
    hours = list(
        conn.execute(
            text("SELECT DISTINCT hour FROM activity WHERE guild_id = :g AND hour >= :s"), params
        ).scalars()
    )
    if not hours:
        return
    for sql in (
        "DELETE FROM member_days WHERE guild_id = :g AND month >= :m",
        "DELETE FROM month_users WHERE guild_id = :g AND month >= :m",
        "DELETE FROM hour_summaries WHERE guild_id = :g AND hour >= :s",
        "DELETE FROM day_summaries WHERE guild_id = :g AND day >= :d",
    ):
        conn.execute(text(sql), params)
    refresh(conn, calendars, {guild_id: [int(h) for h in hours]})
