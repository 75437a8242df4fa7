"""What a database holds: which guilds have statistics, and over which span of time.

Every query is an index seek on ``activity``'s primary key (guild, event, hour, …): the
answers cost a few milliseconds however many rows the guild has, so commands can check
before they work instead of printing a page of zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, func, select

from guildmeter.events import EventKind
from guildmeter.store import schema
from guildmeter.store.sql import Store

__all__ = [
    "DataSpan",
    "data_span",
    "guilds_with_statistics",
    "guilds_with_usage",
    "has_statistics",
    "has_usage",
]


@dataclass(frozen=True)
class DataSpan:
    """The first and last hour holding any count of a guild."""

    first: datetime
    last: datetime


def guilds_with_statistics(store: Store, limit: int = 20) -> list[int]:
    """Up to ``limit`` guild ids with at least one activity count, smallest first."""
    return _guilds(store, schema.activity, limit)


def guilds_with_usage(store: Store, limit: int = 20) -> list[int]:
    """Up to ``limit`` guild ids with bot-usage records (0: direct messages)."""
    return _guilds(store, schema.usage_daily_users, limit)


def _guilds(store: Store, table: Table, limit: int) -> list[int]:
    """One index seek per guild (``min(guild_id) > previous``), not a DISTINCT scan."""
    column = table.c.guild_id
    found: list[int] = []
    with store.engine.connect() as conn:
        previous: int | None = None
        while len(found) < limit:
            query = select(func.min(column))
            if previous is not None:
                query = query.where(column > previous)
            guild = conn.execute(query).scalar()
            if guild is None:
                break
            found.append(int(guild))
            previous = int(guild)
    return found


def data_span(store: Store, guild_id: int) -> DataSpan | None:
    """When the guild's statistics start and end; None when it has none."""
    span = store.activity_span(guild_id)
    if span is None:
        return None
    calendar = store.calendars.get(guild_id)  # the guild's local hours
    return DataSpan(calendar.bucket_start(span[0]), calendar.bucket_start(span[1]))


def has_statistics(store: Store, guild_id: int, start_hour: int, end_hour: int) -> bool:
    """Whether the guild has any count in hours [start_hour, end_hour)."""
    act = schema.activity
    with store.engine.connect() as conn:
        for kind in EventKind:
            found = conn.execute(
                select(act.c.hour)
                .where(
                    act.c.guild_id == guild_id,
                    act.c.event == int(kind),
                    act.c.hour >= start_hour,
                    act.c.hour < end_hour,
                )
                .limit(1)
            ).first()
            if found is not None:
                return True
    return False


def has_usage(store: Store, guild_id: int) -> bool:
    """Whether the guild has any bot-usage record."""
    table = schema.usage_daily_users
    with store.engine.connect() as conn:
        found = conn.execute(
            select(table.c.guild_id).where(table.c.guild_id == guild_id).limit(1)
        ).first()
    return found is not None
