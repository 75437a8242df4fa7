"""Per-guild timezones (issue 12). Existing rows are UTC buckets and stay valid as they are:
a guild without a row here keeps the UTC clock (or the configured default)."""

from __future__ import annotations

from sqlalchemy import Connection

from guildmeter.store import schema


def upgrade(conn: Connection) -> None:
    schema.guild_timezones.create(conn)
