"""History backfill: live starts per guild and channel, per-channel cursors, runs.

Guilds counted before this migration get a live start just before their first stored
hour (one hour before, so that a local bucket's shift can never let the backfill reach
into hours already counted).
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from guildmeter.store import schema
from guildmeter.store.backfill import (
    DISCORD_EPOCH_MS,
    GUILD_WIDE,
    backfill_cursors,
    backfill_runs,
    live_starts,
)


def upgrade(conn: Connection) -> None:
    for table in (live_starts, backfill_cursors, backfill_runs):
        table.create(conn)
    act = schema.activity
    rows = conn.execute(select(act.c.guild_id, func.min(act.c.hour)).group_by(act.c.guild_id)).all()
    starts = [
        {
            "guild_id": int(guild_id),
            "channel_id": GUILD_WIDE,
            "first_id": max(0, (int(hour) - 1) * 3_600_000 - DISCORD_EPOCH_MS) << 22,
        }
        for guild_id, hour in rows
        if hour is not None
    ]
    if starts:
        conn.execute(live_starts.insert(), starts)
