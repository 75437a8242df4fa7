"""Members' rights: the per-guild opt-out key and the opt-out digests (no raw ids)."""

from __future__ import annotations

from sqlalchemy import Connection

from guildmeter.store.rights import member_optouts, optout_keys


def upgrade(conn: Connection) -> None:
    optout_keys.create(conn)
    member_optouts.create(conn)
