"""Reads for tests, the demo, dumps and reports: totals, spans, channel names, the raw dump."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select

from guildmeter.events import NO_USER, EventKind
from guildmeter.privacy.keyring import PSEUDONYM_PREFIX
from guildmeter.store import schema
from guildmeter.store.base import StoreBase

_DUMP_WINDOW_HOURS = 24 * 7


class ReadsMixin(StoreBase):
    """The store's reads (see the module docstring)."""

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
