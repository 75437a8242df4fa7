"""Month end: which guild-months are due, anonymising one (tokens replace pseudonyms, the
key is destroyed), and scrubbing what was replaced out of the database files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection, and_, bindparam, func, select, update
from sqlalchemy.exc import OperationalError

from guildmeter.privacy.anonymize import new_tokens
from guildmeter.privacy.keyring import PSEUDONYM_PREFIX
from guildmeter.store import schema, summaries
from guildmeter.store.base import (
    _SQLITE_BUSY_MS,
    _SQLITE_JSON_ROWS,
    StoreBase,
    _chunks,
    _unavailable,
)
from guildmeter.timeutil import utcnow

_SQLITE_REPLACE_LABELS = (
    "UPDATE members SET label = j.value ->> 1 FROM json_each(?) AS j "
    "WHERE members.id = j.value ->> 0"
)


@dataclass(frozen=True)
class AnonymisationResult:
    guild_id: int
    month: int
    pseudonyms_replaced: int
    key_destroyed: bool


class MonthEndMixin(StoreBase):
    """The store's month end (see the module docstring)."""

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
        keys = schema.guild_keys
        key_where = and_(keys.c.guild_id == guild_id, keys.c.month == month)
        with self._begin() as conn:
            lock = select(keys.c.key).where(key_where)
            if self.dialect == "postgresql":
                lock = lock.with_for_update()
            key_row = conn.execute(lock).first()
            pseudonyms = self._pseudonym_ids(conn, guild_id, month)
            if pseudonyms:
                tokens = new_tokens(month, len(pseudonyms))
                self._replace_labels(conn, list(zip(pseudonyms, tokens, strict=True)))
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

    def _pseudonym_ids(self, conn: Connection, guild_id: int, month: int) -> list[int]:
        """Member ids of the guild-month still under a pseudonym."""
        members = schema.members
        where = (
            members.c.guild_id == guild_id,
            members.c.month == month,
            members.c.label.startswith(PSEUDONYM_PREFIX),
        )
        if self.dialect == "sqlite":
            # One JSON array rather than a row at a time (see `_replace_labels`).
            found = conn.execute(select(func.json_group_array(members.c.id)).where(*where))
            return [int(i) for i in json.loads(found.scalar() or "[]")]
        return [int(i) for i in conn.execute(select(members.c.id).where(*where)).scalars()]

    def _replace_labels(self, conn: Connection, labels: list[tuple[int, str]]) -> None:
        """Give each member id of ``labels`` its new label."""
        if self.dialect == "sqlite":
            # One JSON parameter per chunk rather than a row at a time: see
            # `WritesMixin._insert_members` (this runs in the flush, too).
            for chunk in _chunks(labels, _SQLITE_JSON_ROWS):
                conn.exec_driver_sql(_SQLITE_REPLACE_LABELS, (json.dumps(chunk),))
            return
        members = schema.members
        conn.execute(
            update(members)
            .where(members.c.id == bindparam("member_id"))
            .values(label=bindparam("token")),
            [{"member_id": i, "token": token} for i, token in labels],
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
