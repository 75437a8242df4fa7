"""The bot-usage summary behind ``/stats`` and ``guildmeter stats``, from the daily tables.

Only the daily summaries are read (never the raw rows), so the cost depends on the number
of days, commands and daily users, not on how many commands were ever run.

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

from sqlalchemy import case, func, select

from guildmeter.store import Store, schema
from guildmeter.store.usage import LATENCY_BASE_MS, LATENCY_GROWTH
from guildmeter.timeutil import EPOCH, utcnow
from guildmeter.zones import UTC_CALENDAR

__all__ = ["CommandFigures", "DailyUsage", "UsageSummary", "usage_summary"]


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


def usage_summary(
    store: Store, guild_id: int | None, days: int = 7, *, now: datetime | None = None
) -> UsageSummary:
    """The last ``days`` days, today included, for one guild (its local days: the daily
    summaries are kept by the guild's local day) or (None) all (UTC days)."""
    if not 1 <= days <= 3660:
        raise ValueError("days must be between 1 and 3660")
    now = now or utcnow()
    calendar = UTC_CALENDAR if guild_id is None else store.calendars.get(guild_id)
    last = (calendar.local(now).date() - EPOCH.date()).days
    first = last - days + 1

    def window(table: Any) -> list[Any]:
        where = [table.c.day >= first, table.c.day <= last]
        if guild_id is not None:
            where.append(table.c.guild_id == guild_id)
        return where

    dc, lat = schema.usage_daily_commands, schema.usage_daily_latency
    dg, du = schema.usage_daily_generations, schema.usage_daily_users
    with store.engine.connect() as conn:
        per_command = conn.execute(
            select(dc.c.command, func.sum(dc.c.uses), func.sum(dc.c.failures),
                   func.sum(dc.c.total_ms))
            .where(*window(dc)).group_by(dc.c.command)
        ).all()  # fmt: skip
        histogram = conn.execute(
            select(lat.c.command, lat.c.bucket, func.sum(lat.c.uses))
            .where(*window(lat))
            .group_by(lat.c.command, lat.c.bucket)
        ).all()
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
        per_member = (
            select(du.c.guild_id, du.c.member_id, func.count().label("days"))
            .where(*window(du))
            .group_by(du.c.guild_id, du.c.member_id)
            .subquery()
        )
        total_users, active_users = conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((per_member.c.days >= 2, 1), else_=0)), 0),
            ).select_from(per_member)
        ).one()

    buckets: dict[str, list[tuple[int, int]]] = {}
    for command, bucket, uses in histogram:
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
    months = len(
        {calendar.month_of(calendar.midnight(first_day + timedelta(days=d))) for d in range(days)}
    )
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
        zone=calendar.zone_name_for_month(calendar.month_of(now)),
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
