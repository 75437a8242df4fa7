"""Distinct users per week of closed months (the dashboard's weekly chart), and those of
day bits deleted by a fold or retention: see `guildmeter.store.weeks`.

Created empty: the monthly job (and the dashboard, in the background) fills the cache of
closed months. Months whose bits were deleted before this migration keep no weekly
counts: the dashboard shows their weeks as not available.
"""

from __future__ import annotations

from sqlalchemy import Connection

from guildmeter.store.weeks import week_users


def upgrade(conn: Connection) -> None:
    week_users.create(conn)
