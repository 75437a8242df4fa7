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

Every writer keeps them exact inside its own transaction, in time proportional to what it
writes (`record_rows`, called by the one write path, ``Store._apply``, that the flush,
imports and backfills share): its counts are added to the sums (member totals: the latest
hour wins), the day bits of the members in its rows are set, and each bit newly set adds
one user to its day (and, a member's first bit of the month, to the month). The writers
that remove rows take out what they remove (`forget_member`, `delete_guild`). When an
"aggregates only" guild's month is folded at month end (`guildmeter.store.rights.
collapse_if_aggregates_only`) the sums and the distinct counts do not change, and the
month's bits are dropped (`drop_member_days`): no per-token trace stays. A late event of
that month comes under a fresh token and adds to the counts exactly; the writer folds it
at once (`guildmeter.store.rights.fold_late_counts`) but keeps its bits — which days that
anonymous token was active, never how much — so the same token written again (its process
keeps it) is not counted twice. An upgrade fills the tables from the hourly rows through
the same path (`rebuild_all`).

Days are the guild's local days (`guildmeter.zones`): day ``d`` holds the buckets whose
local wall-clock hours since the epoch, divided by 24, are ``d``. A zone change only takes
effect from a month without counts (see `guildmeter.store.timezones`), except for a guild
without member statistics, which switches at once: then its summaries are rebuilt from
the hourly rows on the new clock (`after_zone_change`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
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
    "drop_member_days",
    "forget_member",
    "has_member_days",
    "hour_summaries",
    "member_days",
    "month_users",
    "rebuild_all",
    "rebuild_guild",
    "record_rows",
    "record_stored",
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

_INDEX = {_MSG: 0, _VOICE: 1, _JOIN: 2, _PART: 3}
_HOUR_COLUMNS = ("guild_id", "hour", "channel_id", "messages", "voice_seconds", "joins",
                 "parts", "member_total")  # fmt: skip
_DAY_COLUMNS = ("guild_id", "day", "channel_id", "messages", "voice_seconds", "joins",
                "parts", "active_users", "voice_users", "member_total",
                "member_total_hour")  # fmt: skip
_MONTH_COLUMNS = ("guild_id", "month", "channel_id", "active_users", "voice_users")
_MASK_COLUMNS = ("guild_id", "month", "channel_id", "member_id", "msg_days", "voice_days")
_PG_TYPES = {"hour": "INTEGER", "day": "INTEGER", "month": "INTEGER",
             "member_total_hour": "INTEGER", "active_users": "INTEGER",
             "voice_users": "INTEGER"}  # fmt: skip


class _Changes:
    """What a write adds to (or, from a deletion, takes from) the summaries."""

    def __init__(self) -> None:
        # [messages, voice seconds, joins, parts, member total or None]
        self.hours: dict[tuple[int, int, int], list[Any]] = {}
        # [messages, voice seconds, joins, parts, active, voice users, total, total's hour]
        self.days: dict[tuple[int, int, int], list[Any]] = {}
        self.months: dict[tuple[int, int, int], list[int]] = {}
        #: Day bits seen in the rows: (guild, month, channel, member) -> [msg, voice].
        self.presence: dict[tuple[int, int, int, int], list[int]] = {}
        self.removed = False

    def hour(self, key: tuple[int, int, int]) -> list[Any]:
        found = self.hours.get(key)
        if found is None:
            found = self.hours[key] = [0, 0, 0, 0, None]
        return found

    def day(self, key: tuple[int, int, int]) -> list[Any]:
        found = self.days.get(key)
        if found is None:
            found = self.days[key] = [0, 0, 0, 0, 0, 0, None, None]
        return found

    def month(self, key: tuple[int, int, int]) -> list[int]:
        found = self.months.get(key)
        if found is None:
            found = self.months[key] = [0, 0]
        return found

    def add_rows(
        self, calendars: Calendars, rows: Iterable[tuple[int, ...]], sign: int = 1
    ) -> None:
        """Activity rows ``(guild, event, hour, channel, member, count)`` written (sign 1:
        counts added, member totals set) or deleted (-1: a member's rows, no totals)."""
        where: dict[tuple[int, int], tuple[int, int, int]] = {}

        def place(guild_id: int, hour: int) -> tuple[int, int, int]:
            found = where.get((guild_id, hour))
            if found is None:
                calendar = calendars.get(guild_id)
                month = calendar.month_of_bucket(hour)
                day = day_of_bucket(calendar, hour)
                bit = 1 << (day - month_first_day(calendar, month))
                found = where[(guild_id, hour)] = (day, month, bit)
            return found

        sums: dict[tuple[int, int, int], list[int]] = {}
        seen: dict[tuple[int, int, int, int], list[int]] = {}
        whole = WHOLE_GUILD
        for guild_id, event, hour, channel_id, member_id, count in rows:
            index = _INDEX.get(event)
            if index is None:
                if event == _TOTAL:
                    day = place(guild_id, hour)[0]
                    for channel in (channel_id, whole):
                        self.hour((guild_id, hour, channel))[4] = count
                        entry = self.day((guild_id, day, channel))
                        if entry[7] is None or hour >= entry[7]:
                            entry[6], entry[7] = count, hour
                continue
            found = sums.get((guild_id, hour, channel_id))
            if found is None:
                found = sums[(guild_id, hour, channel_id)] = [0, 0, 0, 0]
            found[index] += count
            if sign > 0 and member_id and index < 2:
                _day, month, bit = where.get((guild_id, hour)) or place(guild_id, hour)
                bits = seen.get((guild_id, month, channel_id, member_id))
                if bits is None:
                    bits = seen[(guild_id, month, channel_id, member_id)] = [0, 0]
                bits[index] |= bit
        for (guild_id, hour, channel_id), values in sums.items():
            day = place(guild_id, hour)[0]
            for key in ((guild_id, hour, channel_id), (guild_id, hour, whole)):
                entry = self.hour(key)
                for i in range(4):
                    entry[i] += sign * values[i]
            for key in ((guild_id, day, channel_id), (guild_id, day, whole)):
                entry = self.day(key)
                for i in range(4):
                    entry[i] += sign * values[i]
        presence = self.presence
        for (guild_id, month, channel_id, member_id), (msg, voice) in seen.items():
            for mask in ((guild_id, month, channel_id, member_id),
                         (guild_id, month, whole, member_id)):  # fmt: skip
                bits = presence.get(mask)
                if bits is None:
                    bits = presence[mask] = [0, 0]
                bits[0] |= msg
                bits[1] |= voice
        if sign < 0:
            self.removed = True


def record_rows(conn: Connection, calendars: Calendars, rows: Iterable[tuple[int, ...]]) -> None:
    """The summaries of activity rows ``(guild, event, hour, channel, member, count)`` just
    upserted (counts added, member totals set), in the writer's transaction."""
    changes = _Changes()
    changes.add_rows(calendars, rows)
    _apply(conn, calendars, changes)


def record_stored(
    conn: Connection, calendars: Calendars, guild_id: int, first_hour: int, end_hour: int
) -> None:
    """Add the guild's stored rows of buckets [first, end) to summaries that lack them
    (an upgrade, a rebuild, a bulk copy)."""
    query = text(
        "SELECT guild_id, event, hour, channel_id, member_id, count FROM activity "
        "WHERE guild_id = :g AND hour >= :s AND hour < :e"
    )
    result = conn.execute(query, {"g": guild_id, "s": first_hour, "e": end_hour})
    while chunk := result.fetchmany(200_000):
        rows = [(int(g), int(e), int(h), int(c), int(m), int(n)) for g, e, h, c, m, n in chunk]
        record_rows(conn, calendars, rows)


def _apply(conn: Connection, calendars: Calendars, changes: _Changes) -> None:
    """Turn presences into user counts (bits newly set) and write every change."""
    if not changes.hours and not changes.days:
        return
    dialect = conn.dialect.name
    if dialect == "postgresql":
        # Shards writing the same guild take turns (sorted: no deadlock between them).
        for guild_id in sorted({key[0] for key in changes.days}):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(guild_id)})
    if changes.presence:
        old = _stored_masks(conn, list(changes.presence))
        masks = []
        for key, (msg, voice) in changes.presence.items():
            was_msg, was_voice = old.get(key, (0, 0))
            new_msg, new_voice = msg & ~was_msg, voice & ~was_voice
            if not new_msg and not new_voice:
                continue
            guild_id, month, channel_id, _member = key
            first = month_first_day(calendars.get(guild_id), month)
            for index, fresh, was in ((4, new_msg, was_msg), (5, new_voice, was_voice)):
                if not fresh:
                    continue
                for offset in _bits(fresh):
                    changes.day((guild_id, first + offset, channel_id))[index] += 1
                if not was:
                    changes.month((guild_id, month, channel_id))[index - 4] += 1
            masks.append((*key, was_msg | msg, was_voice | voice))
        _upsert(conn, "member_days", _MASK_COLUMNS, 4, masks, "msg_days = excluded.msg_days, "
                "voice_days = excluded.voice_days")  # fmt: skip
    _write(conn, changes)


def _bits(value: int) -> Iterator[int]:
    while value:
        low = value & -value
        yield low.bit_length() - 1
        value ^= low


def _write(conn: Connection, changes: _Changes) -> None:
    hours = [(*key, *values) for key, values in sorted(changes.hours.items())]
    add = "{0} = hour_summaries.{0} + excluded.{0}"
    total = "member_total = COALESCE(excluded.member_total, hour_summaries.member_total)"
    _upsert(conn, "hour_summaries", _HOUR_COLUMNS, 3, hours,
            ", ".join(add.format(c) for c in _HOUR_COLUMNS[3:7]) + ", " + total)  # fmt: skip
    days = [(*key, *values) for key, values in sorted(changes.days.items())]
    add = "{0} = day_summaries.{0} + excluded.{0}"
    later = ("excluded.member_total_hour IS NOT NULL AND (day_summaries.member_total_hour IS "
             "NULL OR excluded.member_total_hour >= day_summaries.member_total_hour)")  # fmt: skip
    _upsert(conn, "day_summaries", _DAY_COLUMNS, 3, days,
            ", ".join(add.format(c) for c in _DAY_COLUMNS[3:9])
            + f", member_total = CASE WHEN {later} THEN excluded.member_total "
            "ELSE day_summaries.member_total END"
            + f", member_total_hour = CASE WHEN {later} THEN excluded.member_total_hour "
            "ELSE day_summaries.member_total_hour END")  # fmt: skip
    months = [(*key, *values) for key, values in sorted(changes.months.items())]
    add = "{0} = month_users.{0} + excluded.{0}"
    _upsert(conn, "month_users", _MONTH_COLUMNS, 3, months,
            ", ".join(add.format(c) for c in _MONTH_COLUMNS[3:]))  # fmt: skip
    if changes.removed:
        # Rows a deletion emptied: as if nothing had been counted there.
        for guild_id in sorted({key[0] for key in changes.days}):
            params = {"g": guild_id}
            conn.execute(
                text(
                    "DELETE FROM hour_summaries WHERE guild_id = :g AND messages = 0 AND "
                    "voice_seconds = 0 AND joins = 0 AND parts = 0 AND member_total IS NULL"
                ),
                params,
            )
            conn.execute(
                text(
                    "DELETE FROM day_summaries WHERE guild_id = :g AND messages = 0 AND "
                    "voice_seconds = 0 AND joins = 0 AND parts = 0 AND active_users = 0 AND "
                    "voice_users = 0 AND member_total IS NULL"
                ),
                params,
            )
            conn.execute(text(
                "DELETE FROM month_users WHERE guild_id = :g AND active_users = 0 "
                "AND voice_users = 0"), params)  # fmt: skip


def _upsert(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    keys: int,
    rows: Sequence[tuple[Any, ...]],
    updates: str,
) -> None:
    """One set-based upsert: rows as one JSON parameter (SQLite) or arrays (PostgreSQL)."""
    if not rows:
        return
    names = ", ".join(columns)
    conflict = f"ON CONFLICT ({', '.join(columns[:keys])}) DO UPDATE SET {updates}"
    if conn.dialect.name == "postgresql":
        arrays = {f"a{i}": [row[i] for row in rows] for i in range(len(columns))}
        source = ", ".join(
            f"CAST(:a{i} AS {_PG_TYPES.get(c, 'BIGINT')}[])" for i, c in enumerate(columns)
        )
        conn.execute(
            text(f"INSERT INTO {table} ({names}) SELECT * FROM unnest({source}) {conflict}"),
            arrays,
        )
        return
    values = ", ".join(f"value ->> {i}" for i in range(len(columns)))
    sql = f"INSERT INTO {table} ({names}) SELECT {values} FROM json_each(?) WHERE true {conflict}"
    for start in range(0, len(rows), 20_000):
        conn.exec_driver_sql(sql, (json.dumps(rows[start : start + 20_000]),))


def _stored_masks(
    conn: Connection, keys: Sequence[tuple[int, int, int, int]]
) -> dict[tuple[int, int, int, int], tuple[int, int]]:
    """The stored day bits of ``(guild, month, channel, member)`` keys (absent: none)."""
    found: dict[tuple[int, int, int, int], tuple[int, int]] = {}
    columns = "d.guild_id, d.month, d.channel_id, d.member_id, d.msg_days, d.voice_days"
    match = ("d.guild_id = k.g AND d.month = k.m AND d.channel_id = k.c "
             "AND d.member_id = k.i")  # fmt: skip
    if conn.dialect.name == "postgresql":
        query = text(
            f"SELECT {columns} FROM unnest(CAST(:g AS BIGINT[]), CAST(:m AS INTEGER[]), "
            "CAST(:c AS BIGINT[]), CAST(:i AS BIGINT[])) AS k(g, m, c, i) "
            f"JOIN member_days d ON {match}"
        )
        params = {name: [key[n] for key in keys] for n, name in enumerate("gmci")}
        rows: Iterable[Any] = conn.execute(query, params)
        for g, m, c, i, msg, voice in rows:
            found[(int(g), int(m), int(c), int(i))] = (int(msg), int(voice))
        return found
    # The answer as one JSON text: the driver hands over one value, not a row per key.
    sql = (
        f"SELECT json_group_array(json_array({columns})) FROM (SELECT value ->> 0 AS g, "
        "value ->> 1 AS m, value ->> 2 AS c, value ->> 3 AS i FROM json_each(?)) k "
        f"CROSS JOIN member_days d WHERE {match}"
    )
    for start in range(0, len(keys), 20_000):
        chunk = json.dumps(keys[start : start + 20_000])
        answer = conn.exec_driver_sql(sql, (chunk,)).scalar()
        for g, m, c, i, msg, voice in json.loads(answer or "[]"):
            found[(g, m, c, i)] = (msg, voice)
    return found


def _lock_key(guild_id: int) -> int:
    """An advisory lock key of the guild's summaries (apart from the migration lock)."""
    return (guild_id ^ 0x5EED_0013) & 0x7FFF_FFFF_FFFF_FFFF


# -- the writers that remove rows ------------------------------------------------------------


def forget_member(
    conn: Connection, calendars: Calendars, guild_id: int, month: int, member_id: int
) -> None:
    """Before a member's rows are deleted (forget-me): take them out of the summaries."""
    changes = _Changes()
    rows = conn.execute(
        text(
            "SELECT guild_id, event, hour, channel_id, member_id, count FROM activity "
            f"WHERE guild_id = :g AND event IN ({_EVENTS}) AND member_id = :i"
        ),
        {"g": guild_id, "i": member_id},
    )
    changes.add_rows(calendars, [tuple(int(v) for v in row) for row in rows], sign=-1)
    first = month_first_day(calendars.get(guild_id), month)
    params = {"g": guild_id, "m": month, "i": member_id}
    for channel_id, msg, voice in conn.execute(
        text(
            "SELECT channel_id, msg_days, voice_days FROM member_days "
            "WHERE guild_id = :g AND month = :m AND member_id = :i"
        ),
        params,
    ):
        for index, bits in ((4, int(msg)), (5, int(voice))):
            for offset in _bits(bits):
                changes.day((guild_id, first + offset, int(channel_id)))[index] -= 1
            if bits:
                changes.month((guild_id, month, int(channel_id)))[index - 4] -= 1
    conn.execute(
        text("DELETE FROM member_days WHERE guild_id = :g AND month = :m AND member_id = :i"),
        params,
    )
    changes.removed = True
    _write(conn, changes)


def delete_guild(conn: Connection, guild_id: int) -> int:
    """Every summary of a guild; returns the rows deleted."""
    deleted = 0
    for table in summary_tables:
        result = conn.execute(table.delete().where(table.c.guild_id == guild_id))
        deleted += int(result.rowcount or 0)
    return deleted


def has_member_days(conn: Connection, guild_id: int) -> bool:
    """Whether distinct users of the guild were counted (they outlive member rows and, in
    the month totals, the day bits dropped by a fold or retention)."""
    for table in ("member_days", "month_users"):
        found = conn.execute(
            text(f"SELECT 1 FROM {table} WHERE guild_id = :g LIMIT 1"), {"g": guild_id}
        ).first()
        if found is not None:
            return True
    return False


def drop_member_days(conn: Connection, guild_id: int, month: int) -> int:
    """Delete a month's per-member day bits (a fold to aggregates only, retention).

    The day and month totals of distinct users stay (they are aggregates); what is gone is
    which days each token was active. A late event of that month comes under a fresh token,
    so its bits are new anyway and still add exactly one user to its days and month (the
    fold of late counts keeps those bits: see the module docstring).
    """
    result = conn.execute(
        member_days.delete().where(member_days.c.guild_id == guild_id, member_days.c.month == month)
    )
    return int(result.rowcount or 0)


def rebuild_guild(conn: Connection, calendars: Calendars, guild_id: int) -> None:
    """Every summary of a guild, again from its hourly rows, on its clock in ``calendars``.

    Distinct users of months folded to aggregates only are then what the rows still show
    (none): a guild whose clock changes at once has no such month (see `has_member_days`).
    """
    delete_guild(conn, guild_id)
    span = conn.execute(
        text("SELECT MIN(hour), MAX(hour) FROM activity WHERE guild_id = :g"), {"g": guild_id}
    ).first()
    if span is None or span[0] is None:
        return
    first, last = int(span[0]), int(span[1])
    for start in range(first, last + 1, 24 * 31):
        record_stored(conn, calendars, guild_id, start, min(start + 24 * 31, last + 1))


def rebuild_all(conn: Connection, calendars: Calendars) -> None:
    """Summaries of every guild from the hourly rows (a database that had none)."""
    guilds = conn.execute(text("SELECT DISTINCT guild_id FROM activity")).scalars()
    for guild_id in sorted(int(g) for g in guilds):
        rebuild_guild(conn, calendars, guild_id)


def after_zone_change(
    conn: Connection, calendars: Calendars, guild_id: int, from_month: int | None
) -> None:
    """The guild's clock changed (``calendars`` hold the new one) from ``from_month`` on,
    or at once (None): recompute what the new clock moves.

    At once happens only to a guild without member statistics (neither member rows nor
    day bits): everything is rebuilt from the hourly rows on the new clock. From a month
    on, nothing stored moves unless counts of that month or later exist already (a clock
    set in the future, or tests): then the guild's summaries are rebuilt too.
    """
    if from_month is not None:
        calendar = calendars.get(guild_id)
        later = conn.execute(
            text("SELECT 1 FROM activity WHERE guild_id = :g AND hour >= :h LIMIT 1"),
            {"g": guild_id, "h": calendar.first_bucket(from_month) - 24},
        ).first()
        if later is None:
            return
    rebuild_guild(conn, calendars, guild_id)
