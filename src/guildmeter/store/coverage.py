"""Which hours a statistic was not collected in: joins and parts without Server Members.

A bot without Discord's Server Members intent receives no joins or parts, so its hours
would read as "0 joins" — a false figure. Each flush of such a bot records the hours it
ran, per guild (`mark_uncollected`); reports show joins and parts of a period holding any
such hour as not collected. Hours when no bot ran at all are not recorded (nothing is
known about them, as before). The table holds no member and no user id.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import BigInteger, Column, Integer, PrimaryKeyConstraint, SmallInteger, Table

from guildmeter.store import schema
from guildmeter.store.sql import Store

__all__ = ["MEMBER_EVENTS", "mark_uncollected", "uncollected_hours"]

#: The statistic "joins and parts" (the only one an intent can take away today).
MEMBER_EVENTS = 1

uncollected_hours = Table(
    "uncollected_hours",
    schema.metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("statistic", SmallInteger, nullable=False),
    Column("hour", Integer, nullable=False),
    PrimaryKeyConstraint("guild_id", "statistic", "hour"),
)


def mark_uncollected(
    store: Store, guild_hours: Iterable[tuple[int, int]], statistic: int = MEMBER_EVENTS
) -> int:
    """Record (guild, hour) pairs as not collected; idempotent. Returns the pairs given."""
    rows = [
        {"guild_id": guild, "statistic": statistic, "hour": hour}
        for guild, hour in sorted(set(guild_hours))
    ]
    if rows:
        from guildmeter.store.snapshots import invalidate_months

        with store.transaction() as conn:  # an outage: StoreUnavailableError
            conn.execute(store.insert(uncollected_hours).on_conflict_do_nothing(), rows)
            # A closed month's snapshot shows its joins and parts: marked late, it is stale.
            calendars = store.calendars
            touched = {(row["guild_id"], row["hour"]) for row in rows}
            invalidate_months(conn, {(g, calendars.get(g).month_of_bucket(h)) for g, h in touched})
    return len(rows)
