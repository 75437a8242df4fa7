"""Day summaries (issue 13): hour sums, members' day bits, day and month summaries.

Filled from the existing hourly rows, a guild-month at a time, on each guild's recorded
clock (guilds without a recorded zone: UTC, the clock their rows were written on).
Months already folded to aggregates only have no member rows left: their distinct users
start at what the rows still show (none), as the reports show them.
"""

from __future__ import annotations

from sqlalchemy import Connection

from guildmeter.store import summaries
from guildmeter.store.timezones import read_calendars
from guildmeter.zones import UTC_NAME


def upgrade(conn: Connection) -> None:
    for table in summaries.summary_tables:
        table.create(conn)
    summaries.rebuild_all(conn, read_calendars(conn, UTC_NAME))
