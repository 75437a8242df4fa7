"""Distinct users of spans of closed months (whole weeks, prefixes and suffixes: the
dashboard's weekly chart and rolling periods), and those of day bits deleted by a fold or
retention: see `guildmeter.store.spans`.

Created empty: the bot's monthly job fills the cache of closed months. Months whose bits
were deleted before this migration keep no such counts: the dashboard shows their partial
spans as not available.
"""

from __future__ import annotations

from sqlalchemy import Connection

from guildmeter.store.spans import span_users


def upgrade(conn: Connection) -> None:
    span_users.create(conn)
