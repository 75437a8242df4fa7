"""Bot-usage analytics: raw command, generation and activity rows, and daily summaries."""

from __future__ import annotations

from sqlalchemy import Connection

from guildmeter.store import schema


def upgrade(conn: Connection) -> None:
    for table in schema.usage_tables:
        table.create(conn)
