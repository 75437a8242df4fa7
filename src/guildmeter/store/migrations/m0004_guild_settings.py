"""Per-guild settings (moderator channels and roles, report channel) and monthly posts."""

from __future__ import annotations

from sqlalchemy import Connection

from guildmeter.store import schema


def upgrade(conn: Connection) -> None:
    schema.guild_settings.create(conn)
    schema.monthly_posts.create(conn)
