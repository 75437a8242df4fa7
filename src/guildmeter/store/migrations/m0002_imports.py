"""Record imported files, so that importing the same file twice cannot double its counts."""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.schema import CreateTable

from guildmeter.store import schema


def upgrade(conn: Connection) -> None:
    conn.execute(CreateTable(schema.imports))
