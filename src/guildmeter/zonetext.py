"""What the bot says about a guild's timezone (statsconfig show and timezone, /privacy)."""

from __future__ import annotations

from datetime import datetime

from guildmeter.store.timezones import TimezoneChange
from guildmeter.timeutil import add_months
from guildmeter.zones import GuildCalendar, format_offset

__all__ = ["describe_change", "describe_timezone", "local_time"]


def local_time(calendar: GuildCalendar, when: datetime) -> str:
    """``2026-11-01 00:00 Asia/Kolkata (UTC+05:30)``."""
    local = calendar.local(when)
    offset = local.utcoffset()
    assert offset is not None
    zone = calendar.zone_name_for_month(calendar.month_of(when))
    return f"{local:%Y-%m-%d %H:%M} {zone} (UTC{format_offset(offset)})"


def describe_timezone(calendar: GuildCalendar, now: datetime) -> str:
    """The zone now, and a change waiting for the next month."""
    month = calendar.month_of(now)
    zone = calendar.zone_name_for_month(month)
    following = add_months(month, 1)
    text = f"Timezone: {zone} (statistics follow its local hours, days and months)"
    upcoming = calendar.zone_name_for_month(following)
    if upcoming != zone:
        start = calendar.month_start(following)
        text += f"; {upcoming} from {local_time(calendar, start)}"
    return text


def describe_change(change: TimezoneChange, calendar: GuildCalendar) -> str:
    if change.from_month is None:
        return (
            f"Statistics now follow {change.zone}: local hours, days and months. No member's "
            "activity has been counted here yet, so the change applies at once."
        )
    start = local_time(calendar, calendar.month_start(change.from_month))
    if change.unchanged:
        return f"This month already follows {change.zone}; no change is waiting any more."
    return (
        f"Statistics follow {change.zone} from the start of the next month, {start}. "
        "This month keeps its hours, its zone and its key, so that no hour is counted "
        "twice or split between two pseudonyms."
    )
