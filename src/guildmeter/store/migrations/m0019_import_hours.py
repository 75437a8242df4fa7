"""The hours each KazTron import filled with messages and joins (`guildmeter.store.overlap`),
so that a history backfill does not count them again.

Imports made before this migration recorded no hours: for a guild with imports, the hours
holding messages or joins before its live start that no backfill cursor covers are
recorded now (only an import or another tool can have written those).
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from guildmeter.events import EventKind
from guildmeter.store import schema
from guildmeter.store.backfill import GUILD_WIDE, backfill_cursors, live_starts
from guildmeter.store.overlap import hour_runs, import_hours

_MS_PER_HOUR = 3_600_000
_EPOCH_MS = 1_420_070_400_000


def upgrade(conn: Connection) -> None:
    import_hours.create(conn)
    guilds = sorted({int(g) for g in conn.scalars(select(schema.imports.c.guild_id))})
    act = schema.activity
    for guild_id in guilds:
        start = conn.execute(
            select(live_starts.c.first_id).where(
                live_starts.c.guild_id == guild_id, live_starts.c.channel_id == GUILD_WIDE
            )
        ).scalar()
        covered = (
            conn.execute(
                select(backfill_cursors.c.covered_from).where(
                    backfill_cursors.c.guild_id == guild_id
                )
            )
            .scalars()
            .all()
        )
        # In UTC hours: a bucket is within an hour of its UTC hour whatever the zone, and an
        # hour too few (at either end) is the safe side (it is counted, never skipped).
        limit = None if start is None else (int(start) >> 22) + _EPOCH_MS
        if covered:
            low = min((int(c) >> 22) + _EPOCH_MS for c in covered)
            limit = low if limit is None else min(limit, low)
        rows = []
        for event in (EventKind.MSG, EventKind.JOIN):
            query = (
                select(act.c.hour)
                .distinct()
                .where(act.c.guild_id == guild_id, act.c.event == int(event))
            )
            if limit is not None:
                query = query.where(act.c.hour < limit // _MS_PER_HOUR - 1)
            hours = [int(h) for h in conn.scalars(query)]
            rows += [
                {"guild_id": guild_id, "event": int(event), "first_hour": a, "end_hour": b}
                for a, b in hour_runs(hours)
            ]
        if rows:
            conn.execute(import_hours.insert(), rows)
