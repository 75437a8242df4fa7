"""Stored reports of closed months (snapshots), and keeping them equal to the hourly rows.

When a month is anonymised its full, weekday and hourly reports (for all channels and for
every channel) are computed once, in a worker, and stored here as the integer sums the
report arithmetic starts from (`guildmeter.reports.snapshots` builds and reads them).

Each guild-month has a marker row in ``month_snapshots``:

- a build first writes a marker with a fresh random ``token`` and no ``ready_at``, then
  reads the rows, then stores its parts and sets ``ready_at`` — only if its marker is still
  there with its token;
- every write of counts into a guild-month (a late flush, an import, a backfill) deletes
  the month's marker and parts in the same transaction (`settle_late_counts`), so a build
  that read the rows before that write cannot be stored, and a stored snapshot is dropped:
  a snapshot always equals the live computation of the rows;
- once retention has deleted the month's member rows (`guildmeter.store.retention`),
  ``members_deleted_at`` is set: the snapshot is then the month's only per-user record,
  and late counts for the month are discarded (they could not be reported truthfully).

On PostgreSQL a build's marker is written under a short SHARE lock on ``activity``: it
waits for the writers in flight, so every count committed before the marker is visible
to the build's reads and every later one deletes the marker.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import OperationalError

from guildmeter.errors import StoreUnavailableError
from guildmeter.store import schema
from guildmeter.timeutil import add_months, utcnow

if TYPE_CHECKING:
    from guildmeter.collect.accumulator import CountKey
    from guildmeter.store.sql import Store

__all__ = [
    "Discarded",
    "MonthMarker",
    "after_write",
    "begin_build",
    "collecting_discards",
    "drop_snapshots",
    "finish_build",
    "invalidate_months",
    "markers",
    "markers_on",
    "missing_snapshots",
    "month_snapshots",
    "month_snapshots_by_month",
    "read_parts",
    "report_snapshots",
    "settle_late_counts",
    "touched_hours",
]

log = logging.getLogger(__name__)

_CHUNK = 400
_BUILD_LOCK_TIMEOUT_MS = 2000

month_snapshots = Table(
    "month_snapshots",
    schema.metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("month", Integer, nullable=False),
    #: The build that owns the marker (a random hex string).
    Column("token", String(32), nullable=False),
    #: When the snapshot was stored; NULL while it is being built.
    Column("ready_at", DateTime(timezone=True), nullable=True),
    #: When retention deleted the month's member rows, and the setting it applied.
    Column("members_deleted_at", DateTime(timezone=True), nullable=True),
    Column("retention_months", Integer, nullable=True),
    PrimaryKeyConstraint("guild_id", "month"),
)

#: Writers find the markers of the few months they touch by month (see `_markers_of`).
month_snapshots_by_month = Index("ix_month_snapshots_month", month_snapshots.c.month)

report_snapshots = Table(
    "report_snapshots",
    schema.metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("month", Integer, nullable=False),
    Column("kind", String(8), nullable=False),  # full, weekday, hourly
    #: "server" (joins, parts, totals), "all", "c:ID" (one channel), "g:ID,ID" (a name
    #: shared by several channels with counts in the month).
    Column("part", String(500), nullable=False),
    Column("payload", Text, nullable=False),  # JSON of integers (see reports.snapshots)
    PrimaryKeyConstraint("guild_id", "month", "kind", "part"),
)


@dataclass
class Discarded:
    """What the writes inside `collecting_discards` dropped, because retention had
    deleted their months' member rows: writers say so instead of claiming them counted."""

    #: The dropped counts, by the writer's keys (summed where several writes dropped one).
    counts: dict[CountKey, int] = field(default_factory=dict)
    #: ``(guild, month) -> retention_months`` the month's member rows were deleted under.
    months: dict[tuple[int, int], int | None] = field(default_factory=dict)
    #: ``guild -> first month still held``: the month after the last one retention deleted.
    first_held: dict[int, int] = field(default_factory=dict)


_discards: ContextVar[Discarded | None] = ContextVar("guildmeter_discards", default=None)


@contextmanager
def collecting_discards() -> Iterator[Discarded]:
    """Collect what `settle_late_counts` drops in this thread (and context) meanwhile.

    Wrap one transaction's writes: a write retried after a rollback needs a fresh one.
    """
    found = Discarded()
    token = _discards.set(found)
    try:
        yield found
    finally:
        _discards.reset(token)


@dataclass(frozen=True)
class MonthMarker:
    guild_id: int
    month: int
    ready_at: datetime | None
    members_deleted_at: datetime | None
    retention_months: int | None


def markers(store: Store, guild_id: int) -> dict[int, MonthMarker]:
    """Every month marker of a guild, by month (a small table)."""
    with store.engine.connect() as conn:
        return markers_on(conn, guild_id)


def markers_on(conn: Connection, guild_id: int) -> dict[int, MonthMarker]:
    """`markers` on an open connection."""
    table = month_snapshots
    rows = conn.execute(select(table).where(table.c.guild_id == guild_id)).all()
    return {
        int(row.month): MonthMarker(
            int(row.guild_id),
            int(row.month),
            row.ready_at,
            row.members_deleted_at,
            None if row.retention_months is None else int(row.retention_months),
        )
        for row in rows
    }


def missing_snapshots(store: Store, limit: int | None = None) -> list[tuple[int, int]]:
    """Anonymised guild-months without a stored snapshot (the cheap pre-check: two small
    tables, no activity row read)."""
    keys, marks = schema.guild_keys, month_snapshots
    query = (
        select(keys.c.guild_id, keys.c.month)
        .select_from(
            keys.outerjoin(
                marks, and_(marks.c.guild_id == keys.c.guild_id, marks.c.month == keys.c.month)
            )
        )
        .where(keys.c.anonymised_at.is_not(None), marks.c.ready_at.is_(None))
        .order_by(keys.c.month, keys.c.guild_id)
    )
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as conn:
        return [(int(row.guild_id), int(row.month)) for row in conn.execute(query)]


def begin_build(store: Store, guild_id: int, month: int) -> str | None:
    """Claim a build: write the month's marker with a fresh token. None: not now (the
    month's rows were deleted by retention, or PostgreSQL writers held the lock too long)."""
    token = secrets.token_hex(16)
    table = month_snapshots
    where = and_(table.c.guild_id == guild_id, table.c.month == month)
    try:
        with store.transaction() as conn:
            if store.dialect == "postgresql":
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {_BUILD_LOCK_TIMEOUT_MS}")
                conn.exec_driver_sql("LOCK TABLE activity, uncollected_hours IN SHARE MODE")
            found = conn.execute(select(table.c.members_deleted_at).where(where)).first()
            if found is not None and found.members_deleted_at is not None:
                return None
            _delete_parts(conn, [(guild_id, month)])
            conn.execute(delete(table).where(where))
            conn.execute(insert(table).values(guild_id=guild_id, month=month, token=token))
    except (OperationalError, StoreUnavailableError) as exc:  # writers in flight: later
        log.info("snapshot build of month %d postponed: %s", month, str(exc).splitlines()[0])
        return None
    return token


def finish_build(
    store: Store, guild_id: int, month: int, token: str, parts: Mapping[tuple[str, str], str]
) -> bool:
    """Store a build's parts if its marker is still its own (no count was written into the
    month since `begin_build`); False: discarded, build again."""
    table = month_snapshots
    with store.transaction() as conn:
        claimed = conn.execute(
            update(table)
            .where(
                table.c.guild_id == guild_id,
                table.c.month == month,
                table.c.token == token,
                table.c.ready_at.is_(None),
            )
            .values(ready_at=utcnow())
        ).rowcount
        if claimed != 1:
            return False
        rows = [
            {"guild_id": guild_id, "month": month, "kind": kind, "part": part, "payload": payload}
            for (kind, part), payload in sorted(parts.items())
        ]
        for start in range(0, len(rows), _CHUNK):
            conn.execute(insert(report_snapshots), rows[start : start + _CHUNK])
    return True


def read_parts(
    conn: Connection, guild_id: int, month: int, kind: str, parts: Sequence[str]
) -> dict[str, str]:
    """The stored payloads of ``parts`` (those that exist) — one primary-key query."""
    table = report_snapshots
    rows = conn.execute(
        select(table.c.part, table.c.payload).where(
            table.c.guild_id == guild_id,
            table.c.month == month,
            table.c.kind == kind,
            table.c.part.in_(list(parts)),
        )
    )
    return {row.part: row.payload for row in rows}


def drop_snapshots(conn: Connection, guild_id: int) -> None:
    """Forget a guild's snapshots, markers and span counts (its statistics were deleted)."""
    from guildmeter.store.spans import forget_guild

    for table in (report_snapshots, month_snapshots):
        conn.execute(delete(table).where(table.c.guild_id == guild_id))
    forget_guild(conn, guild_id, dropped_too=True)


def invalidate_months(conn: Connection, pairs: Iterable[tuple[int, int]]) -> None:
    """Drop the snapshots (and build markers) of these guild-months, unless retention
    already deleted their member rows (then the snapshot is all there is)."""
    wanted = sorted(set(pairs))
    table = month_snapshots
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        live = and_(_pairs_in(table, chunk), table.c.members_deleted_at.is_(None))
        stale = [
            (int(row.guild_id), int(row.month))
            for row in conn.execute(select(table.c.guild_id, table.c.month).where(live))
        ]
        conn.execute(delete(table).where(live))
        _delete_parts(conn, stale)


def settle_late_counts(
    store: Store, conn: Connection, counts: dict[CountKey, int], months: set[tuple[int, int]]
) -> dict[CountKey, int]:
    """Before counts are written (in the writer's transaction): drop the snapshots of the
    months they touch, and the counts of months whose member rows retention deleted.

    Cheap when no touched month has a snapshot (every flush of the current month): one
    indexed query on the small marker table. On SQLite a no-op write first takes the write
    lock, so no build or retention can commit between this check and the write.
    """
    if not counts:
        return counts
    table = month_snapshots
    if store.dialect == "sqlite":
        conn.execute(delete(table).where(table.c.guild_id == -1, table.c.month == -1))
    found = _markers_of(conn, months)
    if not found:
        return counts
    retired = {pair for pair, deleted in found.items() if deleted}
    invalidate_months(conn, [pair for pair, deleted in found.items() if not deleted])
    if not retired:
        return counts
    query = select(table.c.guild_id, table.c.month, table.c.retention_months).where(
        _pairs_in(table, sorted(retired))
    )
    if store.dialect == "postgresql":  # retention of these months waits for this write
        query = query.with_for_update(read=True)
    settings = {(int(r[0]), int(r[1])): r[2] for r in conn.execute(query)}
    calendars = store.calendars
    kept, dropped = {}, {}
    for key, count in counts.items():
        if (key[0], calendars.get(key[0]).month_of_bucket(key[1])) not in retired:
            kept[key] = count
        else:
            dropped[key] = count
    sink = _discards.get()
    if sink is not None:
        for key, count in dropped.items():
            sink.counts[key] = sink.counts.get(key, 0) + count
        sink.months.update({pair: settings.get(pair) for pair in retired})
        for guild_id in {g for g, _m in retired}:
            gone = [m for m, mark in markers_on(conn, guild_id).items() if mark.members_deleted_at]
            sink.first_held[guild_id] = add_months(max(gone), 1)
    log.warning(
        "%d late counts for %d month(s) past retention were discarded: their member rows "
        "were deleted and their snapshots are final",
        len(counts) - len(kept),
        len(retired),
    )
    return kept


def after_write(
    store: Store, conn: Connection, hours: Mapping[tuple[int, int], Collection[int]]
) -> None:
    """After counts are written, in their transaction (``hours``: the buckets written, per
    (guild, month)): those hours of anonymised months of "aggregates only" guilds are
    folded (`guildmeter.store.rights.fold_late_counts`), the distinct users stored for
    closed months they touched are dropped, and (PostgreSQL) a build that claimed one of
    their months while this transaction ran is invalidated too (see the module
    docstring)."""
    if not hours:
        return
    from guildmeter.store.rights import fold_late_counts
    from guildmeter.store.spans import forget_closed

    now = utcnow()
    fold_late_counts(conn, store.calendars, hours, int(now.timestamp()))
    forget_closed(conn, store.calendars, set(hours), now)  # their span counts are stale
    if store.dialect != "postgresql":
        return
    found = _markers_of(conn, set(hours))
    invalidate_months(conn, [pair for pair, deleted in found.items() if not deleted])


def touched_hours(store: Store, counts: Iterable[CountKey]) -> dict[tuple[int, int], set[int]]:
    """The buckets of counts, per (guild, month) (one pass over their keys, in C, then
    one per distinct bucket)."""
    calendars = store.calendars
    found: dict[tuple[int, int], set[int]] = {}
    for guild_id, hour in {key[:2] for key in counts}:
        found.setdefault((guild_id, calendars.get(guild_id).month_of_bucket(hour)), set()).add(hour)
    return found


def _markers_of(conn: Connection, months: set[tuple[int, int]]) -> dict[tuple[int, int], bool]:
    """Markers of these guild-months -> whether retention deleted their member rows.

    Asked by month (few distinct ones, index ``ix_month_snapshots_month``), then matched
    to the guilds in Python: no long list of pairs to compile on every flush.
    """
    if not months:
        return {}
    table = month_snapshots
    rows = conn.execute(
        select(table.c.guild_id, table.c.month, table.c.members_deleted_at.is_not(None)).where(
            table.c.month.in_(sorted({m for _, m in months}))
        )
    )
    return {
        (int(row[0]), int(row[1])): bool(row[2])
        for row in rows
        if (int(row[0]), int(row[1])) in months
    }


def _pairs_in(table: Table, pairs: Sequence[tuple[int, int]]) -> Any:
    """``(guild_id, month) IN pairs``, as ORs of equalities grouped by guild (both
    dialects use the primary key)."""
    by_guild: dict[int, list[int]] = {}
    for guild_id, month in pairs:
        by_guild.setdefault(guild_id, []).append(month)
    return or_(
        *(
            and_(table.c.guild_id == g, table.c.month.in_(sorted(ms)))
            for g, ms in sorted(by_guild.items())
        )
    )


def _delete_parts(conn: Connection, pairs: Sequence[tuple[int, int]]) -> None:
    table = report_snapshots
    for start in range(0, len(pairs), _CHUNK):
        chunk = pairs[start : start + _CHUNK]
        if chunk:
            conn.execute(delete(table).where(_pairs_in(table, chunk)))
