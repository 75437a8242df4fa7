"""The store: every read and write of the statistics tables, on SQLite or PostgreSQL.

The store never sees a raw user id: it receives labels (pseudonyms or tokens) from the
collector and maps them to integer member ids.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    String,
    and_,
    any_,
    bindparam,
    delete,
    exists,
    func,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from guildmeter.collect.accumulator import Batch, CountKey
from guildmeter.errors import StoreUnavailableError
from guildmeter.events import NO_USER, EventKind
from guildmeter.privacy.anonymize import new_token
from guildmeter.privacy.keyring import PSEUDONYM_PREFIX, is_pseudonym
from guildmeter.store import schema, summaries
from guildmeter.store.engine import make_engine
from guildmeter.store.migrations import apply_migrations
from guildmeter.store.timezones import TimezoneChange, read_calendars, set_timezone
from guildmeter.timeutil import utcnow
from guildmeter.zones import UTC_NAME, Calendars

__all__ = ["AnonymisationResult", "Store", "StoreSpec"]

log = logging.getLogger(__name__)

_CHUNK = 500  # bound parameters per IN list

_ACTIVITY_COLUMNS = "guild_id, event, hour, channel_id, member_id, count"
_UPSERT_SQL = (
    f"INSERT INTO activity ({_ACTIVITY_COLUMNS}) {{source}} "
    "ON CONFLICT (guild_id, event, hour, channel_id, member_id) DO UPDATE SET count = "
    f"CASE WHEN excluded.event = {int(EventKind.TOTAL_USERS)} THEN excluded.count "
    "ELSE activity.count + excluded.count END"
)
_SQLITE_FROM_JSON = (
    "SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 "
    "FROM json_each(?) WHERE true"  # WHERE: SQLite's parser needs it before ON CONFLICT
)
_SQLITE_JSON_ROWS = 20_000
_PG_STAGE_SQL = (
    "CREATE TEMP TABLE IF NOT EXISTS activity_stage "
    "(LIKE activity INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_PG_COPY_SQL = f"COPY activity_stage ({_ACTIVITY_COLUMNS}) FROM STDIN"
_PG_FROM_STAGE = (
    f"SELECT {_ACTIVITY_COLUMNS} FROM activity_stage "
    "ORDER BY guild_id, event, hour, channel_id, member_id"
)


@dataclass(frozen=True)
class StoreSpec:
    """What another process needs to open the same store: picklable, hashable."""

    url: str
    engine_kwargs: tuple[tuple[str, Any], ...] = ()
    #: The configured ``default_timezone``, so a worker reads guilds on the same clocks.
    default_zone: str = UTC_NAME

    def open(self) -> Store:
        store = Store.open(self.url, **dict(self.engine_kwargs))
        if self.default_zone != UTC_NAME:
            store.reload_calendars(self.default_zone)
        store.reopen = self
        return store


@dataclass(frozen=True)
class AnonymisationResult:
    guild_id: int
    month: int
    pseudonyms_replaced: int
    key_destroyed: bool


class Store:
    """Statistics storage over one SQLAlchemy engine (created once, passed around)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # (guild, month, label) -> member id; filled only after a commit succeeded.
        self._member_ids: dict[tuple[int, int, str], int] = {}
        #: How another process can open the same database (None: it cannot, e.g. :memory:).
        self.reopen: StoreSpec | None = None
        #: The zone of guilds that never set one (config ``default_timezone``).
        self.default_zone = UTC_NAME
        #: Every guild's clock (`guildmeter.zones`), read at start-up and by each flush.
        self.calendars = Calendars()

    @classmethod
    def open(cls, url: str, **engine_kwargs: Any) -> Store:
        """Connect and bring the schema up to date."""
        store = cls(make_engine(url, **engine_kwargs))
        store.migrate()
        if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
            store.reopen = StoreSpec(url, tuple(sorted(engine_kwargs.items())))
        return store

    def migrate(self) -> None:
        with self._begin() as conn:
            apply_migrations(conn)
        self.reload_calendars()

    # -- timezones --------------------------------------------------------------------------

    def reload_calendars(self, default_zone: str | None = None) -> Calendars:
        """Read every guild's timezone schedule (a small table) and keep it."""
        if default_zone is not None:
            self.default_zone = default_zone
            if self.reopen is not None:
                self.reopen = dataclasses.replace(self.reopen, default_zone=default_zone)
        with self._begin() as conn:  # an outage is StoreUnavailableError, like any flush step
            self.calendars = read_calendars(conn, self.default_zone, self.calendars)
        return self.calendars

    def set_timezone(self, guild_id: int, zone: str, now: datetime) -> TimezoneChange:
        """Give a guild a zone from its next local month (at once when it has no statistics)."""
        with self._begin() as conn:
            change = set_timezone(conn, self.calendars, guild_id, zone, now)
            fresh = read_calendars(conn, self.default_zone, self.calendars)
            summaries.after_zone_change(conn, fresh, guild_id, change.from_month)
            if change.from_month is None:  # at once: stored reports were on the old clock
                from guildmeter.store.snapshots import invalidate_months, month_snapshots

                marks = month_snapshots
                months = conn.execute(
                    select(marks.c.guild_id, marks.c.month).where(marks.c.guild_id == guild_id)
                ).all()
                invalidate_months(conn, [(int(g), int(m)) for g, m in months])
        self.reload_calendars()
        return change

    def close(self) -> None:
        self.engine.dispose()

    # -- keys -------------------------------------------------------------------------------

    def get_or_create_key(self, guild_id: int, month: int, candidate: bytes) -> bytes | None:
        """The guild-month's key, storing ``candidate`` if none exists; None once destroyed."""
        table = schema.guild_keys
        where = and_(table.c.guild_id == guild_id, table.c.month == month)
        with self._begin() as conn:
            row = conn.execute(select(table.c.key, table.c.anonymised_at).where(where)).first()
            if row is None:
                conn.execute(
                    self._insert(table)
                    .values(guild_id=guild_id, month=month, key=candidate, created_at=utcnow())
                    .on_conflict_do_nothing(index_elements=["guild_id", "month"])
                )
                row = conn.execute(select(table.c.key, table.c.anonymised_at).where(where)).one()
        return None if row.anonymised_at is not None else bytes(row.key)

    def get_or_create_keys(
        self, candidates: dict[tuple[int, int], bytes]
    ) -> dict[tuple[int, int], bytes | None]:
        """`get_or_create_key` for many guild-months in one transaction (a bot in thousands
        of guilds needs them all on the first flush of a month)."""
        table = schema.guild_keys
        pairs = sorted(candidates)
        found: dict[tuple[int, int], bytes | None] = {}

        def read(conn: Connection, chunk: Sequence[tuple[int, int]]) -> None:
            query = select(table.c.guild_id, table.c.month, table.c.key, table.c.anonymised_at)
            for row in conn.execute(
                query.where(tuple_(table.c.guild_id, table.c.month).in_(list(chunk)))
            ):
                key = None if row.anonymised_at is not None else bytes(row.key)
                found[(int(row.guild_id), int(row.month))] = key

        with self._begin() as conn:
            for chunk in _chunks(pairs, _CHUNK):
                read(conn, chunk)
            missing = [pair for pair in pairs if pair not in found]
            now = utcnow()
            for chunk in _chunks(missing, _CHUNK):
                rows = [
                    {"guild_id": g, "month": m, "key": candidates[(g, m)], "created_at": now}
                    for g, m in chunk
                ]
                conn.execute(
                    self._insert(table)
                    .values(rows)
                    .on_conflict_do_nothing(index_elements=["guild_id", "month"])
                )
                read(conn, chunk)  # another process may have won: read what is stored
        return found

    # -- writing counts ---------------------------------------------------------------------

    def write_batch(self, batch: Batch) -> int:
        """Apply a batch in one transaction; returns the activity rows written.

        A batch already recorded in ``flush_log`` (its earlier commit did land) is skipped,
        so a retry never counts anything twice.
        """
        if not batch.counts and not batch.channels:
            return 0
        session_ids: dict[tuple[int, int, str], int] = {}
        with self._begin() as conn:
            seen = conn.execute(
                select(literal(1)).where(schema.flush_log.c.batch_id == batch.batch_id)
            ).first()
            if seen is not None:
                log.info("batch %s was already applied; skipped", batch.batch_id)
                return 0
            written = self._apply(conn, batch.counts, batch.channels, session_ids)
            conn.execute(
                self._insert(schema.flush_log).values(batch_id=batch.batch_id, applied_at=utcnow())
            )
        self._member_ids.update(session_ids)
        return written

    # -- helpers for other tables written in batches (usage analytics) ----------------------

    def batch_seen(self, conn: Connection, batch_id: str) -> bool:
        """Whether a batch with this id was committed already (a retry after a lost reply)."""
        found = conn.execute(
            select(literal(1)).where(schema.flush_log.c.batch_id == batch_id)
        ).first()
        return found is not None

    def record_batch(self, conn: Connection, batch_id: str) -> None:
        conn.execute(self._insert(schema.flush_log).values(batch_id=batch_id, applied_at=utcnow()))

    def member_ids(
        self,
        conn: Connection,
        labels: Iterable[tuple[int, int, str]],
        session_ids: dict[tuple[int, int, str], int],
    ) -> dict[tuple[int, int, str], int]:
        """Member ids of ``(guild, hour, label)`` triples, created where new.

        Keyed by ``(guild, month, label)``; new ids go into ``session_ids``, to be passed to
        `remember_members` once the caller's transaction has committed.
        """
        counts: dict[CountKey, int] = {(g, hour, 0, label, 0): 1 for g, hour, label in labels}
        self._resolve_members(conn, counts, session_ids)
        cache = self._member_ids
        calendars = self.calendars
        out = {}
        for guild_id, hour, _code, label, _channel in counts:
            key = (guild_id, calendars.get(guild_id).month_of_bucket(hour), label)
            out[key] = session_ids.get(key) or cache[key]
        return out

    def remember_members(self, session_ids: dict[tuple[int, int, str], int]) -> None:
        self._member_ids.update(session_ids)

    def forget_member_ids(self, guild_id: int, month: int, label: str) -> None:
        """Drop a cached member id (its pseudonym was forgotten: see `store.rights`)."""
        self._member_ids.pop((guild_id, month, label), None)

    @contextmanager
    def import_session(self, guild_id: int) -> Iterator[ImportSession]:
        """One transaction for a whole import: all of it lands, or none of it."""
        session_ids: dict[tuple[int, int, str], int] = {}
        with self._begin() as conn:
            yield ImportSession(self, conn, guild_id, session_ids)
        self._member_ids.update(session_ids)

    def _apply(
        self,
        conn: Connection,
        counts: dict[CountKey, int],
        channel_names: dict[tuple[int, int], str],
        session_ids: dict[tuple[int, int, str], int],
    ) -> int:
        """Upsert counts (and channel names) inside the caller's transaction.

        Months the counts touch lose their report snapshots (late counts of a closed month:
        `guildmeter.store.snapshots`); counts of months past retention are discarded.
        """
        from guildmeter.store.snapshots import after_write, settle_late_counts, touched_months

        months = touched_months(self, counts)
        counts = settle_late_counts(self, conn, counts, months)
        self._pin_new_guilds(conn, counts)
        self._resolve_members(conn, counts, session_ids)
        cache = self._member_ids
        calendars = self.calendars
        rows = []
        for (guild_id, hour, code, label, channel_id), count in counts.items():
            if label == NO_USER:
                member_id = 0
            else:
                key = (guild_id, calendars.get(guild_id).month_of_bucket(hour), label)
                member_id = session_ids.get(key) or cache[key]
            rows.append((guild_id, code, hour, channel_id, member_id, count))
        rows.sort()  # one lock order for every writer: concurrent shards cannot deadlock
        self._upsert_activity(conn, rows)
        summaries.record_rows(conn, calendars, rows)  # the day summaries, exact
        after_write(self, conn, months)  # closed months' snapshots touched
        if channel_names:
            self._upsert_channels(conn, channel_names)
        return len(rows)

    def _resolve_members(
        self,
        conn: Connection,
        counts: dict[CountKey, int],
        session_ids: dict[tuple[int, int, str], int],
    ) -> None:
        """Find or create the member id of every label in ``counts`` (into session_ids).

        Ids are remembered across flushes only once their transaction has committed.
        """
        wanted: dict[tuple[int, int], set[str]] = defaultdict(set)
        cache = self._member_ids
        calendars = self.calendars
        for guild_id, hour, _code, label, _channel in counts:
            if label == NO_USER:
                continue
            key = (guild_id, calendars.get(guild_id).month_of_bucket(hour), label)
            if key not in cache and key not in session_ids:
                wanted[key[:2]].add(label)
        if not wanted:
            return
        retired = self._anonymised_months(conn, list(wanted))
        for (guild_id, month), labels in wanted.items():
            aliases = {label: label for label in labels}
            if (guild_id, month) in retired:
                # The month is anonymised and its key destroyed: a pseudonym of it (a late
                # shard, an import of old data) must not be written; it gets a fresh token,
                # the same one for the rest of this transaction and, once committed, process.
                existing = self._select_members(conn, guild_id, month, labels)
                for label in labels:
                    if label not in existing and is_pseudonym(label):
                        aliases[label] = new_token(month)
            stored = sorted(set(aliases.values()))
            # One statement executed for many rows (compiled once): a multi-row VALUES
            # list costs SQLAlchemy a bound parameter per value to compile, which made a
            # backfill's thousands of new members per write slower than the database.
            conn.execute(
                self._insert(schema.members).on_conflict_do_nothing(
                    index_elements=["guild_id", "month", "label"]
                ),
                [{"guild_id": guild_id, "month": month, "label": x} for x in stored],
            )
            found = self._select_members(conn, guild_id, month, stored)
            for label, alias in aliases.items():
                session_ids[(guild_id, month, label)] = found[alias]

    def _pin_new_guilds(self, conn: Connection, counts: dict[CountKey, int]) -> None:
        """Guilds counted for the first time keep the zone they were counted in."""
        known = self.calendars.known
        new = {key[0] for key in counts} - known
        if new:
            # No row yet: record the zone the guild is counted in. Two shards may race
            # here; the primary key keeps one row.
            zone = self.default_zone
            rows = [{"guild_id": g, "from_month": 0, "zone": zone} for g in sorted(new)]
            conn.execute(
                self._insert(schema.guild_timezones)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["guild_id", "from_month"])
            )
            self.calendars = self.calendars.pinned(new)

    def _select_members(
        self, conn: Connection, guild_id: int, month: int, labels: Iterable[str]
    ) -> dict[str, int]:
        table = schema.members
        where = [table.c.guild_id == guild_id, table.c.month == month]
        if self.dialect == "postgresql":
            # One array parameter: PostgreSQL probes the index once per element, where a
            # long IN list of parameters makes it scan and compare every row.
            wanted = list(labels)
            query = select(table.c.label, table.c.id).where(
                *where, table.c.label == any_(bindparam("labels", wanted, ARRAY(String)))
            )
            return {row.label: row.id for row in conn.execute(query)}
        # SQLite: the labels in as one JSON parameter and the ids out as one JSON object, so
        # the driver gives the GIL up once per chunk rather than once per row (a busy event
        # loop in the same process would make every one of those hand-overs wait).
        found: dict[str, int] = {}
        for chunk in _chunks(sorted(labels), _SQLITE_JSON_ROWS):
            ids = conn.exec_driver_sql(
                "SELECT json_group_object(label, id) FROM members WHERE guild_id = ? "
                "AND month = ? AND label IN (SELECT value FROM json_each(?))",
                (guild_id, month, json.dumps(chunk)),
            ).scalar()
            found.update(json.loads(ids or "{}"))
        return found

    def _anonymised_months(
        self, conn: Connection, pairs: Sequence[tuple[int, int]]
    ) -> set[tuple[int, int]]:
        table = schema.guild_keys
        query = select(table.c.guild_id, table.c.month).where(
            tuple_(table.c.guild_id, table.c.month).in_(pairs),
            table.c.anonymised_at.is_not(None),
        )
        if self.dialect == "postgresql":
            # Serialise with a concurrent anonymisation of the same months.
            query = query.with_for_update(read=True)
        return {(row.guild_id, row.month) for row in conn.execute(query)}

    def _upsert_activity(self, conn: Connection, rows: Sequence[tuple[int, ...]]) -> None:
        """Additive upsert (member totals replace), straight to the driver: the batch is
        large and SQLAlchemy's per-row parameter handling would cost more than the database.
        """
        if not rows:
            return
        if self.dialect == "postgresql":
            # COPY into a session-local staging table, then one set-based upsert.
            with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
                cursor.execute(_PG_STAGE_SQL)
                with cursor.copy(_PG_COPY_SQL) as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(_UPSERT_SQL.format(source=_PG_FROM_STAGE))
                # ON COMMIT only empties the stage at commit; an import upserts many
                # chunks in one transaction, and must not apply a chunk twice.
                cursor.execute("TRUNCATE activity_stage")
        else:
            # One statement per chunk, its rows as one JSON parameter: the driver releases
            # the GIL once per statement instead of once per row, so a flush is not slowed
            # to a crawl by threads that hold the GIL (a moderator's dump being formatted).
            sql = _UPSERT_SQL.format(source=_SQLITE_FROM_JSON)
            for chunk in _chunks(rows, _SQLITE_JSON_ROWS):
                conn.exec_driver_sql(sql, (json.dumps(chunk),))

    def _upsert_channels(self, conn: Connection, names: dict[tuple[int, int], str]) -> None:
        stmt = self._insert(schema.channels)
        stmt = stmt.on_conflict_do_update(
            index_elements=["guild_id", "channel_id"], set_={"name": stmt.excluded.name}
        )
        conn.execute(
            stmt,
            [
                {"guild_id": guild_id, "channel_id": channel_id, "name": name}
                for (guild_id, channel_id), name in sorted(names.items())
            ],
        )

    def prune_flush_log(self, older_than: timedelta = timedelta(days=2)) -> int:
        """Forget batch ids old enough that no retry can still carry them."""
        with self._begin() as conn:
            result = conn.execute(
                delete(schema.flush_log).where(
                    schema.flush_log.c.applied_at < utcnow() - older_than
                )
            )
        return int(result.rowcount or 0)

    def delete_guild(self, guild_id: int) -> int:
        """Remove every statistic, key and channel name of a guild; returns rows deleted."""
        deleted = 0
        with self._begin() as conn:
            for table in (schema.activity, schema.members, schema.channels, schema.guild_keys):
                result = conn.execute(delete(table).where(table.c.guild_id == guild_id))
                deleted += int(result.rowcount or 0)
            summaries.delete_guild(conn, guild_id)
            from guildmeter.store.backfill import backfill_cursors, backfill_runs, live_starts
            from guildmeter.store.snapshots import drop_snapshots

            drop_snapshots(conn, guild_id)
            # Its history is uncounted again: a later backfill must not think it covered.
            for table in (live_starts, backfill_cursors, backfill_runs):
                conn.execute(delete(table).where(table.c.guild_id == guild_id))
        self._member_ids = {k: v for k, v in self._member_ids.items() if k[0] != guild_id}
        return deleted

    # -- month-end anonymisation ------------------------------------------------------------

    def months_to_anonymise(self, before_month: int) -> list[tuple[int, int]]:
        """(guild, month) pairs before ``before_month`` still holding a key or a pseudonym."""
        keys, members = schema.guild_keys, schema.members
        with self.engine.connect() as conn:
            with_key = conn.execute(
                select(keys.c.guild_id, keys.c.month).where(
                    keys.c.month < before_month, keys.c.anonymised_at.is_(None)
                )
            )
            pairs = {(row.guild_id, row.month) for row in with_key}
            with_pseudonyms = conn.execute(
                select(members.c.guild_id, members.c.month)
                .where(members.c.month < before_month, members.c.label.startswith(PSEUDONYM_PREFIX))
                .distinct()
            )
            pairs |= {(row.guild_id, row.month) for row in with_pseudonyms}
        return sorted(pairs)

    def anonymise_month(self, guild_id: int, month: int) -> AnonymisationResult:
        """Replace each pseudonym of the guild-month by its own random token, destroy the key.

        One transaction: interrupted, it leaves everything as it was and can simply run
        again; run twice, the second run finds nothing to do.
        """
        keys, members = schema.guild_keys, schema.members
        key_where = and_(keys.c.guild_id == guild_id, keys.c.month == month)
        with self._begin() as conn:
            lock = select(keys.c.key).where(key_where)
            if self.dialect == "postgresql":
                lock = lock.with_for_update()
            key_row = conn.execute(lock).first()
            pseudonyms = list(
                conn.execute(
                    select(members.c.id).where(
                        members.c.guild_id == guild_id,
                        members.c.month == month,
                        members.c.label.startswith(PSEUDONYM_PREFIX),
                    )
                ).scalars()
            )
            if pseudonyms:
                conn.execute(
                    update(members)
                    .where(members.c.id == bindparam("member_id"))
                    .values(label=bindparam("token")),
                    [{"member_id": i, "token": new_token(month)} for i in pseudonyms],
                )
            now = utcnow()
            if key_row is None:
                conn.execute(
                    self._insert(keys).values(
                        guild_id=guild_id, month=month, key=None, created_at=now, anonymised_at=now
                    )
                )
            else:
                conn.execute(update(keys).where(key_where).values(key=None, anonymised_at=now))
            from guildmeter.store.rights import collapse_if_aggregates_only

            collapse_if_aggregates_only(
                conn, guild_id, month, self.calendars.get(guild_id)
            )  # the guild's choice (issue 11)
        self._member_ids = {k: v for k, v in self._member_ids.items() if k[:2] != (guild_id, month)}
        return AnonymisationResult(
            guild_id, month, len(pseudonyms), key_row is not None and key_row.key is not None
        )

    def analyze(self) -> None:
        """Refresh PostgreSQL's planner statistics after a bulk load.

        Right after a large import the planner believes the tables are nearly empty and
        picks plans (nested loops over a million rows) that take minutes instead of a
        fraction of a second; autovacuum would catch up, but only later.
        """
        if self.dialect == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in ("activity", "members", *(t.name for t in summaries.summary_tables)):
                    conn.exec_driver_sql(f"ANALYZE {table}")

    def scrub(self, *, wait_s: float = 30.0, rewrite_members: bool = False) -> bool:
        """Make destroyed keys and replaced pseudonyms unrecoverable from database files.

        SQLite zeroes freed bytes (secure_delete) in the main file; old page images live on
        in the WAL until a checkpoint, which TRUNCATE then empties. PostgreSQL keeps dead
        tuples until VACUUM; the tiny key table is rewritten whole.

        Both wait for long readers (a year-long dump) and, while waiting, hold up every
        writer — the flush too. So the wait is bounded by ``wait_s``: False means it could
        not finish now (nothing is lost; call again later). ``rewrite_members``: on
        PostgreSQL rewrite the members table whole (``VACUUM FULL``), as after deleting a
        member whose month's key still exists (forget-me); plain VACUUM frees dead tuples
        but does not overwrite them.
        """
        wait_ms = max(0, int(wait_s * 1000))
        if self.dialect == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {wait_ms}")
                try:
                    row = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
                finally:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}")
            return row is not None and row[0] == 0
        if self.dialect == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(f"SET lock_timeout = {max(1, wait_ms)}")
                try:
                    conn.exec_driver_sql("VACUUM FULL guild_keys")
                    conn.exec_driver_sql(f"VACUUM {'FULL ' if rewrite_members else ''}members")
                except OperationalError as exc:
                    if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                        raise _unavailable(exc) from exc
                    return False
                finally:
                    conn.exec_driver_sql("RESET lock_timeout")
        return True

    # -- reading (used by tests, the demo and the reports) ----------------------------------

    def activity_totals(self, guild_id: int) -> dict[tuple[int, int, int, str], int]:
        """Every stored count of a guild as ``{(hour, event, channel, label): count}``.

        Meant for checks and small exports, not for reports over large ranges.
        """
        act, mem = schema.activity, schema.members
        query = (
            select(act.c.hour, act.c.event, act.c.channel_id, mem.c.label, act.c.count)
            .select_from(act.outerjoin(mem, act.c.member_id == mem.c.id))
            .where(act.c.guild_id == guild_id)
        )
        with self.engine.connect() as conn:
            return {
                (row.hour, row.event, row.channel_id, row.label or NO_USER): int(row[4])
                for row in conn.execute(query)
            }

    def month_summary(self, guild_id: int) -> list[dict[str, Any]]:
        """Per month: rows, distinct users, pseudonyms left, key present — for the demo."""
        act, mem, keys = schema.activity, schema.members, schema.guild_keys
        with self.engine.connect() as conn:
            months = conn.execute(
                select(
                    mem.c.month,
                    mem.c.label.startswith(PSEUDONYM_PREFIX).label("pseudonym"),
                )
                .where(mem.c.guild_id == guild_id)
                .where(exists().where(act.c.member_id == mem.c.id))
            ).all()
            key_rows = {
                row.month: row
                for row in conn.execute(
                    select(keys.c.month, keys.c.key.is_not(None).label("has_key")).where(
                        keys.c.guild_id == guild_id
                    )
                )
            }
        summary: dict[int, dict[str, Any]] = {}
        for row in months:
            entry = summary.setdefault(
                row.month, {"month": row.month, "users": 0, "pseudonyms": 0, "tokens": 0}
            )
            entry["users"] += 1
            entry["pseudonyms" if row.pseudonym else "tokens"] += 1
        for entry in summary.values():
            key_row = key_rows.get(entry["month"])
            entry["key_present"] = bool(key_row is not None and key_row.has_key)
        return [summary[m] for m in sorted(summary)]

    def channel_names(self, guild_id: int) -> dict[int, str]:
        """``{channel_id: latest name}`` of a guild."""
        table = schema.channels
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.channel_id, table.c.name).where(table.c.guild_id == guild_id)
            )
            return {int(row.channel_id): row.name for row in rows}

    def activity_span(self, guild_id: int) -> tuple[int, int] | None:
        """The first and last hour with any count for the guild (index seeks), or None."""
        act = schema.activity
        first: int | None = None
        last: int | None = None
        with self.engine.connect() as conn:
            for kind in EventKind:
                where = (act.c.guild_id == guild_id, act.c.event == int(kind))
                low = conn.scalar(select(func.min(act.c.hour)).where(*where))
                if low is None:
                    continue
                high = conn.scalar(select(func.max(act.c.hour)).where(*where))
                first = low if first is None else min(first, low)
                last = high if last is None else max(last, high)
        return None if first is None or last is None else (int(first), int(last))

    def iter_dump(
        self, guild_id: int, start_hour: int, end_hour: int, *, chunk_rows: int = 20_000
    ) -> Iterator[list[tuple[int, int, int, int, int]]]:
        """Stream ``(hour, event, member_id, channel_id, count)`` in time order, in chunks.

        The range is first clamped to the hours that hold data, then read a week per query
        (a bounded sort, however large the range) in chunks of ``chunk_rows``; rows come
        straight from the driver (no per-row wrapping) because a month can hold millions.
        Member labels come from `member_labels`.
        """
        span = self.activity_span(guild_id)
        if span is None:
            return
        start_hour, end_hour = max(start_hour, span[0]), min(end_hour, span[1] + 1)
        events = ", ".join(str(int(kind)) for kind in EventKind)
        marker = "?" if self.dialect == "sqlite" else "%s"
        sql = (
            "SELECT hour, event, member_id, channel_id, count FROM activity "
            f"WHERE guild_id = {marker} AND event IN ({events}) "
            f"AND hour >= {marker} AND hour < {marker} "
            "ORDER BY hour, event, channel_id, member_id"
        )
        with self.engine.connect() as conn:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                for week in range(start_hour, end_hour, _DUMP_WINDOW_HOURS):
                    cursor.execute(sql, (guild_id, week, min(week + _DUMP_WINDOW_HOURS, end_hour)))
                    while rows := cursor.fetchmany(chunk_rows):
                        yield rows
            finally:
                cursor.close()

    def member_labels(self, guild_id: int, months: Iterable[int]) -> dict[int, str]:
        """``{member_id: label}`` of a guild's members in ``months``."""
        mem = schema.members
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(mem.c.id, mem.c.label).where(
                    mem.c.guild_id == guild_id, mem.c.month.in_(list(months))
                )
            )
            return {int(row.id): row.label for row in rows}

    def unanonymised_months(self, guild_id: int, months: Iterable[int]) -> list[int]:
        """Which of ``months`` still hold pseudonyms (not yet anonymised) for the guild."""
        mem = schema.members
        with self.engine.connect() as conn:
            found = conn.scalars(
                select(mem.c.month)
                .where(
                    mem.c.guild_id == guild_id,
                    mem.c.month.in_(list(months)),
                    mem.c.label.startswith(PSEUDONYM_PREFIX),
                )
                .distinct()
            )
            return sorted(int(m) for m in found)

    def anonymised_at(self, guild_id: int, month: int) -> datetime | None:
        """When the guild-month was anonymised (its key destroyed), or None."""
        keys = schema.guild_keys
        with self.engine.connect() as conn:
            found = conn.execute(
                select(keys.c.anonymised_at).where(
                    keys.c.guild_id == guild_id, keys.c.month == month
                )
            ).scalar()
        return found if isinstance(found, datetime) else None

    # -- plumbing ---------------------------------------------------------------------------

    def insert(self, table: Any) -> Any:
        """The dialect's INSERT (with ``on_conflict_do_nothing``/``on_conflict_do_update``)."""
        return self._insert(table)

    def transaction(self) -> AbstractContextManager[Connection]:
        """A transaction for other store modules; errors as in ``_begin``."""
        return self._begin()

    def _insert(self, table: Any) -> Any:
        return (postgresql if self.dialect == "postgresql" else sqlite).insert(table)

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A transaction; connection loss and lock time-outs become StoreUnavailableError."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:
            raise _unavailable(exc) from exc


class ImportSession:
    """Writes of one import, inside the store's transaction (see `Store.import_session`)."""

    def __init__(
        self,
        store: Store,
        conn: Connection,
        guild_id: int,
        session_ids: dict[tuple[int, int, str], int],
    ) -> None:
        self._store = store
        self._conn = conn
        self.guild_id = guild_id
        #: The guild's clock: imported periods go to its buckets.
        self.calendar = store.calendars.get(guild_id)
        self._session_ids = session_ids
        self._channel_ids: dict[str, int] | None = None

    @property
    def connection(self) -> Connection:
        """The session's transaction, for a writer's own rows that must land with the
        counts (the backfill's cursors)."""
        return self._conn

    def imported_at(self, fingerprint: str) -> datetime | None:
        """When a file with this fingerprint was imported into the guild, if ever."""
        table = schema.imports
        found = self._conn.execute(
            select(table.c.imported_at).where(
                table.c.guild_id == self.guild_id, table.c.fingerprint == fingerprint
            )
        ).scalar()
        return found if isinstance(found, datetime) else None

    def channel_id(self, name: str) -> int:
        """The id of the guild's channel called ``name``, or a stable made-up one.

        KazTron files name channels, not ids: a name we know maps to its channel (the
        lowest id if several share it); an unknown name gets a negative id derived from
        the name, so every import of it lands on the same channel.
        """
        if self._channel_ids is None:
            table = schema.channels
            rows = self._conn.execute(
                select(table.c.name, func.min(table.c.channel_id))
                .where(table.c.guild_id == self.guild_id)
                .group_by(table.c.name)
            )
            self._channel_ids = {row[0]: int(row[1]) for row in rows}
        found = self._channel_ids.get(name)
        if found is None:
            digest = hashlib.sha256(name.encode("utf-8")).digest()
            found = self._channel_ids[name] = -(int.from_bytes(digest[:7], "big") + 1)
        return found

    def add(self, counts: dict[CountKey, int], channel_names: dict[tuple[int, int], str]) -> int:
        """Upsert one chunk of counts; returns the activity rows written."""
        return self._store._apply(self._conn, counts, channel_names, self._session_ids)

    def record(self, fingerprint: str, filename: str, rows: int) -> None:
        self._conn.execute(
            self._store._insert(schema.imports).values(
                guild_id=self.guild_id,
                fingerprint=fingerprint,
                filename=filename[-500:],
                rows=rows,
                imported_at=utcnow(),
            )
        )


_DUMP_WINDOW_HOURS = 24 * 7
_SQLITE_BUSY_MS = 10_000  # the engine's busy timeout (see make_engine)


def _unavailable(exc: DBAPIError) -> StoreUnavailableError:
    reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
    return StoreUnavailableError(f"database unavailable or busy: {reason}")


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
