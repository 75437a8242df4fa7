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
one user to its day (and, a member's first bit of the month, to the month). The database
compares, counts and sets the bits (`_set_bits`): Python hands it the members grouped by
channel and day and reads back one count per group, never a row per member. The writers
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
from itertools import groupby
from operator import itemgetter
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
    "writers_turn",
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


#: Runs of rows that share (guild, event, hour, channel): sorted rows come in few of them.
_RUN = itemgetter(0, 1, 2, 3)
_MEMBER = itemgetter(4)
_COUNT = itemgetter(5)

#: Presences of a write: (guild, month, channel, 0 messages / 1 voice) -> day bit ->
#: member ids. Sets per day, not a mask per member: a write's rows fill them in C.
Presence = dict[tuple[int, int, int, int], dict[int, set[int]]]


class _Changes:
    """What a write adds to (or, from a deletion, takes from) the summaries."""

    def __init__(self) -> None:
        # [messages, voice seconds, joins, parts, member total or None]
        self.hours: dict[tuple[int, int, int], list[Any]] = {}
        # [messages, voice seconds, joins, parts, active, voice users, total, total's hour]
        self.days: dict[tuple[int, int, int], list[Any]] = {}
        self.months: dict[tuple[int, int, int], list[int]] = {}
        #: The members seen in the rows, per channel and day (see `Presence`).
        self.presence: Presence = {}
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
        counts added, member totals set) or deleted (-1: a member's rows, no totals).

        Rows sorted by their first four fields (every writer sorts them) are taken a run
        of one (guild, event, hour, channel) at a time: its counts summed and its members
        gathered by C code, so a large flush costs little Python per row. Unsorted rows
        give more, shorter runs, and the same result.
        """
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
        presence = self.presence
        whole = WHOLE_GUILD
        for (guild_id, event, hour, channel_id), run in groupby(rows, _RUN):
            index = _INDEX.get(event)
            if index is None:
                if event == _TOTAL:
                    day = place(guild_id, hour)[0]
                    for row in run:
                        count = row[5]
                        for channel in (channel_id, whole):
                            self.hour((guild_id, hour, channel))[4] = count
                            entry = self.day((guild_id, day, channel))
                            if entry[7] is None or hour >= entry[7]:
                                entry[6], entry[7] = count, hour
                continue
            found = sums.get((guild_id, hour, channel_id))
            if found is None:
                found = sums[(guild_id, hour, channel_id)] = [0, 0, 0, 0]
            members: set[int] | None = None
            if sign > 0 and index < 2:
                counted = list(run)
                found[index] += sum(map(_COUNT, counted))
                members = set(map(_MEMBER, counted))
                members.discard(0)
            else:
                found[index] += sum(map(_COUNT, run))
            if members:
                _day, month, bit = where.get((guild_id, hour)) or place(guild_id, hour)
                by_bit = presence.get((guild_id, month, channel_id, index))
                if by_bit is None:
                    presence[(guild_id, month, channel_id, index)] = {bit: members}
                elif bit in by_bit:
                    by_bit[bit] |= members
                else:
                    by_bit[bit] = members
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
        if sign < 0:
            self.removed = True

    def patterns(self) -> list[tuple[int, int, int, int, int, list[int]]]:
        """The presences as ``(guild, month, channel, msg bits, voice bits, member ids)``:
        every member of a (guild, month, channel) once, the whole guild's (`WHOLE_GUILD`)
        included, grouped by their bits (a write of one day: at most three groups)."""
        every: Presence = dict(self.presence)
        for (guild_id, month, _channel, index), by_bit in self.presence.items():
            whole = every.setdefault((guild_id, month, WHOLE_GUILD, index), {})
            for bit, members in by_bit.items():
                if bit in whole:
                    whole[bit] |= members
                else:
                    whole[bit] = set(members)
        pairs: dict[tuple[int, int, int], list[dict[int, set[int]]]] = {}
        for (guild_id, month, channel_id, index), by_bit in every.items():
            pairs.setdefault((guild_id, month, channel_id), [{}, {}])[index] = by_bit
        out = []
        for (guild_id, month, channel_id), (msg, voice) in pairs.items():
            for (msg_bits, voice_bits), ids in _groups(msg, voice).items():
                out.append((guild_id, month, channel_id, msg_bits, voice_bits, ids))
        return out


def _groups(
    msg: dict[int, set[int]], voice: dict[int, set[int]]
) -> dict[tuple[int, int], list[int]]:
    """(msg bits, voice bits) -> the members with exactly those bits."""
    if len(msg) <= 1 and len(voice) <= 1:  # one day (or none) of each: set operations
        msg_bit, talked = next(iter(msg.items()), (0, set[int]()))
        voice_bit, spoke = next(iter(voice.items()), (0, set[int]()))
        both = talked & spoke
        found = ((msg_bit, 0, talked - both), (0, voice_bit, spoke - both),
                 (msg_bit, voice_bit, both))  # fmt: skip
        return {(m, v): sorted(ids) for m, v, ids in found if ids}
    masks: dict[int, list[int]] = {}
    for index, by_bit in ((0, msg), (1, voice)):
        for bit, members in by_bit.items():
            for member in members:
                found_bits = masks.get(member)
                if found_bits is None:
                    found_bits = masks[member] = [0, 0]
                found_bits[index] |= bit
    groups: dict[tuple[int, int], list[int]] = {}
    for member, (msg_bits, voice_bits) in masks.items():
        groups.setdefault((msg_bits, voice_bits), []).append(member)
    return {bits: sorted(ids) for bits, ids in groups.items()}


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
        "WHERE guild_id = :g AND hour >= :s AND hour < :e "
        "ORDER BY guild_id, event, hour, channel_id, member_id"
    )
    result = conn.execute(query, {"g": guild_id, "s": first_hour, "e": end_hour})
    while chunk := result.fetchmany(200_000):
        rows = [(int(g), int(e), int(h), int(c), int(m), int(n)) for g, e, h, c, m, n in chunk]
        record_rows(conn, calendars, rows)


def _apply(conn: Connection, calendars: Calendars, changes: _Changes) -> None:
    """Set the presences' day bits, turn the bits newly set into user counts, and write
    every change."""
    if not changes.hours and not changes.days:
        return
    writers_turn(conn, {key[0] for key in changes.days})
    if changes.presence:
        gained = _set_bits(conn, changes.patterns())
        for guild_id, month, channel_id, new_msg, new_voice, first_msg, first_voice, n in gained:
            first = month_first_day(calendars.get(guild_id), month)
            for index, fresh, first_of_month in ((4, new_msg, first_msg),
                                                 (5, new_voice, first_voice)):  # fmt: skip
                if not fresh:
                    continue
                for offset in _bits(fresh):
                    changes.day((guild_id, first + offset, channel_id))[index] += n
                if first_of_month:
                    changes.month((guild_id, month, channel_id))[index - 4] += n
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


#: The keys of a write with their new bits, from its groups as one JSON text
#: ``[[guild, month, channel, msg bits, voice bits, [member, ...]], ...]``: one
#: parameter, however many members (the driver adapts it in C, not per value).
_SQLITE_KEYS = (
    "WITH p AS MATERIALIZED (SELECT value ->> 0 AS g, value ->> 1 AS m, value ->> 2 AS c, "
    "value ->> 3 AS msg, value ->> 4 AS voice, value -> 5 AS ids FROM json_each(?)), "
    "k AS (SELECT p.g AS g, p.m AS m, p.c AS c, i.value AS i, p.msg AS msg, p.voice AS voice "
    "FROM p, json_each(p.ids) i) "
)
_PG_KEYS = (
    "WITH p AS MATERIALIZED (SELECT CAST(value ->> 0 AS BIGINT) AS g, "
    "CAST(value ->> 1 AS INTEGER) AS m, CAST(value ->> 2 AS BIGINT) AS c, "
    "CAST(value ->> 3 AS BIGINT) AS msg, CAST(value ->> 4 AS BIGINT) AS voice, "
    "value -> 5 AS ids FROM jsonb_array_elements(CAST(:groups AS JSONB))), "
    "k AS (SELECT p.g AS g, p.m AS m, p.c AS c, CAST(i AS BIGINT) AS i, p.msg AS msg, "
    "p.voice AS voice FROM p, jsonb_array_elements_text(p.ids) AS i) "
)
#: Per (guild, month, channel): how many members gained which bits, and whether they had
#: no bit of the month before. Read before the bits are set.
_GAINED = (
    "SELECT g, m, c, a, b, x, y, COUNT(*) FROM (SELECT k.g AS g, k.m AS m, k.c AS c, "
    "k.msg & ~COALESCE(d.msg_days, 0) AS a, k.voice & ~COALESCE(d.voice_days, 0) AS b, "
    "COALESCE(d.msg_days, 0) = 0 AS x, COALESCE(d.voice_days, 0) = 0 AS y "
    "FROM k LEFT JOIN member_days d ON d.guild_id = k.g AND d.month = k.m "
    "AND d.channel_id = k.c AND d.member_id = k.i) AS f "
    "WHERE a <> 0 OR b <> 0 GROUP BY 1, 2, 3, 4, 5, 6, 7"
)
#: `_GAINED` as one JSON array: the driver gives the GIL up for every row it steps to, and
#: a flush thread waits for it behind a busy event loop each time.
_SQLITE_GAINED = (
    "SELECT json_group_array(json_array(g, m, c, a, b, x, y, n)) FROM ("
    + _GAINED.replace("COUNT(*) FROM", "COUNT(*) AS n FROM", 1)
    + ")"
)
#: Set the bits; a key whose bits are all set already is not written.
_SET = (
    f"INSERT INTO member_days ({', '.join(_MASK_COLUMNS)}) SELECT g, m, c, i, msg, voice "
    "FROM k WHERE true ON CONFLICT (guild_id, month, channel_id, member_id) DO UPDATE SET "
    "msg_days = member_days.msg_days | excluded.msg_days, "
    "voice_days = member_days.voice_days | excluded.voice_days "
    "WHERE (member_days.msg_days | excluded.msg_days) <> member_days.msg_days "
    "OR (member_days.voice_days | excluded.voice_days) <> member_days.voice_days"
)

_SQLITE_IDS = 50_000


def _set_bits(
    conn: Connection, groups: Sequence[tuple[int, int, int, int, int, list[int]]]
) -> list[tuple[int, ...]]:
    """Set the day bits of the members of `_Changes.patterns` in ``member_days``; returns
    `_GAINED`'s rows ``(guild, month, channel, new msg bits, new voice bits, no msg bit
    before, no voice bit before, members)``.

    The database compares and counts: Python sees one row per (channel, pattern), not one
    per member, and only members that gain a bit are written.
    """
    if not groups:
        return []
    if conn.dialect.name == "postgresql":
        params = {"groups": json.dumps(groups)}
        # One statement: its parts share a snapshot, so the count reads the bits from
        # before the insert (the guild's advisory lock keeps other writers out).
        query = _PG_KEYS + f", written AS ({_SET}) " + _GAINED
        return [tuple(int(v) for v in row) for row in conn.execute(text(query), params)]
    gained = []
    for chunk in _id_chunks(groups, _SQLITE_IDS):
        keys = json.dumps(chunk)
        # Out as one JSON value: a row fetched is a GIL hand-off (see `_SQLITE_GAINED`).
        found = conn.exec_driver_sql(_SQLITE_KEYS + _SQLITE_GAINED, (keys,)).scalar()
        gained += [tuple(row) for row in json.loads(found or "[]")]
        conn.exec_driver_sql(_SQLITE_KEYS + _SET, (keys,))
    return gained


def _id_chunks(
    groups: Sequence[tuple[int, int, int, int, int, list[int]]], size: int
) -> Iterator[list[tuple[int, int, int, int, int, list[int]]]]:
    """Groups in chunks of at most ``size`` member ids (a large group split)."""
    chunk: list[tuple[int, int, int, int, int, list[int]]] = []
    room = size
    for guild_id, month, channel_id, msg, voice, ids in groups:
        for start in range(0, len(ids), size):
            part = ids[start : start + size]
            if len(part) > room:
                yield chunk
                chunk, room = [], size
            chunk.append((guild_id, month, channel_id, msg, voice, part))
            room -= len(part)
    if chunk:
        yield chunk


def writers_turn(conn: Connection, guild_ids: Iterable[int]) -> None:
    """PostgreSQL: take the turn of these guilds' writers, held until commit (sorted: no
    deadlock between them). A writer takes it before its first activity row: one that
    holds the turn and deletes rows (forget-me, a fold) would otherwise wait for a row
    that a writer waiting for the turn has locked. SQLite's write lock is the turn there."""
    if conn.dialect.name != "postgresql":
        return
    # Taken once per transaction (a flush asks for it again in the summaries' write), all
    # in one round trip: a flush of a sharded bot touches hundreds of guilds. ``conn.info``
    # outlives the transaction (it is the pooled DBAPI connection's): the turns are those
    # of the transaction recorded, and none before one has begun.
    transaction = conn.get_transaction()
    taken: tuple[object, set[int]] | None = conn.info.get(_TURNS)
    held = (
        taken[1]
        if taken is not None and transaction is not None and taken[0] is transaction
        else set()
    )
    wanted = sorted(set(guild_ids) - held)
    if not wanted:
        return
    # In the array's (sorted) order, which unnest keeps: no two writers wait in a ring.
    conn.execute(
        text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"),
        {"keys": [_lock_key(g) for g in wanted]},
    )
    conn.info[_TURNS] = (conn.get_transaction(), held | set(wanted))  # begun by now


#: ``conn.info`` key: the transaction whose writers' turns were taken, and the guilds.
_TURNS = "guildmeter_writers_turns"


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
    writers_turn(conn, [guild_id])  # before the rows it deletes: see writers_turn
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
