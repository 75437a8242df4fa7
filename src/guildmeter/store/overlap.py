"""Hours a KazTron import and the history backfill would both count: each hour's messages
(and joins) come from one source only.

Both read the same past: KazTron counted the messages and joins of its hours, the backfill
counts them again from Discord's history. Whichever came first keeps the hour:

- the backfill's cover is its cursors (`guildmeter.store.backfill`): per channel every
  message from ``covered_from`` up to the live start is counted, and the joins from the
  guild-wide cursor on. An import skips its message rows in the hours from the earliest
  channel cursor to the latest boundary, and its join rows in the joins' hours — the
  whole hour, even where the backfill's cover begins inside it; voice, parts and member
  totals, which the backfill never counts, are imported whatever the hour;
- an import records the hours it wrote messages and joins into (``import_hours``, runs of
  consecutive buckets, in its own transaction); a backfill counts no message (no join) of
  those hours;
- an unfinished backfill run (running or paused) has no final cover yet: an import is
  refused until it is done or cancelled.

`history_lock` serialises an import with a backfill's claim of the same guild: the import
reads the cover and writes its hours under it, and a claim (then the run's reading of the
imported hours) waits for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    case,
    select,
    text,
)

from guildmeter.errors import GuildmeterError
from guildmeter.events import EventKind
from guildmeter.store import schema
from guildmeter.store.backfill import (
    GUILD_WIDE,
    RUNNING,
    backfill_cursors,
    backfill_runs,
    live_starts,
    time_of_snowflake,
)
from guildmeter.store.sql import Store

__all__ = [
    "OVERLAP_EVENTS",
    "BackfillUnfinished",
    "Cover",
    "backfill_cover",
    "held_hours",
    "hour_runs",
    "import_hours",
    "imported_hours",
    "record_import_hours",
]

#: The events both sources count.
OVERLAP_EVENTS = (int(EventKind.MSG), int(EventKind.JOIN))

import_hours = Table(
    "import_hours",
    schema.metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("event", SmallInteger, nullable=False),
    Column("first_hour", Integer, nullable=False),  # a bucket
    Column("end_hour", Integer, nullable=False),  # the bucket after the run
    PrimaryKeyConstraint("guild_id", "event", "first_hour"),
)


class BackfillUnfinished(GuildmeterError):
    """An import while a backfill of the guild is still running or paused."""


@dataclass(frozen=True)
class Cover:
    """The buckets ``[first, end)`` per event that a guild's backfill has counted."""

    hours: Mapping[int, tuple[int, int]]

    def covers(self, event: int, hour: int) -> bool:
        span = self.hours.get(event)
        return span is not None and span[0] <= hour < span[1]


def hour_runs(hours: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted buckets as ``[first, end)`` runs of consecutive ones."""
    runs: list[tuple[int, int]] = []
    for hour in sorted(set(hours)):
        if runs and runs[-1][1] == hour:
            runs[-1] = (runs[-1][0], hour + 1)
        else:
            runs.append((hour, hour + 1))
    return runs


def backfill_cover(store: Store, conn: Connection, guild_id: int) -> Cover:
    """What the guild's backfill has counted, as buckets; `BackfillUnfinished` while a run
    of it is running or paused (its cover is not final)."""
    runs = backfill_runs
    run = conn.execute(
        select(runs.c.state, runs.c.target_id).where(runs.c.guild_id == guild_id)
    ).first()
    calendar = store.calendars.get(guild_id)
    if run is not None and run.state == RUNNING:
        since = calendar.bucket_start(calendar.bucket_of(time_of_snowflake(int(run.target_id))))
        raise BackfillUnfinished(
            f"a history backfill of guild {guild_id} is unfinished (it counts back to "
            f"{since:%Y-%m-%d %H:%M} UTC): let it finish, or cancel it (/userstats backfill "
            "cancel), then import again; its hours are then skipped, not counted twice"
        )
    starts = {
        int(row.channel_id): int(row.first_id)
        for row in conn.execute(
            select(live_starts.c.channel_id, live_starts.c.first_id).where(
                live_starts.c.guild_id == guild_id
            )
        )
    }
    guild_start = starts.get(GUILD_WIDE)
    spans: dict[int, tuple[int, int]] = {}
    messages: list[tuple[int, int]] = []
    for row in conn.execute(
        select(backfill_cursors.c.channel_id, backfill_cursors.c.covered_from).where(
            backfill_cursors.c.guild_id == guild_id
        )
    ):
        channel, covered = int(row.channel_id), int(row.covered_from)
        found = [x for x in (guild_start, starts.get(channel)) if x is not None]
        if not found:
            continue
        boundary = guild_start if channel == GUILD_WIDE else min(found)
        if boundary is None or covered >= boundary:
            continue
        if channel == GUILD_WIDE:
            spans[int(EventKind.JOIN)] = _buckets(store, guild_id, covered, boundary)
        else:
            messages.append((covered, boundary))
    if messages:
        low, high = min(m[0] for m in messages), max(m[1] for m in messages)
        spans[int(EventKind.MSG)] = _buckets(store, guild_id, low, high)
    return Cover(spans)


def held_hours(conn: Connection, guild_id: int, first: int, end: int, cover: Cover) -> set[int]:
    """Buckets in ``[first, end)`` the guild holds counts of already, from anything but the
    backfill (``cover``: its rows are messages and joins of those hours only): counted
    live, or by an earlier import."""
    # A seek per hour and event (a month: 3,720 of them, milliseconds), not a scan of the
    # month's rows (a million on a big server: 0.1 s warm, over a second cold).
    events = ", ".join(f"({int(e)})" for e in EventKind)
    rows = conn.execute(
        text(
            "WITH RECURSIVE h(x) AS (SELECT CAST(:first AS INTEGER) UNION ALL "
            f"SELECT x + 1 FROM h WHERE x + 1 < :end), ev(e) AS (VALUES {events}) "
            "SELECT ev.e, h.x FROM h CROSS JOIN ev WHERE EXISTS (SELECT 1 FROM activity a "
            "WHERE a.guild_id = :g AND a.event = ev.e AND a.hour = h.x)"
        ),
        {"first": first, "end": end, "g": guild_id},
    )
    return {int(hour) for event, hour in rows if not cover.covers(int(event), int(hour))}


def _buckets(store: Store, guild_id: int, low: int, high: int) -> tuple[int, int]:
    """The buckets ``[first, end)`` that snowflakes ``[low, high)`` touch."""
    calendar = store.calendars.get(guild_id)
    first = calendar.bucket_of(time_of_snowflake(low))
    last = calendar.bucket_of(time_of_snowflake(max(low, high - (1 << 22))))  # a ms before
    return first, last + 1


def record_import_hours(
    store: Store, conn: Connection, guild_id: int, hours: Mapping[int, Iterable[int]]
) -> None:
    """Record ``{event: buckets}`` an import wrote (inside its transaction)."""
    rows = [
        {"guild_id": guild_id, "event": event, "first_hour": first, "end_hour": end}
        for event, buckets in sorted(hours.items())
        for first, end in hour_runs(buckets)
    ]
    if not rows:
        return
    table = import_hours
    stmt = store.insert(table)
    longer = case(
        (stmt.excluded.end_hour > table.c.end_hour, stmt.excluded.end_hour),
        else_=table.c.end_hour,
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["guild_id", "event", "first_hour"], set_={"end_hour": longer}
        ),
        rows,
    )


def imported_hours(store: Store, guild_id: int, first: int, end: int) -> dict[int, set[int]]:
    """``{event: buckets}`` in ``[first, end)`` an import filled with messages or joins."""
    table = import_hours
    with store.transaction() as conn:
        rows = conn.execute(
            select(table.c.event, table.c.first_hour, table.c.end_hour).where(
                table.c.guild_id == guild_id,
                table.c.first_hour < end,
                table.c.end_hour > first,
            )
        ).all()
    found: dict[int, set[int]] = {event: set() for event in OVERLAP_EVENTS}
    for event, low, high in rows:
        found.setdefault(int(event), set()).update(range(max(low, first), min(high, end)))
    return found
