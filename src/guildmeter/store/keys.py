"""Per guild-month keys: fetched or created in batches, None once destroyed by month end."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, and_, select, tuple_

from guildmeter.store import schema
from guildmeter.store.base import _CHUNK, StoreBase, _chunks
from guildmeter.timeutil import utcnow


class KeysMixin(StoreBase):
    """The store's keys (see the module docstring)."""

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
