"""Series behind the charts, aggregated by the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, func, select

from guildmeter.events import EventKind
from guildmeter.reports.compute import local_hours, resolve_channel
from guildmeter.reports.daterange import DateRange
from guildmeter.store import Store, schema
from guildmeter.store.summaries import WHOLE_GUILD, day_summaries, hour_summaries
from guildmeter.timeutil import EPOCH

_EPOCH_DAY = EPOCH.date()

__all__ = ["ActivitySeries", "DailyPoint", "activity_series", "summed_heatmap"]


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
    """Weekday × hour messages and per-day messages, active users and voice hours.

    From the day summaries (`guildmeter.store.summaries`): the hour sums for the heatmap,
    the day rows for the rest — a few thousand rows, where the hourly member rows were a
    million (1.7 s for a big month, most of a report command's time). Their distinct users
    are exact also for months kept as aggregates only or past retention, which the hourly
    rows no longer tell apart. A channel name shared by several channels (a rename, two
    channels of one name) counts its distinct users per day from the hourly rows, since
    the channels' own counts do not add up: for a month folded to aggregates only or past
    retention, which keeps no member rows, that line shows 0.
    """
    channel_ids = resolve_channel(store, guild_id, channel)
    channels = [WHOLE_GUILD] if channel_ids is None else channel_ids
    days = day_summaries
    first = (daterange.first_day - _EPOCH_DAY).days
    end = (daterange.last_day - _EPOCH_DAY).days + 1
    daily_query = (
        select(
            days.c.day,
            func.sum(days.c.messages),
            func.sum(days.c.active_users),
            func.sum(days.c.voice_seconds),
        )
        .where(
            days.c.guild_id == guild_id,
            days.c.channel_id.in_(channels),
            days.c.day >= first,
            days.c.day < end,
        )
        .group_by(days.c.day)
    )
    per_day: dict[int, tuple[int, int, int]] = {}
    with store.engine.connect() as conn:
        heatmap = summed_heatmap(conn, guild_id, daterange, channels)
        for day_index, messages, active, voice in conn.execute(daily_query):
            per_day[int(day_index)] = (int(messages), int(active), int(voice))
        if len(channels) > 1:
            shared = _active_users_per_day(conn, guild_id, daterange, channels)
            per_day = {d: (m, shared.get(d, 0), v) for d, (m, _a, v) in per_day.items()}
    daily = []
    for day_date in daterange.days:
        messages, active, voice_seconds = per_day.get((day_date - _EPOCH_DAY).days, (0, 0, 0))
        daily.append(DailyPoint(day_date, messages, active, voice_seconds / 3600))
    name = "all" if channel_ids is None else (channel or "").strip().removeprefix("#")
    return ActivitySeries(guild_id, name, daterange, heatmap, daily)


def summed_heatmap(
    conn: Connection, guild_id: int, daterange: DateRange, channel_ids: list[int]
) -> list[list[int]]:
    """Messages per weekday (0 = Monday) × local hour of day, from the hour sums of
    ``channel_ids`` (`WHOLE_GUILD` for every channel)."""
    hours = hour_summaries
    local = local_hours(hours.c.hour, daterange)  # the guild's wall clock
    weekday, hour_of_day = ((local // 24 + 3) % 7).label("wd"), (local % 24).label("hd")
    query = (
        select(weekday, hour_of_day, func.sum(hours.c.messages))
        .where(
            hours.c.guild_id == guild_id,
            hours.c.channel_id.in_(channel_ids),
            hours.c.hour >= daterange.start_hour,
            hours.c.hour < daterange.end_hour,
        )
        .group_by(weekday, hour_of_day)
    )
    grid = [[0] * 24 for _ in range(7)]
    for wd, hod, total in conn.execute(query):
        grid[int(wd)][int(hod)] = int(total)
    return grid


def _active_users_per_day(
    conn: Connection, guild_id: int, daterange: DateRange, channel_ids: list[int]
) -> dict[int, int]:
    """Distinct members who posted in any of ``channel_ids``, per local day (hourly rows)."""
    act = schema.activity
    day = local_hours(act.c.hour, daterange) // 24
    query = (
        select(day, func.count(act.c.member_id.distinct()))
        .where(
            act.c.guild_id == guild_id,
            act.c.event == int(EventKind.MSG),
            act.c.hour >= daterange.start_hour,
            act.c.hour < daterange.end_hour,
            act.c.channel_id.in_(channel_ids),
            act.c.member_id != 0,
        )
        .group_by(day)
    )
    return {int(d): int(n) for d, n in conn.execute(query)}
