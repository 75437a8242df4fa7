"""A covering index in member order, so per-user report sums stream instead of sorting.

Members belong to one guild-month, so a report (always within one month) can seek the
month's member ids and read each member's counts in order.
"""

from __future__ import annotations

from sqlalchemy import Connection

from guildmeter.store import schema


def upgrade(conn: Connection) -> None:
    schema.activity_by_member.create(conn)
