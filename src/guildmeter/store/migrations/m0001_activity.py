"""Activity statistics: keys, members, hourly counts, channels, flush log."""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.schema import CreateTable

from guildmeter.store import schema


def upgrade(conn: Connection) -> None:
    # CreateTable emits the table alone: indexes added later come with their own migration.
    for table in (
        schema.guild_keys,
        schema.members,
        schema.activity,
        schema.channels,
        schema.flush_log,
    ):
        conn.execute(CreateTable(table))
    schema.flush_log_by_time.create(conn)
