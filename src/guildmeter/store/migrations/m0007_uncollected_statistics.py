"""Intents: the hours per guild in which joins and parts were not collected."""

from __future__ import annotations

from sqlalchemy import Connection

from guildmeter.store.coverage import uncollected_hours


def upgrade(conn: Connection) -> None:
    uncollected_hours.create(conn)
