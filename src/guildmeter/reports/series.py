"""Series behind the charts, aggregated by the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from guildmeter.events import EventKind
from guildmeter.reports.compute import local_hours, resolve_channel
from guildmeter.reports.daterange import DateRange
from guildmeter.store import Store, schema
from guildmeter.timeutil import EPOCH

_EPOCH_DAY = EPOCH.date()

__all__ = ["ActivitySeries", "DailyPoint", "activity_series"]


@dataclass(frozen=True)
class DailyPoint:
    day: date
    messages: int
    active_users: int
    voice_hours: float


@dataclass(frozen=True)
class ActivitySeries:
    guild_id: int
    channel: str
    range: DateRange
    #: messages[weekday 0=Monday][hour of day], on the guild's clock
    heatmap: list[list[int]]
    daily: list[DailyPoint]


def activity_series(
    store: Store, guild_id: int, daterange: DateRange, channel: str | None = None
) -> ActivitySeries:
    """Weekday × hour messages and per-day messages, active users and voice hours."""
    channel_ids = resolve_channel(store, guild_id, channel)
    act = schema.activity
    where = [
        act.c.guild_id == guild_id,
        act.c.hour >= daterange.start_hour,
        act.c.hour < daterange.end_hour,
    ]
    if channel_ids is not None:
        where.append(act.c.channel_id.in_(channel_ids))
    local = local_hours(act.c.hour, daterange)  # the guild's wall clock
    weekday = (local // 24 + 3) % 7
    hour_of_day = local % 24
    day = local // 24
    heat_query = (
        select(weekday, hour_of_day, func.sum(act.c.count))
        .where(*where, act.c.event == int(EventKind.MSG))
        .group_by(weekday, hour_of_day)
    )
    daily_query = (
        select(
            act.c.event,
            day.label("day"),
            func.sum(act.c.count),
            func.count(act.c.member_id.distinct()),
        )
        .where(*where, act.c.event.in_([int(EventKind.MSG), int(EventKind.VOICE)]))
        .group_by(act.c.event, day)
    )
    heatmap = [[0] * 24 for _ in range(7)]
    per_day: dict[int, dict[int, tuple[int, int]]] = {}
    with store.engine.connect() as conn:
        for wd, hod, total in conn.execute(heat_query):
            heatmap[int(wd)][int(hod)] = int(total)
        for event, day_index, total, users in conn.execute(daily_query):
            per_day.setdefault(int(day_index), {})[int(event)] = (int(total), int(users))
    daily = []
    for day_date in daterange.days:
        values = per_day.get((day_date - _EPOCH_DAY).days, {})
        messages, active = values.get(int(EventKind.MSG), (0, 0))
        voice_seconds, _ = values.get(int(EventKind.VOICE), (0, 0))
        daily.append(DailyPoint(day_date, messages, active, voice_seconds / 3600))
    name = "all" if channel_ids is None else (channel or "").strip().removeprefix("#")
    return ActivitySeries(guild_id, name, daterange, heatmap, daily)
