"""Guilds' timezones in the database: the schedule behind each `GuildCalendar`.

A zone applies from a statistics month on. Changing it never moves a month that has begun
(its buckets and key stay as they are): the new zone starts with the next local month,
except for a guild where no member's activity has been counted yet, which switches at
once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from guildmeter.store import schema, summaries
from guildmeter.timeutil import add_months
from guildmeter.zones import Calendars, GuildCalendar, check_zone

__all__ = ["TimezoneChange", "read_calendars", "set_timezone"]

#: A new month must start at least this long after the change (counts still in memory,
#: another process's flush).
_MARGIN_S = 3600


@dataclass(frozen=True)
class TimezoneChange:
    """What `set_timezone` did: the zone, and the first month it governs (None: at once)."""

    zone: str
    from_month: int | None
    unchanged: bool = False


def read_calendars(
    conn: Connection, default_zone: str, previous: Calendars | None = None
) -> Calendars:
    """Every guild's schedule (a small table: one row per guild and change).

    Read by every flush: when nothing changed, ``previous`` itself comes back, so the
    collector keeps its cached spans and the calendars their memoised months.
    """
    table = schema.guild_timezones
    schedules: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for guild_id, first, zone in conn.execute(
        select(table.c.guild_id, table.c.from_month, table.c.zone)
    ):
        schedules[int(guild_id)].append((int(first), str(zone)))
    fresh = {guild: tuple(sorted(schedule)) for guild, schedule in schedules.items()}
    if previous is not None and previous.default_zone == default_zone:
        if previous.schedules() == fresh:
            return previous
        return previous.updated(fresh)
    return Calendars(fresh, default_zone=default_zone)


def set_timezone(
    conn: Connection, calendars: Calendars, guild_id: int, name: str, now: datetime
) -> TimezoneChange:
    """Give the guild zone ``name`` from its next local month (at once without statistics)."""
    zone = check_zone(name)
    table = schema.guild_timezones
    calendar = calendars.get(guild_id)
    current = calendar.month_of(now)
    if not _has_statistics(conn, guild_id):
        conn.execute(delete(table).where(table.c.guild_id == guild_id))
        conn.execute(insert(table).values(guild_id=guild_id, from_month=0, zone=zone))
        return TimezoneChange(zone, None)
    schedule = [(first, z) for first, z in calendar.schedule if first <= current]
    conn.execute(delete(table).where(table.c.guild_id == guild_id))
    following = add_months(current, 1)
    unchanged = calendar.zone_name_for_month(current) == zone
    if not unchanged:
        # A zone east of the old one starts the next month earlier: if that start is
        # (nearly) past, counts already taken would change month. Then the month after.
        trial = GuildCalendar((*schedule, (following, zone)))
        if trial.month_start_s(following) <= int(now.timestamp()) + _MARGIN_S:
            following = add_months(following, 1)
        schedule.append((following, zone))
    conn.execute(
        insert(table),
        [{"guild_id": guild_id, "from_month": first, "zone": z} for first, z in schedule],
    )
    return TimezoneChange(zone, following, unchanged=unchanged)


def _has_statistics(conn: Connection, guild_id: int) -> bool:
    """Whether any member's activity was counted (a count with a member row).

    Such counts sit in a month's buckets under that month's pseudonyms; a new clock must
    not move them. Server-wide counts (member totals, anonymous joins) keep their hour
    index and are simply read on the new clock; bot-usage records keep their instant, day
    and month as written.
    """
    act = schema.activity
    found = conn.execute(
        select(act.c.guild_id).where(act.c.guild_id == guild_id, act.c.member_id != 0).limit(1)
    ).first()
    # Distinct users counted in day summaries outlive member rows folded at month end.
    return found is not None or summaries.has_member_days(conn, guild_id)
