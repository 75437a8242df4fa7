"""Long histories from the day summaries: per local day and channel, messages and users.

A year of a busy server is millions of hourly member rows but only a few thousand day
rows (`guildmeter.store.summaries`). `channel_days_live` computes the same answer from the
hourly rows: the baseline, and a check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import distinct, func, select

from guildmeter.events import EventKind
from guildmeter.reports.compute import local_hours
from guildmeter.reports.daterange import DateRange
from guildmeter.store import Store, schema
from guildmeter.store.summaries import WHOLE_GUILD

__all__ = ["ChannelDay", "channel_days", "channel_days_live"]

_EPOCH_DAY = date(1970, 1, 1)


@dataclass(frozen=True)
class ChannelDay:
    day: date  # the guild's local day
    channel_id: int
    messages: int
    active_users: int  # distinct members who posted in the channel that day


def _day_span(daterange: DateRange) -> tuple[int, int]:
    first = (daterange.first_day - _EPOCH_DAY).days
    return first, (daterange.last_day - _EPOCH_DAY).days + 1


def channel_days(store: Store, guild_id: int, daterange: DateRange) -> list[ChannelDay]:
    """Every (local day, channel) of the range with messages, from the day summaries."""
    first, end = _day_span(daterange)
    marker = "?" if store.dialect == "sqlite" else "%s"
    sql = (
        "SELECT day, channel_id, messages, active_users FROM day_summaries "
        f"WHERE guild_id = {marker} AND day >= {marker} AND day < {marker} "
        f"AND channel_id <> {WHOLE_GUILD} AND messages > 0 ORDER BY day, channel_id"
    )
    days: dict[int, date] = {}
    out = []
    with store.engine.connect() as conn:
        # Straight from the driver: a year of a busy server is tens of thousands of rows.
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, (guild_id, first, end))
            for d, c, m, u in cursor.fetchall():
                when = days.get(d)
                if when is None:
                    when = days[d] = _EPOCH_DAY + timedelta(days=int(d))
                out.append(ChannelDay(when, int(c), int(m), int(u)))
        finally:
            cursor.close()
    return out


def channel_days_live(store: Store, guild_id: int, daterange: DateRange) -> list[ChannelDay]:
    """`channel_days` computed from the hourly rows (every row of the range is read)."""
    act = schema.activity
    day = (local_hours(act.c.hour, daterange) // 24).label("day")
    query = (
        select(day, act.c.channel_id, func.sum(act.c.count), func.count(distinct(act.c.member_id)))
        .where(
            act.c.guild_id == guild_id,
            act.c.event == int(EventKind.MSG),
            act.c.hour >= daterange.start_hour,
            act.c.hour < daterange.end_hour,
        )
        .group_by(day, act.c.channel_id)
        .order_by(day, act.c.channel_id)
    )
    with store.engine.connect() as conn:
        return [
            ChannelDay(_EPOCH_DAY + timedelta(days=int(d)), int(c), int(m), int(u))
            for d, c, m, u in conn.execute(query)
            if int(m) > 0
        ]
