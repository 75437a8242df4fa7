"""The dashboard's figures: tiles, one series over time, the heatmap and the channels table.

Everything is computed by the database (the dashboard never runs SQL of its own), from the
day summaries of `guildmeter.store.summaries` wherever they hold the answer: tiles, daily
and weekly series and the channels table read one row per day and channel. Distinct users
over several days of a month are the month's own count when the span holds all of its
days (or all of its active days: the month so far), the stored count of a closed month's
week, prefix or suffix (`guildmeter.store.spans`), or else counted from the members' day
bits of the month; where a fold or retention deleted those bits and no stored count
answers, they are None, "not available" (`UNAVAILABLE`). The heatmap reads the hour sums;
hour-by-hour series ("today") and the public heatmap (whose small-cell rule needs distinct
users per weekday and hour) read the hourly rows of their range. A page names a *period*
(today, the last 7 or 30 days, a calendar month, the last 12 months, or custom days) on
the guild's clock (its local days, as reports) and optionally one channel; each panel
compares against the previous period of equal length.

Active users are distinct pseudonyms. Members get a new pseudonym every month, so over a
period that spans months a member active in two of them counts once in each: the figures
say so (``users_per_month``). Within one month the tiles equal ``guildmeter report full``.
A channel filter applies to messages, active users and voice; joins, parts and member
totals are server-wide, as in a channel report.

Public figures (`public_view`) suppress small cells with the guild's ``min_cell_users``
through `guildmeter.reports.suppress`, table by table.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, and_, case, distinct, func, literal_column, select, text

from guildmeter.errors import GuildmeterError
from guildmeter.events import EventKind
from guildmeter.reports.compute import ReportRow, local_hours
from guildmeter.reports.daterange import EARLIEST, DateRange
from guildmeter.reports.series import summed_heatmap
from guildmeter.reports.suppress import hidden_cells
from guildmeter.store import Store, schema, spans
from guildmeter.store.coverage import MEMBER_EVENTS, uncollected_hours
from guildmeter.store.summaries import (
    WHOLE_GUILD,
    day_buckets,
    day_of_bucket,
    day_summaries,
)
from guildmeter.timeutil import add_months, utcnow
from guildmeter.zones import UTC_CALENDAR, GuildCalendar

__all__ = [
    "METRICS",
    "PERIODS",
    "UNAVAILABLE",
    "ChannelRow",
    "DashboardError",
    "Period",
    "Point",
    "Tile",
    "channel_table",
    "dashboard_period",
    "guild_channels",
    "heatmap",
    "live_channel_figures",
    "live_figures",
    "series",
    "tiles",
]

PERIODS = ("today", "7d", "30d", "month", "12m", "custom")
#: The tiles, in page order: key, label.
METRICS: tuple[tuple[str, str], ...] = (
    ("messages", "Messages"),
    ("active_users", "Active users"),
    ("new_members", "New members"),
    ("voice_hours", "Voice hours"),
    ("member_total", "Members"),
)
Granularity = Literal["hour", "day", "week"]
_MSG, _VOICE = int(EventKind.MSG), int(EventKind.VOICE)
_JOIN, _PART, _TOTAL = int(EventKind.JOIN), int(EventKind.PART), int(EventKind.TOTAL_USERS)
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
#: The longest custom period: ten years.
MAX_DAYS = 3660

#: Why a figure is None: its span holds part of a month without the members' day bits.
PARTLY_BEFORE_DATA = (
    "Not compared: the previous period starts before this server's statistics do "
    "({first:%Y-%m-%d}), so it holds only part of its days."
)
MONTHS_DIFFER = (
    "Not compared: active users are counted once per month, and the two periods span a "
    "different number of months."
)
UNAVAILABLE = (
    "Active users cannot be counted for part of a month whose per-member day records were "
    "deleted (aggregates only, or retention): whole months and single days still show them."
)


class DashboardError(GuildmeterError, ValueError):
    """A period or channel the page cannot show (the answer is a 400 with this text)."""


@dataclass(frozen=True)
class Period:
    """What the page shows: a range, its predecessor of equal length, the chart's step."""

    name: str
    range: DateRange
    previous: DateRange
    granularity: Granularity
    #: The first bucket not yet lived when the range reaches past now ("today": the hours
    #: still to come are not drawn as zeros); None when the range is all in the past.
    future_hour: int | None = None

    @property
    def label(self) -> str:
        return self.range.describe()

    @property
    def lived(self) -> DateRange:
        """The range until now: the hours still to come left out (its whole range when it
        is all in the past)."""
        if self.future_hour is None:
            return self.range
        calendar = self.range.calendar
        return DateRange(self.range.start, calendar.bucket_start(self.future_hour), calendar)

    @property
    def days(self) -> int:
        """The local days the range covers, today included when it reaches today (counted
        on the calendar: a day of 23 or 25 hours is one day)."""
        return (self.range.last_day - self.range.first_day).days + 1

    @property
    def in_words(self) -> str:
        """The period as a caption names it: "today", "the last 7 days", "November 2026",
        "the last 12 months (this one so far)", "3 days"."""
        if self.name == "today":
            return "today"
        if self.name in ("7d", "30d"):
            return f"the last {_day_count(self.days)}"
        if self.name == "12m":
            # Whole calendar months (as the weekly chart): 335 to 366 days, by the date.
            return "the last 12 months (this one so far)"
        if self.name == "month":
            month = f"{self.range.first_day:%B %Y}"
            return month if self.future_hour is None else f"{month} so far"
        return _day_count(self.days)

    @property
    def users_per_month(self) -> bool:
        """Active users are counted per month (a member active in two months counts twice)."""
        return not self.range.within_one_month


def _day_count(days: int) -> str:
    return "1 day" if days == 1 else f"{days:,} days"


def dashboard_period(
    name: str,
    *,
    month: str | None = None,
    start: str | None = None,
    end: str | None = None,
    now: datetime | None = None,
    calendar: GuildCalendar = UTC_CALENDAR,
) -> Period:
    """The period a page asks for (``month`` YYYY-MM; ``start``/``end`` YYYY-MM-DD, both
    days included), in local days on ``calendar`` (the guild's clock). Refuses what it
    cannot show with a one-line `DashboardError`."""
    now = (now or utcnow()).astimezone(UTC)
    today = calendar.local(now).date()
    tomorrow = today + timedelta(days=1)
    granularity: Granularity = "day"
    if name == "today":
        first, last, granularity = today, tomorrow, "hour"
    elif name in ("7d", "30d"):
        first, last = tomorrow - timedelta(days=int(name[:-1])), tomorrow
    elif name == "month":
        wanted = today.year * 100 + today.month
        if month:
            found = _MONTH.fullmatch(month)
            if found is None or not 1 <= int(found[2]) <= 12:
                raise DashboardError("month must be YYYY-MM")
            wanted = int(found[1]) * 100 + int(found[2])
        following = add_months(wanted, 1)
        first = date(wanted // 100, wanted % 100, 1)
        last = min(date(following // 100, following % 100, 1), tomorrow)
    elif name == "12m":
        back = add_months(today.year * 100 + today.month, -11)
        first, last, granularity = date(back // 100, back % 100, 1), tomorrow, "week"
    elif name == "custom":
        first, last = _day(start, "start"), _day(end, "end") + timedelta(days=1)
        if last <= first:
            first, last = last - timedelta(days=1), first + timedelta(days=1)
        if (last - first).days > MAX_DAYS:
            raise DashboardError(f"a custom period is at most {MAX_DAYS} days")
        last = min(last, tomorrow)
        if (last - first).days > 92:
            granularity = "week"
    else:
        raise DashboardError(f"period must be one of {', '.join(PERIODS)}")
    if first < EARLIEST.date() or first >= tomorrow:
        raise DashboardError(f"the period must start between {EARLIEST:%Y-%m-%d} and today")
    length = last - first

    def span(a: date, b: date) -> DateRange:
        return DateRange(calendar.midnight(a), calendar.midnight(b), calendar)

    current = span(first, last)
    previous = span(first - length, first)
    next_hour = calendar.bucket_of(now) + 1
    future = next_hour if next_hour < current.end_hour else None
    if name == "today":  # so far today against yesterday until the same hour, not all of it
        lived = calendar.bucket_start(next_hour) - current.start
        previous = DateRange(previous.start, previous.start + lived, calendar)
    return Period(name, current, previous, granularity, future)


def _day(text: str | None, which: str) -> date:
    if not text or _DAY.fullmatch(text) is None:
        raise DashboardError(f"{which} must be a day, YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise DashboardError(f"{which} is not a day of the calendar") from None


@dataclass(frozen=True)
class Figures:
    """One period's (or one bucket's) figures; ``new_members`` None when not collected,
    ``active_users``/``voice_users`` None when not available (`UNAVAILABLE`)."""

    messages: int = 0
    active_users: int | None = 0
    voice_users: int | None = 0
    voice_hours: float = 0.0
    joins: int | None = 0
    parts: int | None = 0
    member_total: int | None = None
    #: What a day of the span showed at most: a floor of distinct users not available.
    active_floor: int = 0
    voice_floor: int = 0

    @property
    def active_known(self) -> int:
        """Active users, or their floor when not available (the small-cell rule's input:
        a floor at or above the threshold is safe to show, one below hides)."""
        return self.active_floor if self.active_users is None else self.active_users

    @property
    def voice_known(self) -> int:
        return self.voice_floor if self.voice_users is None else self.voice_users

    @property
    def new_members(self) -> int | None:
        if self.joins is None or self.parts is None:
            return None
        return self.joins - self.parts

    def as_row(self, case: str) -> ReportRow:
        """As a report row, for the small-cell rule of `guildmeter.reports.suppress`."""
        return ReportRow(
            case, self.member_total or 0, self.active_known, self.voice_known, self.joins,
            self.parts, self.messages, 0.0, 0.0, self.voice_hours, 0.0, 0.0,
        )  # fmt: skip


@dataclass(frozen=True)
class Tile:
    key: str
    label: str
    value: float | int | None
    previous: float | int | None
    hidden: bool = False
    #: Nothing at all was recorded in the previous period (before the data starts).
    previous_empty: bool = False
    #: Why the value or the previous one is None though recorded (`UNAVAILABLE`).
    note: str | None = None
    #: Why the two periods cannot be compared (`PARTLY_BEFORE_DATA`, `MONTHS_DIFFER`).
    incomparable: str | None = None

    @property
    def change(self) -> float | None:
        """Relative change against the previous period; None when it cannot be said."""
        if self.hidden or self.incomparable or self.value is None or not self.previous:
            return None
        return (self.value - self.previous) / abs(self.previous)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "label": self.label, "value": self.value,
            "previous": self.previous, "change": self.change, "hidden": self.hidden,
            "previous_empty": self.previous_empty, "note": self.note,
            "incomparable": self.incomparable,
        }  # fmt: skip


@dataclass(frozen=True)
class Point:
    start: datetime
    figures: Figures
    hidden: frozenset[str] = field(default_factory=frozenset)

    def to_json(self) -> dict[str, Any]:
        f = self.figures
        values: dict[str, Any] = {
            "messages": f.messages, "active_users": f.active_users,
            "new_members": f.new_members, "voice_hours": round(f.voice_hours, 2),
            "member_total": f.member_total,
        }  # fmt: skip
        for key in self.hidden:
            values[key] = None
        return {"start": self.start.isoformat(), **values, "hidden": sorted(self.hidden),
                "unavailable": _unavailable(f.active_users, self.hidden)}  # fmt: skip


@dataclass(frozen=True)
class ChannelRow:
    channel_id: int
    name: str
    messages: int
    active_users: int | None
    voice_hours: float
    share: float  # of the guild's messages (text) or voice hours (voice) in the period
    hidden: frozenset[str] = field(default_factory=frozenset)

    @property
    def voice(self) -> bool:
        """A voice channel (time in voice, no messages): its share is of voice hours."""
        return not self.messages and self.voice_hours > 0

    def to_json(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "channel_id": str(self.channel_id), "name": self.name, "messages": self.messages,
            "active_users": self.active_users, "voice_hours": round(self.voice_hours, 2),
            "share": round(self.share, 4), "voice": self.voice,
        }  # fmt: skip
        for key in self.hidden:
            values[key] = None
        return {**values, "hidden": sorted(self.hidden),
                "unavailable": _unavailable(self.active_users, self.hidden)}  # fmt: skip


def _unavailable(active_users: int | None, hidden: frozenset[str]) -> list[str]:
    """The keys shown as not available (`UNAVAILABLE`): not hidden, yet None."""
    return ["active_users"] if active_users is None and "active_users" not in hidden else []


# -- queries --------------------------------------------------------------------------------


def guild_channels(store: Store, guild_id: int) -> dict[int, str]:
    """The guild's channels with statistics: id → name."""
    table = schema.channels
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(table.c.channel_id, table.c.name).where(table.c.guild_id == guild_id)
        ).all()
    return {int(cid): str(name) for cid, name in rows}


_EPOCH_DAY = date(1970, 1, 1)


def _local_day(day: date) -> int:
    return (day - _EPOCH_DAY).days


def _week(day: int) -> int:
    return (day + 3) // 7  # Monday-start weeks (1970-01-01 was a Thursday)


def _days(daterange: DateRange) -> tuple[int, int]:
    """The range's local days, [first, end)."""
    return _local_day(daterange.first_day), _local_day(daterange.last_day) + 1


def _bucket_of_day(granularity: Granularity | None, day: int) -> int:
    if granularity is None:
        return 0
    return day if granularity == "day" else _week(day)


def _bucket_days(granularity: Granularity | None, index: int, first: int, end: int) -> range:
    """The local days of a bucket, within [first, end)."""
    if granularity is None:
        return range(first, end)
    if granularity == "day":
        return range(max(index, first), min(index + 1, end))
    return range(max(index * 7 - 3, first), min(index * 7 + 4, end))


def _months(calendar: GuildCalendar, first: int, end: int) -> list[int]:
    """The statistics months holding any of the local days [first, end)."""
    low = calendar.month_of_bucket(day_buckets(calendar, first)[0])
    high = calendar.month_of_bucket(day_buckets(calendar, end - 1)[-1])
    months = [low]
    while months[-1] < high:
        months.append(add_months(months[-1], 1))
    return months


Users = tuple[int | None, int | None]
UserCounts = dict[tuple[int, int], Users]


def _users(
    conn: Connection,
    guild_id: int,
    calendar: GuildCalendar,
    buckets: dict[int, range],
    channel_id: int | None,
) -> UserCounts:
    """Distinct active and voice users per (bucket, channel) for buckets of local days;
    None: not available (see `_span_users`).

    ``channel_id`` None: every channel (not the whole guild). Per statistics month: its
    own count when the bucket holds all of its days, otherwise `_span_users`.
    """
    whole: dict[int, list[int]] = {}
    partial: dict[int, list[tuple[int, int, int]]] = {}
    for index, days in buckets.items():
        if not days:
            continue
        for month in _months(calendar, days.start, days.stop):
            first, end = spans.month_span(calendar, month)
            low, high = max(first, days.start), min(end, days.stop)
            if low >= high:
                continue
            if low == first and high == end:
                whole.setdefault(month, []).append(index)
            else:
                partial.setdefault(month, []).append((index, low, high))
    found: dict[tuple[int, int], list[int | None]] = {}

    def add(index: int, channel: int, users: Users) -> None:
        entry = found.setdefault((index, channel), [0, 0])
        entry[0], entry[1] = _plus(entry[0], users[0]), _plus(entry[1], users[1])

    totals = _month_totals(conn, guild_id, sorted({*whole, *partial}), channel_id)
    for (month, channel), users in totals.items():
        for index in whole.get(month, ()):
            add(index, channel, users)
    in_months = _span_users(conn, guild_id, calendar, partial, channel_id, totals)
    for (index, channel), span in in_months.items():
        add(index, channel, span)
    return {key: (a, v) for key, (a, v) in found.items()}


def _channel_sql(channel_id: int | None) -> tuple[str, dict[str, object]]:
    """``channel_id`` None: every channel, not the whole guild; else that one (or it)."""
    if channel_id is None:
        return "channel_id <> :w", {"w": WHOLE_GUILD}
    return "channel_id = :c", {"c": channel_id}


def _month_totals(
    conn: Connection, guild_id: int, months: list[int], channel_id: int | None
) -> dict[tuple[int, int], tuple[int, int]]:
    """Each month's own distinct users, per channel: (month, channel) -> (active, voice)."""
    if not months:
        return {}
    channel, params = _channel_sql(channel_id)
    listed = ", ".join(str(int(m)) for m in months)
    rows = conn.execute(
        text(
            "SELECT month, channel_id, active_users, voice_users FROM month_users "
            f"WHERE guild_id = :g AND month IN ({listed}) AND {channel}"
        ),
        {**params, "g": guild_id},
    )
    return {(int(m), int(c)): (int(a or 0), int(v or 0)) for m, c, a, v in rows}


def _span_users(
    conn: Connection,
    guild_id: int,
    calendar: GuildCalendar,
    partial: dict[int, list[tuple[int, int, int]]],
    channel_id: int | None,
    totals: dict[tuple[int, int], tuple[int, int]],
) -> UserCounts:
    """Distinct users of spans inside months, ``partial``: month -> (bucket, first, end).

    Whole weeks, prefixes and suffixes of a closed month come from its stored counts
    (`guildmeter.store.spans`), other spans from one scan of the month's day bits. Where a
    fold or retention deleted bits, the counts of those spans were kept (DROPPED): a span
    is those plus the held bits. A figure is None when the counts known do not add up to
    the month's own distinct users (bits deleted before their counts were kept) or when
    the span is not a stored one of such a month: an honest "not available", never 0.
    """
    out: UserCounts = {}
    if not partial:
        return out
    wanted_spans = [spans.month_span(calendar, m) for m in partial]
    wanted_spans += [(low, high) for pieces in partial.values() for _, low, high in pieces]
    stored = spans.read_spans(conn, guild_id, partial, wanted_spans, channel_id)
    channel, params = _channel_sql(channel_id)

    def wanted(c: int) -> bool:
        return c != WHOLE_GUILD if channel_id is None else c == channel_id

    for month, pieces in partial.items():
        whole = spans.month_span(calendar, month)
        kept = spans.stored_spans(calendar, month)
        by_source: dict[int, dict[tuple[int, spans.Span], tuple[int, int]]] = {
            spans.HELD: {}, spans.DROPPED: {},
        }  # fmt: skip
        for (m, source, c, span), counted in stored.items():
            if m == month:
                by_source[source][(c, span)] = counted
        dropped = by_source[spans.DROPPED]
        cached = (WHOLE_GUILD, whole) in by_source[spans.HELD]
        busy: dict[int, tuple[list[int], list[int]]] = {}
        if cached and all((low, high) in kept for _, low, high in pieces):
            held = by_source[spans.HELD]
            busy_known = False
        else:
            busy, busy_known = _busy_days(conn, guild_id, whole, channel, params), True
            if all(_within(days, low, high) for c, both in busy.items() if wanted(c)
                   for days in both for _, low, high in pieces):  # fmt: skip
                held = {}  # each span holds every active day of its month: its count
            else:
                asked = [whole, *((low, high) for _, low, high in pieces)]
                held = spans.count_spans(conn, guild_id, calendar, month, asked, channel, params)
        channels = {c for c, _ in held} | {c for c, _ in dropped}
        channels |= {c for m, c in totals if m == month}
        for c in filter(wanted, channels):
            total = totals.get((month, c), (0, 0))
            held_all = held.get((c, whole), (0, 0))
            dropped_all = dropped.get((c, whole), (0, 0))
            for index, low, high in pieces:
                figures: list[int | None] = []
                for k in (0, 1):
                    if busy_known and _within(busy.get(c, ([], []))[k], low, high):
                        figures.append(total[k])  # e.g. the month so far: nobody after it
                    elif held_all[k] + dropped_all[k] != total[k]:
                        figures.append(None)  # bits deleted, their spans' counts not kept
                    elif dropped_all[k] and (low, high) not in kept:
                        figures.append(None)  # kept for the stored spans only
                    else:
                        figures.append(held.get((c, (low, high)), (0, 0))[k]
                                       + dropped.get((c, (low, high)), (0, 0))[k])  # fmt: skip
                was = out.get((index, c), (0, 0))  # a week across two months: both
                out[(index, c)] = (_plus(was[0], figures[0]), _plus(was[1], figures[1]))
    return out


def _busy_days(
    conn: Connection, guild_id: int, month: spans.Span, channel: str, params: dict[str, object]
) -> dict[int, tuple[list[int], list[int]]]:
    """The days of a month with active users, then with voice users, per channel (from the
    day summaries: each day bit set counts on its day). A span holding all of a channel's
    days has the month's own distinct users (the current month up to today, typically)."""
    rows = conn.execute(
        text(
            "SELECT channel_id, day, active_users, voice_users FROM day_summaries "
            f"WHERE guild_id = :g AND day >= {int(month[0])} AND day < {int(month[1])} "
            f"AND {channel} AND (active_users > 0 OR voice_users > 0)"
        ),
        {**params, "g": guild_id},
    )
    found: dict[int, tuple[list[int], list[int]]] = {}
    for channel_id, day, active, voice in rows:
        both = found.setdefault(int(channel_id), ([], []))
        for k, users in ((0, active), (1, voice)):
            if users:
                both[k].append(int(day))
    return found


def _within(days: list[int], low: int, high: int) -> bool:
    return all(low <= day < high for day in days)


def _plus(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def _summary_figures(
    store: Store,
    guild_id: int,
    daterange: DateRange,
    channel_id: int | None,
    granularity: Granularity | None,
) -> dict[int, Figures]:
    """Figures per bucket of local days (one bucket, 0, when ``granularity`` is None),
    from the day summaries."""
    calendar = daterange.calendar
    first, end = _days(daterange)
    if end <= first:
        return {}
    days = day_summaries
    channel = WHOLE_GUILD if channel_id is None else channel_id
    values: dict[int, dict[str, Any]] = {}
    latest: dict[int, tuple[int, int, int]] = {}
    buckets: dict[int, range] = {}
    in_range = (days.c.guild_id == guild_id, days.c.day >= first, days.c.day < end)
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                days.c.day, days.c.channel_id, days.c.messages, days.c.voice_seconds,
                days.c.joins, days.c.parts, days.c.member_total, days.c.member_total_hour,
                days.c.active_users, days.c.voice_users,
            ).where(*in_range, days.c.channel_id.in_({channel, WHOLE_GUILD}))
        )  # fmt: skip
        day_users: UserCounts = {}
        for day, row_channel, messages, voice, joins, parts, total, total_hour, a, v in rows:
            b = _bucket_of_day(granularity, int(day))
            entry = values.setdefault(b, {})
            if row_channel == channel:
                entry["messages"] = entry.get("messages", 0) + int(messages)
                entry["voice_hours"] = entry.get("voice_hours", 0.0) + int(voice) / 3600
                entry["active_floor"] = max(entry.get("active_floor", 0), int(a))
                entry["voice_floor"] = max(entry.get("voice_floor", 0), int(v))
                day_users[(b, channel)] = (int(a), int(v))
            if row_channel == WHOLE_GUILD:
                entry["joins"] = entry.get("joins", 0) + int(joins)
                entry["parts"] = entry.get("parts", 0) + int(parts)
                if total is not None and (b not in latest or latest[b][:2] < (day, total_hour)):
                    latest[b] = (int(day), int(total_hour), int(total))
        for b in values:
            buckets[b] = _bucket_days(granularity, b, first, end)
        if granularity == "day":  # a day's own distinct users
            users = day_users
        else:
            users = _users(conn, guild_id, calendar, buckets, channel)
        gaps = uncollected_hours
        missing = conn.scalars(
            select(gaps.c.hour).where(
                gaps.c.guild_id == guild_id,
                gaps.c.statistic == MEMBER_EVENTS,
                gaps.c.hour >= daterange.start_hour,
                gaps.c.hour < daterange.end_hour,
            )
        ).all()
    for b, entry in values.items():
        active, voice = users.get((b, channel), (0, 0))
        entry.update(active_users=active, voice_users=voice)
        if b in latest:
            entry["member_total"] = latest[b][2]
    for hour in missing:
        b = _bucket_of_day(granularity, day_of_bucket(calendar, int(hour)))
        values.setdefault(b, {}).update(joins=None, parts=None)
    return {b: Figures(**entry) for b, entry in values.items()}


def live_figures(
    store: Store,
    guild_id: int,
    daterange: DateRange,
    channel_id: int | None,
    granularity: Granularity | None,
) -> dict[int, Figures]:
    """Figures per bucket computed from the hourly rows of the range (every row is read).

    The hour-by-hour series uses it (a day's rows); for longer ranges it is what the day
    summaries replace — the benchmarks' baseline.
    """
    act = schema.activity
    calendar = daterange.calendar
    local_day = local_hours(act.c.hour, daterange) // 24
    bucket: Any
    if granularity == "hour":
        bucket = act.c.hour
    elif granularity is None:
        bucket = literal_column("0")
    elif granularity == "day":
        bucket = local_day
    else:
        bucket = (local_day + 3) // 7
    bucket = bucket.label("b")
    by_bucket = [] if granularity is None else [bucket]
    in_range = and_(
        act.c.guild_id == guild_id,
        act.c.hour >= daterange.start_hour,
        act.c.hour < daterange.end_hour,
    )
    channel = [] if channel_id is None else [act.c.channel_id == channel_id]
    people = func.count(distinct(case((act.c.member_id != 0, act.c.member_id))))
    counted = (
        select(act.c.event, bucket, func.sum(act.c.count), people)
        .where(in_range, act.c.event.in_([_MSG, _VOICE]), *channel)
        .group_by(act.c.event, *by_bucket)
    )
    members = (
        select(act.c.event, bucket, func.sum(act.c.count))
        .where(in_range, act.c.event.in_([_JOIN, _PART]))
        .group_by(act.c.event, *by_bucket)
    )
    totals = select(bucket, act.c.hour, act.c.count).where(in_range, act.c.event == _TOTAL)
    gaps = uncollected_hours
    missing = select(gaps.c.hour).where(
        gaps.c.guild_id == guild_id,
        gaps.c.statistic == MEMBER_EVENTS,
        gaps.c.hour >= daterange.start_hour,
        gaps.c.hour < daterange.end_hour,
    )
    values: dict[int, dict[str, Any]] = {}
    latest: dict[int, int] = {}
    with store.engine.connect() as conn:
        for event, b, total, users in conn.execute(counted):
            entry = values.setdefault(int(b), {})
            if event == _MSG:
                entry["messages"], entry["active_users"] = int(total), int(users)
            else:
                entry["voice_hours"], entry["voice_users"] = int(total) / 3600, int(users)
        for event, b, total in conn.execute(members):
            values.setdefault(int(b), {})["joins" if event == _JOIN else "parts"] = int(total)
        for b, hour, total in conn.execute(totals):
            if int(hour) >= latest.get(int(b), int(hour)):
                latest[int(b)] = int(hour)
                values.setdefault(int(b), {})["member_total"] = int(total)
        for hour in conn.scalars(missing):
            b = int(hour)
            if granularity != "hour":
                b = _bucket_of_day(granularity, day_of_bucket(calendar, b))
            values.setdefault(b, {}).update(joins=None, parts=None)
    return {b: Figures(**entry) for b, entry in values.items()}


def live_channel_figures(store: Store, guild_id: int, daterange: DateRange) -> dict[int, Figures]:
    """Messages, users and voice per channel from the hourly rows (the baseline of
    `channel_table`)."""
    act = schema.activity
    people = func.count(distinct(case((act.c.member_id != 0, act.c.member_id))))
    query = (
        select(act.c.channel_id, act.c.event, func.sum(act.c.count), people)
        .where(
            act.c.guild_id == guild_id,
            act.c.event.in_([_MSG, _VOICE]),
            act.c.hour >= daterange.start_hour,
            act.c.hour < daterange.end_hour,
        )
        .group_by(act.c.channel_id, act.c.event)
    )
    per_channel: dict[int, dict[str, Any]] = {}
    with store.engine.connect() as conn:
        for channel_id, event, total, users in conn.execute(query):
            entry = per_channel.setdefault(int(channel_id), {})
            if event == _MSG:
                entry["messages"], entry["active_users"] = int(total), int(users)
            else:
                entry["voice_hours"], entry["voice_users"] = int(total) / 3600, int(users)
    return {c: Figures(**entry) for c, entry in per_channel.items()}


def _period_figures(
    store: Store, guild_id: int, daterange: DateRange, channel_id: int | None
) -> Figures:
    return _summary_figures(store, guild_id, daterange, channel_id, None).get(0, Figures())


def tiles(
    store: Store,
    guild_id: int,
    period: Period,
    channel_id: int | None = None,
    *,
    min_cell_users: int | None = None,
) -> list[Tile]:
    """The five tiles with the previous period's values; ``min_cell_users``: public.

    A change is shown only between periods that can be compared: not when the previous one
    starts before the guild's first statistics, nor for active users between periods that
    span different numbers of months (counted once per month). "Today" so far is compared
    with yesterday until the same hour (from the hourly rows: a day's worth).
    """
    if period.granularity == "hour":  # a day, from its hourly rows: until now, as the series
        now = live_figures(store, guild_id, period.lived, channel_id, None).get(0, Figures())
        before = live_figures(store, guild_id, period.previous, channel_id, None).get(0, Figures())
    else:
        now = _period_figures(store, guild_id, period.range, channel_id)
        before = _period_figures(store, guild_id, period.previous, channel_id)
    incomparable: str | None = None
    held = store.activity_span(guild_id)
    if held is not None and period.previous.start_hour < held[0] < period.previous.end_hour:
        first = period.range.calendar.local(period.range.calendar.bucket_start(held[0]))
        incomparable = PARTLY_BEFORE_DATA.format(first=first)
    users_incomparable = incomparable
    if users_incomparable is None and len(period.range.months) != len(period.previous.months):
        users_incomparable = MONTHS_DIFFER
    hidden: set[str] = set()
    if min_cell_users is not None:
        for figures in (now, before):
            if 0 < figures.active_known < min_cell_users:
                hidden.update(("messages", "active_users"))
            if 0 < figures.voice_known < min_cell_users:
                hidden.add("voice_hours")
    empty = before == Figures()
    out = []
    for key, label in METRICS:
        if key in hidden:
            out.append(Tile(key, label, None, None, hidden=True, previous_empty=empty))
            continue
        reason = users_incomparable if key == "active_users" else incomparable
        tile = Tile(key, label, getattr(now, key), getattr(before, key), False, empty,
                    incomparable=reason)  # fmt: skip
        if key == "active_users" and None in (now.active_users, before.active_users):
            tile = dataclasses.replace(tile, note=UNAVAILABLE)
        out.append(tile)
    return out


def series(
    store: Store,
    guild_id: int,
    period: Period,
    channel_id: int | None = None,
    *,
    min_cell_users: int | None = None,
) -> list[Point]:
    """Every bucket of the period (hour, day or week), empty ones included."""
    granularity = period.granularity
    calendar = period.range.calendar
    if granularity == "hour":
        found = live_figures(store, guild_id, period.range, channel_id, granularity)
        indices = list(range(period.range.start_hour, period.lived.end_hour))
        starts = [calendar.bucket_start(i) for i in indices]
    else:
        found = _summary_figures(store, guild_id, period.range, channel_id, granularity)
        first, end = _days(period.range)
        indices = list(range(_bucket_of_day(granularity, first),
                             _bucket_of_day(granularity, end - 1) + 1))  # fmt: skip
        starts = [
            max(calendar.midnight(_EPOCH_DAY + timedelta(days=_bucket_days(
                granularity, i, first, end).start)), period.range.start)
            for i in indices
        ]  # fmt: skip
    figures = [found.get(i, Figures()) for i in indices]
    hidden: Sequence[frozenset[str]] = [frozenset()] * len(indices)
    if min_cell_users is not None:
        whole = _period_figures(store, guild_id, period.range, channel_id)
        hidden = _public_cells(figures, whole, min_cell_users)
    return [Point(s, f, h) for s, f, h in zip(starts, figures, hidden, strict=True)]


def _public_cells(parts: Sequence[Figures], whole: Figures, min_users: int) -> list[frozenset[str]]:
    """The suppress module's rule (complementary cells included), in the page's keys."""
    rows = [f.as_row(str(i)) for i, f in enumerate(parts)]
    per_row, _ = hidden_cells(rows, min_users, whole=whole.as_row("all"))
    out = []
    for columns in per_row:
        keys: set[str] = set()
        if "active_users" in columns:
            keys.update(("messages", "active_users"))
        if "voice_users" in columns:
            keys.add("voice_hours")
        out.append(frozenset(keys))
    return out


def heatmap(
    store: Store,
    guild_id: int,
    period: Period,
    channel_id: int | None = None,
    *,
    min_cell_users: int | None = None,
) -> list[list[int | None]]:
    """Messages per weekday (0 = Monday) × hour of day, local; None: a hidden cell.

    From the hour sums; the public view needs distinct users per cell (its small-cell
    rule), which only the hourly rows hold.
    """
    daterange = period.range
    if min_cell_users is None:
        channels = [WHOLE_GUILD if channel_id is None else channel_id]
        with store.engine.connect() as conn:
            summed: list[list[int | None]] = [
                list(row) for row in summed_heatmap(conn, guild_id, daterange, channels)
            ]
        return summed
    cells = [[Figures() for _ in range(24)] for _ in range(7)]
    act = schema.activity
    local = local_hours(act.c.hour, daterange)
    weekday, hour_of_day = ((local // 24 + 3) % 7).label("wd"), (local % 24).label("hd")
    where = [
        act.c.guild_id == guild_id,
        act.c.event == _MSG,
        act.c.hour >= daterange.start_hour,
        act.c.hour < daterange.end_hour,
    ]
    if channel_id is not None:
        where.append(act.c.channel_id == channel_id)
    people = func.count(distinct(case((act.c.member_id != 0, act.c.member_id))))
    query = (
        select(weekday, hour_of_day, func.sum(act.c.count), people)
        .where(*where)
        .group_by(weekday, hour_of_day)
    )
    with store.engine.connect() as conn:
        for wd, hd, total, users in conn.execute(query):
            if total:
                cells[int(wd)][int(hd)] = Figures(messages=int(total), active_users=int(users))
    grid: list[list[int | None]] = [[c.messages for c in row] for row in cells]
    flat = [c for row in cells for c in row]
    whole = _period_figures(store, guild_id, period.range, channel_id)
    for index, keys in enumerate(_public_cells(flat, whole, min_cell_users)):
        if "messages" in keys:
            grid[index // 24][index % 24] = None
    return grid


def channel_table(
    store: Store,
    guild_id: int,
    period: Period,
    *,
    min_cell_users: int | None = None,
) -> list[ChannelRow]:
    """Every channel with activity in the period, busiest first."""
    days = day_summaries
    first, end = _days(period.range)
    per_channel: dict[int, dict[str, Any]] = {}
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(days.c.channel_id, func.sum(days.c.messages), func.sum(days.c.voice_seconds))
            .where(
                days.c.guild_id == guild_id,
                days.c.day >= first,
                days.c.day < end,
                days.c.channel_id != WHOLE_GUILD,
            )
            .group_by(days.c.channel_id)
        )
        for channel_id, messages, voice in rows:
            if messages or voice:
                per_channel[int(channel_id)] = {
                    "messages": int(messages), "voice_hours": int(voice) / 3600,
                }  # fmt: skip
        users = _users(conn, guild_id, period.range.calendar, {0: range(first, end)}, None)
    for channel_id, entry in per_channel.items():
        entry["active_users"], entry["voice_users"] = users.get((0, channel_id), (0, 0))
    names = guild_channels(store, guild_id)
    busiest = {
        c: (-v.get("messages", 0), -v.get("voice_hours", 0), c) for c, v in per_channel.items()
    }
    ids = sorted(per_channel, key=busiest.__getitem__)
    figures = [Figures(**per_channel[c]) for c in ids]
    hidden: Sequence[frozenset[str]] = [frozenset()] * len(ids)
    if min_cell_users is not None:
        whole = _period_figures(store, guild_id, period.range, None)
        hidden = _public_cells(figures, whole, min_cell_users)
    all_messages = sum(f.messages for f in figures) or 1
    all_voice = sum(f.voice_hours for f in figures) or 1.0
    out = []
    for channel_id, f, h in zip(ids, figures, hidden, strict=True):
        share = f.messages / all_messages if f.messages else f.voice_hours / all_voice
        if "messages" in h or ("voice_hours" in h and not f.messages):
            h = h | {"share"}
        out.append(
            ChannelRow(channel_id, names.get(channel_id, str(channel_id)), f.messages,
                       f.active_users, f.voice_hours, share, h)
        )  # fmt: skip
    return out
