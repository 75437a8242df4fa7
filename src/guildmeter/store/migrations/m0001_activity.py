"""Activity statistics: keys, members, hourly counts, channels, flush log."""

from __future__ import annotations

from sqlalchemy import Connection

from guildmeter.store import schema


def upgrade(conn: Connection) -> None:
    tables = [schema.guild_keys, schema.members, schema.activity, schema.channels, schema.flush_log]
    # Later tables are created by their own migrations.
    schema.metadata.create_all(conn, tables=tables)
