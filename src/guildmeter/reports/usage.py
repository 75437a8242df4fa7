"""The bot-usage summary behind ``/stats`` and ``guildmeter stats``, from the day summaries
and their roll-ups.

Never the raw rows: counts, failures, times and generations come from the day summaries
(a few rows per day), the latency histogram and the distinct and active members from the
roll-ups (`guildmeter.store.rollups`), with the day rows only at a window's edges. So a
30-day window costs about what a 7-day one costs, and neither depends on how many
commands were ever run.

Days are each guild's local days (its timezone, `guildmeter.zones`): one guild's window is
its last N local days; over every guild, each guild's own last N local days (the summary
then spans the earliest first and the latest last of those dates).

Definitions (also in the README):

- Total users: distinct members who ran a command, had a generation tracked or a tracked
  action in the window. Members get a new pseudonym each month, so when the window spans
  two months a person active in both counts twice: the figure is then labelled
  "user-months".
- Active users: those of them seen on at least two different days of the window.
- Latency percentiles come from a histogram whose buckets are 5 % wide: each percentile is
  the upper bound of its bucket, at most 5 % above the exact value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    union_all,
)

from guildmeter.store import Store, rollups, schema
from guildmeter.store.usage import LATENCY_BASE_MS, LATENCY_GROWTH
from guildmeter.timeutil import EPOCH, utcnow
from guildmeter.zones import UTC_NAME, GuildCalendar

__all__ = [
    "EACH_GUILDS_DAYS",
    "CommandFigures",
    "DailyUsage",
    "UsageSummary",
    "usage_summary",
]


@dataclass(frozen=True)
class CommandFigures:
    command: str
    uses: int
    failures: int
    failure_rate: float
    mean_ms: float
    median_ms: float
    p95_ms: float


@dataclass(frozen=True)
class DailyUsage:
    day: date
    commands: int
    generations: int


@dataclass(frozen=True)
class UsageSummary:
    guild_id: int | None  # None: every guild
    days: int
    start: date  # first day included
    end: date  # last day included
    images: int
    image_seconds_mean: float
    videos: int
    video_seconds_mean: float
    commands_total: int
    commands_failed: int
    commands: list[CommandFigures]  # most used first
    total_users: int
    active_users: int
    months_spanned: int
    resolutions: list[tuple[str, int]]  # most used first
    daily: list[DailyUsage]
    #: The timezone of the days (the guild's; UTC for every guild).
    zone: str = "UTC"

    @property
    def users_label(self) -> str:
        return "user-months" if self.months_spanned > 1 else "users"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["guild_id"] = None if self.guild_id is None else str(self.guild_id)
        data["start"], data["end"] = self.start.isoformat(), self.end.isoformat()
        data["users_counted_as"] = self.users_label
        data["resolutions"] = [{"resolution": r, "jobs": n} for r, n in self.resolutions]
        data["daily"] = [
            {"day": d.day.isoformat(), "commands": d.commands, "generations": d.generations}
            for d in self.daily
        ]
        return data


#: `UsageSummary.zone` over every guild when their clocks differ.
EACH_GUILDS_DAYS = "each server's own local days"


@dataclass(frozen=True)
class _Scope:
    """Guilds that share a window of day numbers [first, last]: ``guilds`` (None: every
    guild but ``others``)."""

    guilds: tuple[int, ...] | None
    others: tuple[int, ...]
    first: int
    last: int

    def guild_filter(self, table: Any) -> list[Any]:
        if self.guilds is not None:
            if len(self.guilds) == 1:
                return [table.c.guild_id == self.guilds[0]]
            return [table.c.guild_id.in_(self.guilds)]
        return [table.c.guild_id.not_in(self.others)] if self.others else []

    def where(self, table: Any) -> Any:
        return and_(*self.guild_filter(table), table.c.day >= self.first, table.c.day <= self.last)


def _scopes(store: Store, guild_id: int | None, days: int, now: datetime) -> list[_Scope]:
    """Each guild's last ``days`` local days, grouped by the guilds' local today."""

    def day_of(calendar: GuildCalendar) -> int:
        return (calendar.local(now).date() - EPOCH.date()).days

    if guild_id is not None:
        last = day_of(store.calendars.get(guild_id))
        return [_Scope((guild_id,), (), last - days + 1, last)]
    calendars = store.calendars
    by_day: dict[int, list[int]] = {}
    for guild in sorted(calendars.known):
        by_day.setdefault(day_of(calendars.get(guild)), []).append(guild)
    default_day = day_of(calendars.default)
    scopes = []
    for last in sorted({default_day, *by_day}):
        if last == default_day:
            others = tuple(g for d, gs in by_day.items() if d != last for g in gs)
            scopes.append(_Scope(None, others, last - days + 1, last))
        else:
            scopes.append(_Scope(tuple(by_day[last]), (), last - days + 1, last))
    return scopes


def usage_summary(
    store: Store,
    guild_id: int | None,
    days: int = 7,
    *,
    now: datetime | None = None,
    use_rollups: bool = True,
) -> UsageSummary:
    """The last ``days`` days, today included, for one guild or (None) all.

    Days are each guild's local days (the day summaries are kept by them): for one guild,
    its last ``days`` local days. Over every guild, each guild's own last ``days`` local
    days: when the guilds' clocks are on different dates now, ``start`` is the earliest
    first day and ``end`` the latest last day (so ``daily`` may hold a day or two more),
    and ``zone`` says "each server's own local days".

    ``use_rollups=False`` reads only the day rows (the way before the roll-ups; kept as the
    baseline the roll-ups must equal).
    """
    if not 1 <= days <= 3660:
        raise ValueError("days must be between 1 and 3660")
    now = now or utcnow()
    scopes = _scopes(store, guild_id, days, now)
    if guild_id is not None:
        calendar = store.calendars.get(guild_id)
        zone = calendar.zone_name_for_month(calendar.month_of(now))
    elif len(scopes) == 1 and all(c.is_utc for c in store.calendars.all()):
        zone = UTC_NAME
    else:
        zone = EACH_GUILDS_DAYS
    first = min(scope.first for scope in scopes)
    last = max(scope.last for scope in scopes)

    def window(table: Any) -> list[Any]:
        return [or_(*(scope.where(table) for scope in scopes))]

    dc, dg = schema.usage_daily_commands, schema.usage_daily_generations
    with store.engine.connect() as conn:
        per_command = conn.execute(
            select(dc.c.command, func.sum(dc.c.uses), func.sum(dc.c.failures),
                   func.sum(dc.c.total_ms))
            .where(*window(dc)).group_by(dc.c.command)
        ).all()  # fmt: skip
        histogram: dict[tuple[str, int], int] = {}
        total_users = active_users = 0
        for scope in scopes:
            if use_rollups:
                part = _histogram(conn, scope)
                users = _users(conn, scope)
            else:
                part = _histogram_from_days(conn, scope)
                users = _users_from_days(conn, scope)
            if histogram:
                for key, uses in part.items():
                    histogram[key] = histogram.get(key, 0) + uses
            else:
                histogram = part
            total_users, active_users = total_users + users[0], active_users + users[1]
        generations = conn.execute(
            select(dg.c.is_video, func.sum(dg.c.jobs), func.sum(dg.c.total_seconds))
            .where(*window(dg))
            .group_by(dg.c.is_video)
        ).all()
        resolutions = conn.execute(
            select(dg.c.resolution, func.sum(dg.c.jobs).label("jobs"))
            .where(*window(dg))
            .group_by(dg.c.resolution)
            .order_by(func.sum(dg.c.jobs).desc(), dg.c.resolution)
            .limit(5)
        ).all()
        daily_commands = dict(
            conn.execute(
                select(dc.c.day, func.sum(dc.c.uses)).where(*window(dc)).group_by(dc.c.day)
            ).all()
        )
        daily_generations = dict(
            conn.execute(
                select(dg.c.day, func.sum(dg.c.jobs)).where(*window(dg)).group_by(dg.c.day)
            ).all()
        )

    buckets: dict[str, list[tuple[int, int]]] = {}
    for (command, bucket), uses in histogram.items():
        if not uses:
            continue
        buckets.setdefault(command, []).append((int(bucket), int(uses)))
    figures = []
    for command, uses, failures, total_ms in per_command:
        uses, failures = int(uses), int(failures)
        ordered = sorted(buckets.get(command, []))
        figures.append(
            CommandFigures(
                command,
                uses,
                failures,
                failures / uses if uses else 0.0,
                float(total_ms) / uses if uses else 0.0,
                _percentile(ordered, 0.5),
                _percentile(ordered, 0.95),
            )
        )
    figures.sort(key=lambda f: (-f.uses, f.command))
    by_kind = {bool(v): (int(n), float(s)) for v, n, s in generations}
    images, image_seconds = by_kind.get(False, (0, 0.0))
    videos, video_seconds = by_kind.get(True, (0, 0.0))
    first_day = (EPOCH + timedelta(days=first)).date()
    last_day = (EPOCH + timedelta(days=last)).date()
    # A guild's month is its local calendar month: the month of the local date.
    months = len(rollups.month_masks(first, last))
    return UsageSummary(
        guild_id=guild_id,
        days=days,
        start=first_day,
        end=last_day,
        images=images,
        image_seconds_mean=image_seconds / images if images else 0.0,
        videos=videos,
        video_seconds_mean=video_seconds / videos if videos else 0.0,
        commands_total=sum(f.uses for f in figures),
        commands_failed=sum(f.failures for f in figures),
        commands=figures,
        total_users=int(total_users),
        active_users=int(active_users),
        months_spanned=months,
        resolutions=[(r, int(n)) for r, n in resolutions],
        daily=[
            DailyUsage(
                (EPOCH + timedelta(days=d)).date(),
                int(daily_commands.get(d, 0)),
                int(daily_generations.get(d, 0)),
            )
            for d in range(first, last + 1)
        ],
        zone=zone,
    )


def _percentile(ordered: list[tuple[int, int]], q: float) -> float:
    """The upper bound of the bucket holding the q-quantile (nearest-rank)."""
    total = sum(uses for _, uses in ordered)
    if total == 0:
        return 0.0
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bucket, uses in ordered:
        seen += uses
        if seen >= rank:
            return LATENCY_BASE_MS * LATENCY_GROWTH**bucket
    return LATENCY_BASE_MS * LATENCY_GROWTH ** ordered[-1][0]  # pragma: no cover


def _histogram(conn: Connection, scope: _Scope) -> dict[tuple[str, int], int]:
    """(command, bucket) uses over the scope's days, from the roll-ups and edge days."""
    lat, roll = schema.usage_daily_latency, rollups.latency_rollups
    parts: list[Any] = []
    pieces = rollups.plan(scope.first, scope.last)
    for sign in (1, -1):
        days = [start for (level, start), s in pieces.items() if s == sign and level == rollups.DAY]
        if days:
            parts.append(
                select(lat.c.command, lat.c.bucket, (lat.c.uses * sign).label("uses")).where(
                    *scope.guild_filter(lat), lat.c.day.in_(days)
                )
            )
        for level in (rollups.PART, rollups.MONTH):
            starts = [p for (lv, p), s in pieces.items() if s == sign and lv == level]
            if starts:
                parts.append(
                    select(
                        roll.c.command, roll.c.bucket, (roll.c.uses * sign).label("uses")
                    ).where(*scope.guild_filter(roll), roll.c.level == level,
                            roll.c.first_day.in_(starts))
                )  # fmt: skip
    rows = union_all(*parts).subquery()
    total = func.sum(rows.c.uses)
    query = select(rows.c.command, rows.c.bucket, total).group_by(rows.c.command, rows.c.bucket)
    return {(c, int(b)): int(n) for c, b, n in conn.execute(query.having(total != 0)).all()}


def _histogram_from_days(conn: Connection, scope: _Scope) -> dict[tuple[str, int], int]:
    lat = schema.usage_daily_latency
    query = (
        select(lat.c.command, lat.c.bucket, func.sum(lat.c.uses))
        .where(scope.where(lat))
        .group_by(lat.c.command, lat.c.bucket)
    )
    return {(c, int(b)): int(n) for c, b, n in conn.execute(query).all()}


def _users(conn: Connection, scope: _Scope) -> tuple[int, int]:
    """Distinct members of the scope's days and those active on two days or more, from
    each member-month's day mask: ``x = mask & window``; x & (x - 1) is 0 for one day."""
    mu = rollups.monthly_users
    months = []
    for month, mask in rollups.month_masks(scope.first, scope.last).items():
        seen = mu.c.days_mask.op("&")(literal(mask, BigInteger))
        months.append(
            select(
                mu.c.guild_id,
                mu.c.member_id,
                case((seen.op("&")(seen - 1) == 0, 1), else_=2).label("days"),  # min(days, 2)
            ).where(*scope.guild_filter(mu), mu.c.month_day == month, seen != 0)
        )
    rows = union_all(*months).subquery()
    per_member = (
        select(func.sum(rows.c.days).label("days"))
        .group_by(rows.c.guild_id, rows.c.member_id)
        .subquery()
    )
    total, active = conn.execute(
        select(
            func.coalesce(func.sum(case((per_member.c.days >= 1, 1), else_=0)), 0),
            func.coalesce(func.sum(case((per_member.c.days >= 2, 1), else_=0)), 0),
        )
    ).one()
    return int(total), int(active)


def _users_from_days(conn: Connection, scope: _Scope) -> tuple[int, int]:
    du = schema.usage_daily_users
    per_member = (
        select(du.c.guild_id, du.c.member_id, func.count().label("days"))
        .where(scope.where(du))
        .group_by(du.c.guild_id, du.c.member_id)
        .subquery()
    )
    total, active = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((per_member.c.days >= 2, 1), else_=0)), 0),
        ).select_from(per_member)
    ).one()
    return int(total), int(active)
