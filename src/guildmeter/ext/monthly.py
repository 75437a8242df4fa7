"""The monthly job: snapshots, retention, and each guild's post of its month's report.

Anonymisation itself happens in the flush (see `guildmeter.activity`). Every check, this
job first builds the report snapshots of anonymised months that lack them (and the
stored distinct users of closed months, `guildmeter.store.spans`) and then deletes the
member rows of months past retention (`guildmeter.store.retention`) — both in the
heavy-work pool, after a cheap check on small tables says there is work — and then
posts a guild's report once its month is anonymised, exactly once across restarts and
processes (a claim in ``monthly_posts`` is taken before posting and released if posting
fails).
"""

from __future__ import annotations

import asyncio
import logging

import discord
from discord.ext import commands, tasks

from guildmeter import jobs
from guildmeter.activity import ActivityStats
from guildmeter.ext.embeds import AGGREGATES_NOTICE, ANONYMISED_NOTICE, report_embed
from guildmeter.ext.replies import NO_MENTIONS
from guildmeter.ext.runtime import Runtime
from guildmeter.reports import DateRange
from guildmeter.reports.suppress import suppress_report
from guildmeter.store.retention import retention_due
from guildmeter.store.settings import GuildSettings, MonthlyPosts
from guildmeter.store.snapshots import missing_snapshots
from guildmeter.store.spans import build_missing

__all__ = ["MonthlyReports", "readable_by_members"]

log = logging.getLogger(__name__)

#: Guild-months whose snapshots one check builds at most (the rest follow next check).
_SNAPSHOTS_PER_CHECK = 20


class MonthlyReports(commands.Cog, name="Monthly reports"):
    """Checks every ten minutes (and when connected) for a report to post."""

    def __init__(
        self,
        bot: commands.Bot,
        stats: ActivityStats,
        runtime: Runtime,
        *,
        retention_months: int = 0,
    ) -> None:
        self.bot = bot
        self.retention_months = retention_months
        self.stats = stats
        self.runtime = runtime
        self.settings = runtime.settings
        self.posts = MonthlyPosts(stats.store)
        self._lock = asyncio.Lock()

    async def cog_load(self) -> None:
        self.check_loop.start()

    async def cog_unload(self) -> None:
        self.check_loop.cancel()

    @tasks.loop(minutes=10)
    async def check_loop(self) -> None:
        await self.bot.wait_until_ready()
        try:
            await self.maintain_months()
        except Exception:  # the database may be down: try again next time
            log.exception("month snapshots or retention failed")
        try:
            await self.post_due_reports()
        except Exception:  # the database may be down: try again next time
            log.exception("monthly report check failed")

    async def maintain_months(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Build missing snapshots, then apply retention; returns the months of each done.

        The checks read two small tables (in a thread); the work itself reads or rewrites
        whole months and runs in the heavy-work pool, never in the flush or on the loop.
        """
        store = self.stats.store
        async with self._lock:
            missing = await asyncio.to_thread(missing_snapshots, store, _SNAPSHOTS_PER_CHECK)
            built: list[tuple[int, int]] = []
            if missing:
                built = await self.runtime.in_heavy_worker(jobs.build_snapshots, missing)
            now = self.stats.clock()
            # Closed months' distinct users per week, prefix, suffix (the dashboard's).
            await asyncio.to_thread(build_missing, store, now, _SNAPSHOTS_PER_CHECK)
            due = await asyncio.to_thread(retention_due, store, now, self.retention_months)
            retired: list[tuple[int, int]] = []
            if due:
                retired = await self.runtime.in_heavy_worker(jobs.retention, due)
                log.info("retention deleted the member rows of %d month(s)", len(retired))
            return built, retired

    async def post_due_reports(self) -> list[int]:
        """Post last month's report where due; returns the guild ids posted to."""
        async with self._lock:
            now = self.stats.clock()
            posted = []
            guilds = list(self.bot.guilds)
            settings = await asyncio.to_thread(self.settings.read_many, [g.id for g in guilds])
            for guild in guilds:
                # The guild's own last month: it ends at its local midnight of the 1st.
                calendar = self.stats.collector.calendar(guild.id)
                span = DateRange.last_full_month(now, calendar)
                month = calendar.month_of(span.start)
                if await self._post(guild, settings[guild.id], span, month):
                    posted.append(guild.id)
            return posted

    async def _post(
        self, guild: discord.Guild, settings: GuildSettings, span: DateRange, month: int
    ) -> bool:
        channel = guild.get_channel(settings.report_channel or 0)
        if not isinstance(channel, discord.TextChannel):
            return False
        store = self.stats.store
        if await asyncio.to_thread(store.anonymised_at, guild.id, month) is None:
            return False  # not anonymised yet (or the guild had no activity that month)
        if not await asyncio.to_thread(self.posts.claim, guild.id, month, channel.id):
            return False  # posted already, or another process is posting it
        try:
            report = await self.runtime.in_heavy_worker(jobs.full_report, guild.id, span, None)
            title = f"{span.first_day:%B %Y}: full report, all channels"
            notice = AGGREGATES_NOTICE if settings.aggregates_only else ANONYMISED_NOTICE
            # Members other than moderators can read it: small cells are suppressed.
            public = (
                suppress_report(report, settings.min_cell_users)
                if readable_by_members(channel, settings)
                else None
            )
            await channel.send(
                embed=report_embed(report, title=title, notice=notice, public=public),
                allowed_mentions=NO_MENTIONS,
            )
        except Exception:
            await asyncio.to_thread(self.posts.release, guild.id, month)
            raise
        await asyncio.to_thread(self.posts.posted, guild.id, month)
        log.info("posted the full report of month %d", month)
        return True


def readable_by_members(channel: discord.TextChannel, settings: GuildSettings) -> bool:
    """True if @everyone, or any role that is not a moderator's, can read ``channel``."""
    for role in channel.guild.roles:
        permissions = role.permissions
        moderator = (
            permissions.administrator or permissions.manage_guild or role.id in settings.mod_roles
        )
        if not moderator and channel.permissions_for(role).read_messages:
            return True
    return False
