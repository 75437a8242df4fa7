"""The dashboard's figures: tiles, one series over time, the heatmap and the channels table.

Everything is computed by the database from the hourly rows (the dashboard never runs SQL
of its own). A page names a *period* (today, the last 7 or 30 days, a calendar month, the
last 12 months, or custom days) and optionally one channel; each panel compares against the
previous period of equal length.

Active users are distinct pseudonyms. Members get a new pseudonym every month, so over a
period that spans months a member active in two of them counts once in each: the figures
say so (``users_per_month``). Within one month the tiles equal ``guildmeter report full``.
A channel filter applies to messages, active users and voice; joins, parts and member
totals are server-wide, as in a channel report.

Public figures (`public_view`) suppress small cells with the guild's ``min_cell_users``
through `guildmeter.reports.suppress`, table by table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, case, distinct, func, literal_column, select

from guildmeter.errors import GuildmeterError
from guildmeter.events import EventKind
from guildmeter.reports.compute import ReportRow
from guildmeter.reports.daterange import EARLIEST, DateRange
from guildmeter.reports.suppress import hidden_cells
from guildmeter.store import Store, schema
from guildmeter.store.coverage import MEMBER_EVENTS, uncollected_hours
from guildmeter.timeutil import EPOCH, add_months, month_of, month_start, utcnow

__all__ = [
    "METRICS",
    "PERIODS",
    "ChannelRow",
    "DashboardError",
    "Period",
    "Point",
    "Tile",
    "channel_table",
    "dashboard_period",
    "guild_channels",
    "heatmap",
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


class DashboardError(GuildmeterError, ValueError):
    """A period or channel the page cannot show (the answer is a 400 with this text)."""


@dataclass(frozen=True)
class Period:
    """What the page shows: a range, its predecessor of equal length, the chart's step."""

    name: str
    range: DateRange
    previous: DateRange
    granularity: Granularity

    @property
    def label(self) -> str:
        return self.range.describe()

    @property
    def users_per_month(self) -> bool:
        """Active users are counted per month (a member active in two months counts twice)."""
        return not self.range.within_one_month


def dashboard_period(
    name: str,
    *,
    month: str | None = None,
    start: str | None = None,
    end: str | None = None,
    now: datetime | None = None,
) -> Period:
    """The period a page asks for (``month`` YYYY-MM; ``start``/``end`` YYYY-MM-DD, both
    days included). Refuses what it cannot show with a one-line `DashboardError`."""
    now = (now or utcnow()).astimezone(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow = today + timedelta(days=1)
    granularity: Granularity = "day"
    if name == "today":
        first, last, granularity = today, tomorrow, "hour"
    elif name in ("7d", "30d"):
        first, last = tomorrow - timedelta(days=int(name[:-1])), tomorrow
    elif name == "month":
        wanted = month_of(now)
        if month:
            found = _MONTH.fullmatch(month)
            if found is None or not 1 <= int(found[2]) <= 12:
                raise DashboardError("month must be YYYY-MM")
            wanted = int(found[1]) * 100 + int(found[2])
        first, last = month_start(wanted), min(month_start(add_months(wanted, 1)), tomorrow)
    elif name == "12m":
        first, last, granularity = month_start(add_months(month_of(now), -11)), tomorrow, "week"
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
    if first < EARLIEST or first >= tomorrow:
        raise DashboardError(f"the period must start between {EARLIEST:%Y-%m-%d} and today")
    length = last - first
    return Period(name, DateRange(first, last), DateRange(first - length, first), granularity)


def _day(text: str | None, which: str) -> datetime:
    if not text or _DAY.fullmatch(text) is None:
        raise DashboardError(f"{which} must be a day, YYYY-MM-DD")
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        raise DashboardError(f"{which} is not a day of the calendar") from None


@dataclass(frozen=True)
class Figures:
    """One period's (or one bucket's) figures; ``new_members`` None when not collected."""

    messages: int = 0
    active_users: int = 0
    voice_users: int = 0
    voice_hours: float = 0.0
    joins: int | None = 0
    parts: int | None = 0
    member_total: int | None = None

    @property
    def new_members(self) -> int | None:
        if self.joins is None or self.parts is None:
            return None
        return self.joins - self.parts

    def as_row(self, case: str) -> ReportRow:
        """As a report row, for the small-cell rule of `guildmeter.reports.suppress`."""
        return ReportRow(
            case, self.member_total or 0, self.active_users, self.voice_users, self.joins,
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

    @property
    def change(self) -> float | None:
        """Relative change against the previous period; None when it cannot be said."""
        if self.hidden or self.value is None or not self.previous:
            return None
        return (self.value - self.previous) / abs(self.previous)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "label": self.label, "value": self.value,
            "previous": self.previous, "change": self.change, "hidden": self.hidden,
            "previous_empty": self.previous_empty,
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
        return {"start": self.start.isoformat(), **values, "hidden": sorted(self.hidden)}


@dataclass(frozen=True)
class ChannelRow:
    channel_id: int
    name: str
    messages: int
    active_users: int
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
        return {**values, "hidden": sorted(self.hidden)}


# -- queries --------------------------------------------------------------------------------


def guild_channels(store: Store, guild_id: int) -> dict[int, str]:
    """The guild's channels with statistics: id → name."""
    table = schema.channels
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(table.c.channel_id, table.c.name).where(table.c.guild_id == guild_id)
        ).all()
    return {int(cid): str(name) for cid, name in rows}


def _bucket(granularity: Granularity | None, hour: Any) -> Any:
    if granularity is None:
        return literal_column("0")  # one bucket: the whole period (never grouped by)
    if granularity == "hour":
        return hour
    if granularity == "day":
        return hour // 24
    return (hour // 24 + 3) // 7  # Monday-start weeks (1970-01-01 was a Thursday)


def _bucket_start(granularity: Granularity, index: int) -> datetime:
    if granularity == "hour":
        return EPOCH + timedelta(hours=index)
    if granularity == "day":
        return EPOCH + timedelta(days=index)
    return EPOCH + timedelta(days=index * 7 - 3)


def _figures(
    store: Store,
    guild_id: int,
    daterange: DateRange,
    channel_id: int | None,
    granularity: Granularity | None,
) -> dict[int, Figures]:
    """Figures per bucket (one bucket, 0, when ``granularity`` is None)."""
    act = schema.activity
    bucket = _bucket(granularity, act.c.hour).label("b")
    in_range = and_(
        act.c.guild_id == guild_id,
        act.c.hour >= daterange.start_hour,
        act.c.hour < daterange.end_hour,
    )
    channel = [] if channel_id is None else [act.c.channel_id == channel_id]
    by_bucket = [] if granularity is None else [bucket]
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
    ranked = (
        select(
            bucket,
            act.c.count,
            func.row_number()
            .over(partition_by=by_bucket or None, order_by=act.c.hour.desc())
            .label("rank"),
        )
        .where(in_range, act.c.event == _TOTAL)
        .subquery()
    )
    totals = select(ranked.c.b, ranked.c["count"]).where(ranked.c.rank == 1)
    gaps = uncollected_hours
    gap_bucket = _bucket(granularity, gaps.c.hour)
    missing = (
        select(gap_bucket)
        .where(
            gaps.c.guild_id == guild_id,
            gaps.c.statistic == MEMBER_EVENTS,
            gaps.c.hour >= daterange.start_hour,
            gaps.c.hour < daterange.end_hour,
        )
        .distinct()
    )
    values: dict[int, dict[str, Any]] = {}
    with store.engine.connect() as conn:
        for event, b, total, users in conn.execute(counted):
            entry = values.setdefault(int(b), {})
            if event == _MSG:
                entry["messages"], entry["active_users"] = int(total), int(users)
            else:
                entry["voice_hours"], entry["voice_users"] = int(total) / 3600, int(users)
        for event, b, total in conn.execute(members):
            values.setdefault(int(b), {})["joins" if event == _JOIN else "parts"] = int(total)
        for b, total in conn.execute(totals):
            values.setdefault(int(b), {})["member_total"] = int(total)
        for b in conn.scalars(missing):
            values.setdefault(int(b), {}).update(joins=None, parts=None)
    return {b: Figures(**entry) for b, entry in values.items()}


def _period_figures(
    store: Store, guild_id: int, daterange: DateRange, channel_id: int | None
) -> Figures:
    return _figures(store, guild_id, daterange, channel_id, None).get(0, Figures())


def tiles(
    store: Store,
    guild_id: int,
    period: Period,
    channel_id: int | None = None,
    *,
    min_cell_users: int | None = None,
) -> list[Tile]:
    """The five tiles with the previous period's values; ``min_cell_users``: public."""
    now = _period_figures(store, guild_id, period.range, channel_id)
    before = _period_figures(store, guild_id, period.previous, channel_id)
    hidden: set[str] = set()
    if min_cell_users is not None:
        for figures in (now, before):
            if 0 < figures.active_users < min_cell_users:
                hidden.update(("messages", "active_users"))
            if 0 < figures.voice_users < min_cell_users:
                hidden.add("voice_hours")
    empty = before == Figures()
    out = []
    for key, label in METRICS:
        if key in hidden:
            out.append(Tile(key, label, None, None, hidden=True, previous_empty=empty))
        else:
            out.append(Tile(key, label, getattr(now, key), getattr(before, key), False, empty))
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
    found = _figures(store, guild_id, period.range, channel_id, granularity)
    first = _index(granularity, period.range.start)
    last = _index(granularity, period.range.end - timedelta(seconds=1))
    indices = list(range(first, last + 1))
    figures = [found.get(i, Figures()) for i in indices]
    hidden: Sequence[frozenset[str]] = [frozenset()] * len(indices)
    if min_cell_users is not None:
        whole = _period_figures(store, guild_id, period.range, channel_id)
        hidden = _public_cells(figures, whole, min_cell_users)
    return [
        Point(max(_bucket_start(granularity, i), period.range.start), f, h)
        for i, f, h in zip(indices, figures, hidden, strict=True)
    ]


def _index(granularity: Granularity, when: datetime) -> int:
    hours = int(when.timestamp() // 3600)
    if granularity == "hour":
        return hours
    if granularity == "day":
        return hours // 24
    return (hours // 24 + 3) // 7


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
    """Messages per weekday (0 = Monday) × hour of day, UTC; None: a hidden cell."""
    act = schema.activity
    weekday = ((act.c.hour // 24 + 3) % 7).label("wd")
    hour_of_day = (act.c.hour % 24).label("hd")
    where = [
        act.c.guild_id == guild_id,
        act.c.event == _MSG,
        act.c.hour >= period.range.start_hour,
        act.c.hour < period.range.end_hour,
    ]
    if channel_id is not None:
        where.append(act.c.channel_id == channel_id)
    people = func.count(distinct(case((act.c.member_id != 0, act.c.member_id))))
    query = (
        select(weekday, hour_of_day, func.sum(act.c.count), people)
        .where(*where)
        .group_by(weekday, hour_of_day)
    )
    cells = [[Figures() for _ in range(24)] for _ in range(7)]
    with store.engine.connect() as conn:
        for wd, hd, total, users in conn.execute(query):
            cells[int(wd)][int(hd)] = Figures(messages=int(total), active_users=int(users))
    grid: list[list[int | None]] = [[c.messages for c in row] for row in cells]
    if min_cell_users is not None:
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
    act = schema.activity
    people = func.count(distinct(case((act.c.member_id != 0, act.c.member_id))))
    query = (
        select(act.c.channel_id, act.c.event, func.sum(act.c.count), people)
        .where(
            act.c.guild_id == guild_id,
            act.c.event.in_([_MSG, _VOICE]),
            act.c.hour >= period.range.start_hour,
            act.c.hour < period.range.end_hour,
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
    rows = []
    for channel_id, f, h in zip(ids, figures, hidden, strict=True):
        share = f.messages / all_messages if f.messages else f.voice_hours / all_voice
        if "messages" in h or ("voice_hours" in h and not f.messages):
            h = h | {"share"}
        rows.append(
            ChannelRow(channel_id, names.get(channel_id, str(channel_id)), f.messages,
                       f.active_users, f.voice_hours, share, h)
        )  # fmt: skip
    return rows
