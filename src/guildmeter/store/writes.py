"""Every write of counts: the flush's batches, imports (one transaction each), member ids,
and deleting a guild. One write path (`WritesMixin._apply`) keeps the day summaries
and the month snapshots right for all of them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

from sqlalchemy import Connection, String, any_, bindparam, delete, func, literal, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY

from guildmeter.collect.accumulator import Batch, CountKey
from guildmeter.events import NO_USER, EventKind
from guildmeter.privacy.anonymize import new_tokens
from guildmeter.privacy.keyring import is_pseudonym
from guildmeter.store import schema, summaries
from guildmeter.store.base import _SQLITE_JSON_ROWS, StoreBase, _chunks
from guildmeter.timeutil import utcnow

if TYPE_CHECKING:
    from guildmeter.store.sql import Store

log = logging.getLogger("guildmeter.store.sql")

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


_SQLITE_INSERT_MEMBERS = (
    "INSERT INTO members (guild_id, month, label) SELECT ?, ?, value FROM json_each(?) "
    "WHERE true ON CONFLICT (guild_id, month, label) DO NOTHING"
)

_PG_STAGE_SQL = (
    "CREATE TEMP TABLE IF NOT EXISTS activity_stage "
    "(LIKE activity INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)

_PG_COPY_SQL = f"COPY activity_stage ({_ACTIVITY_COLUMNS}) FROM STDIN"

_PG_FROM_STAGE = (
    f"SELECT {_ACTIVITY_COLUMNS} FROM activity_stage "
    "ORDER BY guild_id, event, hour, channel_id, member_id"
)


class WritesMixin(StoreBase):
    """The store's writes (see the module docstring)."""

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
            yield ImportSession(cast("Store", self), conn, guild_id, session_ids)
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
        `guildmeter.store.snapshots`); counts of months past retention are discarded; the
        hours they touch of an anonymised "aggregates only" month are folded again.
        """
        from guildmeter.store.snapshots import after_write, settle_late_counts, touched_hours

        store = cast("Store", self)  # the whole store: the hooks read its other parts
        hours = touched_hours(store, counts)
        counts = settle_late_counts(store, conn, counts, set(hours))
        self._pin_new_guilds(conn, counts)
        self._resolve_members(conn, counts, session_ids)
        cache = self._member_ids
        calendars = self.calendars
        rows = []
        month_of: dict[tuple[int, int], int] = {}  # (guild, bucket) -> month, asked once each
        for (guild_id, hour, code, label, channel_id), count in counts.items():
            if label == NO_USER:
                member_id = 0
            else:
                month = month_of.get((guild_id, hour))
                if month is None:
                    month = calendars.get(guild_id).month_of_bucket(hour)
                    month_of[(guild_id, hour)] = month
                key = (guild_id, month, label)
                member_id = session_ids.get(key) or cache[key]
            rows.append((guild_id, code, hour, channel_id, member_id, count))
        rows.sort()  # one lock order for every writer: concurrent shards cannot deadlock
        summaries.writers_turn(conn, {row[0] for row in rows})  # before any row is locked
        self._upsert_activity(conn, rows)
        summaries.record_rows(conn, calendars, rows)  # the day summaries, exact
        after_write(store, conn, hours)  # closed months' snapshots and folds touched
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
        months: dict[tuple[int, int], int] = {}  # (guild, bucket) -> month, asked once each
        for guild_id, hour, _code, label, _channel in counts:
            if label == NO_USER:
                continue
            month = months.get((guild_id, hour))
            if month is None:
                month = months[(guild_id, hour)] = calendars.get(guild_id).month_of_bucket(hour)
            key = (guild_id, month, label)
            if key not in cache and key not in session_ids:
                wanted[key[:2]].add(label)
        if not wanted:
            return
        retired = self._anonymised_months(conn, list(wanted))
        # Months in one order (labels too, below): writers never wait for each other in a ring.
        for (guild_id, month), labels in sorted(wanted.items()):
            aliases = {label: label for label in labels}
            if (guild_id, month) in retired:
                # The month is anonymised and its key destroyed: a pseudonym of it (a late
                # shard, an import of old data) must not be written; it gets a fresh token,
                # the same one for the rest of this transaction and, once committed, process.
                existing = self._select_members(conn, guild_id, month, labels)
                fresh = [x for x in labels if x not in existing and is_pseudonym(x)]
                aliases.update(zip(fresh, new_tokens(month, len(fresh)), strict=True))
            stored = sorted(set(aliases.values()))
            self._insert_members(conn, guild_id, month, stored)
            found = self._select_members(conn, guild_id, month, stored)
            for label, alias in aliases.items():
                session_ids[(guild_id, month, label)] = found[alias]

    def _insert_members(
        self, conn: Connection, guild_id: int, month: int, labels: Sequence[str]
    ) -> None:
        """Create the members of ``labels`` that do not exist yet."""
        if not labels:
            return  # (an empty executemany is an INSERT of DEFAULT VALUES on PostgreSQL)
        if self.dialect == "sqlite":
            # The labels as one JSON parameter: the driver gives the GIL up once per chunk,
            # not once per row. Per row, a flush thread waits for the GIL behind an event
            # loop busy with a burst of events (up to 5 ms each time: 3 s for 4,000 new
            # members, and seconds between flushes; see benchmarks/bench_gateway_load.py).
            for chunk in _chunks(labels, _SQLITE_JSON_ROWS):
                conn.exec_driver_sql(_SQLITE_INSERT_MEMBERS, (guild_id, month, json.dumps(chunk)))
            return
        # One statement executed for many rows (compiled once): a multi-row VALUES list
        # costs SQLAlchemy a bound parameter per value to compile, which made a backfill's
        # thousands of new members per write slower than the database.
        conn.execute(
            self._insert(schema.members).on_conflict_do_nothing(
                index_elements=["guild_id", "month", "label"]
            ),
            [{"guild_id": guild_id, "month": month, "label": x} for x in labels],
        )

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
        """Remove every statistic, key and channel name of a guild; returns rows deleted.

        What describes the deleted counts goes with them: the files imported (the same
        file imported again is counted again), the hours marked not collected, what the
        backfill and live counting covered. The guild's settings and timezone, its members'
        opt-outs, its monthly-post record and its bot-usage statistics (``reset_stats``
        deletes those) stay.
        """
        deleted = 0
        with self._begin() as conn:
            summaries.writers_turn(conn, [guild_id])  # before any row: see writers_turn
            for table in (schema.activity, schema.members, schema.channels, schema.guild_keys):
                result = conn.execute(delete(table).where(table.c.guild_id == guild_id))
                deleted += int(result.rowcount or 0)
            summaries.delete_guild(conn, guild_id)
            from guildmeter.store.backfill import backfill_cursors, backfill_runs, live_starts
            from guildmeter.store.coverage import uncollected_hours
            from guildmeter.store.overlap import import_hours
            from guildmeter.store.snapshots import drop_snapshots

            drop_snapshots(conn, guild_id)
            # Its history is uncounted again: a later backfill or import must not think it
            # covered, nor a later count of joins think them not collected.
            for table in (
                live_starts,
                backfill_cursors,
                backfill_runs,
                import_hours,
                schema.imports,
                uncollected_hours,
            ):
                conn.execute(delete(table).where(table.c.guild_id == guild_id))
        self._member_ids = {k: v for k, v in self._member_ids.items() if k[0] != guild_id}
        return deleted


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
