"""The dashboard's data, through `guildmeter.reports` (web/ runs no SQL of its own).

Each panel is one call into reports/, run in a worker thread so the event loop (and, inside
the bot, the gateway) never waits on the database; at most `MAX_RUNNING` at once, so a
burst of page loads queues instead of taking every core from the bot. The public view's
answers are shared by every visitor for `PUBLIC_CACHE_S` seconds: a popular link costs
one computation a minute. Answers are plain JSON values.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from guildmeter.reports import dashboard
from guildmeter.reports.dashboard import DashboardError, Period, dashboard_period
from guildmeter.reports.daterange import DateRange
from guildmeter.store import Store
from guildmeter.store.settings import GuildSettings, SettingsStore
from guildmeter.timeutil import utcnow
from guildmeter.zones import UTC_CALENDAR, GuildCalendar

if TYPE_CHECKING:
    from guildmeter.reports.usage import UsageSummary

__all__ = ["MAX_RUNNING", "PANELS", "PUBLIC_CACHE_S", "PUBLIC_PANELS", "DashboardData", "Dump",
           "month_labels", "period_of"]  # fmt: skip

MAX_RUNNING = 4
PUBLIC_CACHE_S = 60.0

PANELS = ("tiles", "series", "heatmap", "channels", "usage")
#: What the public view shows: no bot-usage tab, no dump.
PUBLIC_PANELS = ("tiles", "series", "heatmap", "channels")
_CSV_COLUMNS = ("start", "messages", "active_users", "new_members", "voice_hours",
                "member_total")  # fmt: skip


def period_of(query: Mapping[str, str], calendar: GuildCalendar = UTC_CALENDAR) -> Period:
    """The period a page's query string names (``period``, ``month``, ``start``, ``end``),
    in local days on ``calendar`` (the guild's clock)."""
    return dashboard_period(
        query.get("period", "30d"),
        month=query.get("month"),
        start=query.get("start"),
        end=query.get("end"),
        calendar=calendar,
    )


def channel_of(query: Mapping[str, str], channels: Mapping[int, str]) -> int | None:
    text = query.get("channel", "")
    if not text or text == "all":
        return None
    if not text.isdigit() or len(text) > 20 or int(text) not in channels:
        raise DashboardError("no such channel in this server's statistics")
    return int(text)


class DashboardData:
    """Panels of one database (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.settings = SettingsStore(store)
        self._running = asyncio.Semaphore(MAX_RUNNING)
        self._public: dict[tuple[Any, ...], tuple[float, dict[str, Any]]] = {}

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        return await asyncio.to_thread(self.settings.read, guild_id)

    async def public_guild(self, guild_id: int) -> GuildSettings | None:
        """The guild's settings when its public view is on, else None."""
        settings = await self.guild_settings(guild_id)
        return settings if settings.public_view else None

    async def known_guilds(self) -> list[int]:
        from guildmeter.store.catalog import guilds_with_statistics

        return await asyncio.to_thread(guilds_with_statistics, self.store, 200)

    async def channels(self, guild_id: int) -> dict[int, str]:
        return await asyncio.to_thread(dashboard.guild_channels, self.store, guild_id)

    async def panel(
        self, guild_id: int, name: str, query: Mapping[str, str], *, min_cell: int | None = None
    ) -> dict[str, Any]:
        """One panel's JSON; ``min_cell``: the public view's threshold (answers cached)."""
        key = (guild_id, name, tuple(sorted(query.items())), min_cell)
        if min_cell is not None:
            cached = self._public.get(key)
            if cached is not None and time.monotonic() - cached[0] < PUBLIC_CACHE_S:
                return cached[1]
        async with self._running:
            answer = await asyncio.to_thread(self._panel, guild_id, name, query, min_cell)
        if min_cell is not None:
            if len(self._public) > 1000:
                self._public.clear()
            self._public[key] = (time.monotonic(), answer)
        return answer

    def _panel(
        self, guild_id: int, name: str, query: Mapping[str, str], min_cell: int | None
    ) -> dict[str, Any]:
        store = self.store
        period = period_of(query, store.calendars.get(guild_id))
        head: dict[str, Any] = {
            "period": period.name, "label": period.label, "granularity": period.granularity,
            "start": period.range.start.isoformat(), "end": period.range.end.isoformat(),
            "users_per_month": period.users_per_month,
            "unavailable_note": dashboard.UNAVAILABLE,
            "min_cell_users": min_cell,
        }  # fmt: skip
        if name == "usage":
            from guildmeter.reports.usage import usage_summary

            # The period's own days: a past month is that month, not as many days to today.
            until = min(utcnow(), period.range.end - timedelta(microseconds=1))
            usage = usage_summary(store, guild_id, min(period.days, 3660), now=until)
            return {**head, "usage": usage.to_json(), "usage_label": _usage_label(period, usage)}
        if name == "channels":
            rows = dashboard.channel_table(store, guild_id, period, min_cell_users=min_cell)
            return {**head, "channels": [row.to_json() for row in rows]}
        channel = channel_of(query, dashboard.guild_channels(store, guild_id))
        head["channel"] = None if channel is None else str(channel)
        if name == "tiles":
            tiles = dashboard.tiles(store, guild_id, period, channel, min_cell_users=min_cell)
            if min_cell is None:  # moderators: the page warns beside the dump's link
                head["unanonymised_months"] = self._unanonymised(guild_id, period)
            return {**head, "tiles": [tile.to_json() for tile in tiles]}
        if name == "series":
            points = dashboard.series(store, guild_id, period, channel, min_cell_users=min_cell)
            return {**head, "points": [point.to_json() for point in points]}
        if name == "heatmap":
            grid = dashboard.heatmap(store, guild_id, period, channel, min_cell_users=min_cell)
            return {**head, "heatmap": grid}
        raise DashboardError(f"no panel {name[:30]!r}")

    async def view_csv(
        self, guild_id: int, query: Mapping[str, str], *, min_cell: int | None = None
    ) -> str:
        """The chart's points of the current view as CSV (hidden cells empty)."""
        data = await self.panel(guild_id, "series", query, min_cell=min_cell)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(_CSV_COLUMNS)
        for point in data["points"]:
            writer.writerow(["" if point[key] is None else point[key] for key in _CSV_COLUMNS])
        return out.getvalue()

    def range_of(self, guild_id: int, query: Mapping[str, str]) -> DateRange:
        """The days a query names, on the guild's clock (downloads are named after them)."""
        return period_of(query, self.store.calendars.get(guild_id)).range

    async def dump(self, guild_id: int, query: Mapping[str, str]) -> Dump:
        """The raw dump (`.userstats`) of the period, gzip CSV: moderators only."""
        period = period_of(query, self.store.calendars.get(guild_id))
        async with self._running:
            return await asyncio.to_thread(self._dump, guild_id, period)

    def _dump(self, guild_id: int, period: Period) -> Dump:
        from guildmeter.export.csv_gz import write_dump

        target = io.BytesIO()
        result = write_dump(self.store, guild_id, period.range, target)
        return Dump(target.getvalue(), period.range, tuple(result.unanonymised_months))

    def _unanonymised(self, guild_id: int, period: Period) -> list[str]:
        """The period's months still holding live pseudonyms, as ``YYYY-MM``."""
        return month_labels(self.store.unanonymised_months(guild_id, period.range.months))


def _usage_label(period: Period, usage: UsageSummary) -> str:
    """The bot-usage tab's caption: the period in words, its days and their clock."""
    return (
        f"Bot usage, {period.in_words}: {usage.start:%Y-%m-%d} to {usage.end:%Y-%m-%d} "
        f"({usage.zone}), as /stats counts it — aggregates only, every channel."
    )


def month_labels(months: Iterable[int]) -> list[str]:
    """``YYYYMM`` months as people read them: ``YYYY-MM``."""
    return [f"{m // 100}-{m % 100:02d}" for m in months]


@dataclass(frozen=True)
class Dump:
    """A raw dump, the days it covers and its months not yet anonymised (``YYYYMM``)."""

    body: bytes
    range: DateRange
    unanonymised_months: tuple[int, ...]
