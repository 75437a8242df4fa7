"""Bot-usage analytics in Discord: every command tracked, ``/stats`` and ``/reset_stats``.

Every command of the host bot is tracked with no decorator: prefix and hybrid commands
through discord.py's command events, slash and context-menu commands through the
interaction events and the command tree's error handler (wrapped while the cog is loaded,
the host's own handler still called). Tracking appends to memory; the flush writes.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable, Coroutine
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from guildmeter import jobs
from guildmeter.activity import ActivityStats
from guildmeter.ext.checks import NotAllowed, can_reset_usage, viewer_of
from guildmeter.ext.commands import reply_with_error, root_error
from guildmeter.ext.replies import clip, send
from guildmeter.ext.runtime import Runtime, cog_cooldown
from guildmeter.reports.usage import UsageSummary
from guildmeter.store.usage import UsageStore
from guildmeter.usage.api import activate, active_tracker

__all__ = ["UsageCog", "stats_embed"]

Context = commands.Context[commands.Bot]
#: Every reply mentions nobody, whatever the host bot's default.
_QUIET = discord.AllowedMentions.none()
_STARTED = "_guildmeter_started"
_TABLE_LABELS = {
    "usage_commands": "command uses",
    "usage_generations": "generation jobs",
    "usage_activity": "user actions",
    "usage_daily_commands": "daily command summaries",
    "usage_daily_latency": "latency histogram rows",
    "usage_daily_generations": "daily generation summaries",
    "usage_daily_users": "daily user rows",
    "usage_latency_rollups": "latency roll-up rows",
    "usage_monthly_users": "monthly user rows",
}
ErrorHandler = Callable[
    [discord.Interaction[Any], app_commands.AppCommandError], Coroutine[Any, Any, None]
]


class UsageCog(commands.Cog, name="Bot usage"):
    """Tracks commands; shows and resets the usage statistics."""

    def __init__(
        self,
        bot: commands.Bot,
        stats: ActivityStats,
        runtime: Runtime,
        *,
        cooldown_uses: int = 2,
        cooldown_seconds: float = 30.0,
    ) -> None:
        self.bot = bot
        self.stats = stats
        self.runtime = runtime
        self.cooldown_uses = cooldown_uses
        self.cooldown_seconds = cooldown_seconds
        self._started: dict[int, float] = {}  # interaction id -> perf_counter at arrival
        self._host_on_error: ErrorHandler | None = None

    async def cog_load(self) -> None:
        activate(self.stats.usage)
        tree = self.bot.tree
        self._host_on_error = tree.on_error
        tree.on_error = self._tree_error  # type: ignore[method-assign]

    async def cog_unload(self) -> None:
        if active_tracker() is self.stats.usage:
            activate(None)
        # Put the host's handler back only if ours is still installed: a handler the host set
        # after loading us is theirs to keep (slash failures then go untracked; see README).
        tree = self.bot.tree
        if self._host_on_error is not None and tree.on_error == self._tree_error:
            tree.on_error = self._host_on_error  # type: ignore[method-assign]

    # -- tracking: prefix and hybrid commands ---------------------------------------------------

    @commands.Cog.listener()
    async def on_command(self, ctx: Context) -> None:
        setattr(ctx, _STARTED, time.perf_counter())

    @commands.Cog.listener()
    async def on_command_completion(self, ctx: Context) -> None:
        self._track_context(ctx, None)

    @commands.Cog.listener()
    async def on_command_error(self, ctx: Context, error: commands.CommandError) -> None:
        if ctx.command is not None:  # an unknown command is not a command use
            self._track_context(ctx, type(root_error(error)).__name__)

    def _track_context(self, ctx: Context, error: str | None) -> None:
        assert ctx.command is not None
        if getattr(ctx.cog, "track_usage", True) is False:
            return  # members' rights: asking to be forgotten must leave no record
        started = getattr(ctx, _STARTED, None)
        if ctx.interaction is not None:
            arrived = self._started.pop(ctx.interaction.id, None)
            started = arrived if arrived is not None else started
        duration = 0.0 if started is None else (time.perf_counter() - started) * 1000
        self.stats.usage.command(
            ctx.command.qualified_name,
            guild_id=ctx.guild.id if ctx.guild else None,
            channel_id=ctx.channel.id,
            user_id=ctx.author.id,
            kind="prefix" if ctx.interaction is None else "slash",
            duration_ms=duration,
            ok=error is None,
            error=error,
        )

    # -- tracking: application commands ---------------------------------------------------------

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.type is discord.InteractionType.application_command:
            self._started[interaction.id] = time.perf_counter()
            if len(self._started) > 10_000:  # interactions that never finished
                for stale in list(self._started)[:5_000]:
                    del self._started[stale]

    @commands.Cog.listener()
    async def on_app_command_completion(
        self,
        interaction: discord.Interaction[Any],
        command: app_commands.Command[Any, ..., Any] | app_commands.ContextMenu,
    ) -> None:
        if hasattr(command, "wrapped"):  # a hybrid command: tracked through its Context
            return
        self._track_interaction(interaction, command, None)

    async def _tree_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        command = interaction.command
        if command is not None and not hasattr(command, "wrapped"):
            self._track_interaction(interaction, command, type(root_error(error)).__name__)
        if self._host_on_error is not None:
            await self._host_on_error(interaction, error)

    def _track_interaction(
        self,
        interaction: discord.Interaction[Any],
        command: app_commands.Command[Any, ..., Any] | app_commands.ContextMenu,
        error: str | None,
    ) -> None:
        started = self._started.pop(interaction.id, None)
        duration = 0.0 if started is None else (time.perf_counter() - started) * 1000
        self.stats.usage.command(
            command.qualified_name,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=interaction.user.id,
            kind="context_menu" if isinstance(command, app_commands.ContextMenu) else "slash",
            duration_ms=duration,
            ok=error is None,
            error=error,
        )

    # -- /stats and /reset_stats ----------------------------------------------------------------

    @commands.dynamic_cooldown(cog_cooldown, commands.BucketType.user)
    @commands.hybrid_command(name="stats")  # type: ignore[arg-type]
    async def stats_command(self, ctx: Context, days: commands.Range[int, 1, 365] = 7) -> None:
        """Bot usage: generations, commands, users, latency and failures (aggregates only).

        Parameters
        ----------
        days:
            How many days to cover, today included (1 to 365; default 7).
        """
        guild_id = ctx.guild.id if ctx.guild else 0
        # In direct messages each member is a scope of their own (memory only), so that
        # one member's /stats does not make every other DM user wait.
        scope = guild_id if ctx.guild else -ctx.author.id
        async with self.runtime.usage_jobs.slot(scope, ctx.author.id):
            if ctx.interaction is not None:
                await ctx.defer(ephemeral=True)
            summary, chart = await self.runtime.in_heavy_worker(
                jobs.usage, guild_id, days, self.stats.clock()
            )
        where = ctx.guild.name if ctx.guild else "direct messages"
        await send(
            ctx,
            embed=stats_embed(summary, where=where),
            file=discord.File(io.BytesIO(chart), filename="usage.png"),
            ephemeral=True,
            allowed_mentions=_QUIET,
        )

    @commands.hybrid_command(name="reset_stats")  # type: ignore[arg-type]
    @commands.guild_only()
    async def reset_stats(
        self, ctx: Context, confirm: bool = False, everything: bool = False
    ) -> None:
        """Delete this server's bot-usage statistics (administrators and Bot Managers).

        Parameters
        ----------
        confirm:
            True to delete; without it you are told what would be deleted.
        everything:
            The bot owner only: every server's usage statistics, not just this one's.
        """
        assert ctx.guild is not None
        settings = await self.runtime.guild_settings(ctx.guild.id)
        if not can_reset_usage(viewer_of(ctx.author), settings):
            raise NotAllowed(
                "Only administrators and members with the Bot Manager role can reset the "
                "usage statistics."
            )
        if everything and not await self.bot.is_owner(ctx.author):
            raise NotAllowed("Only the bot's owner can reset every server's statistics.")
        scope = None if everything else ctx.guild.id
        where = "every server" if everything else "this server"
        usage = UsageStore(self.stats.store)
        if not confirm:
            counts = await asyncio.to_thread(usage.row_counts, scope)
            slash = "/reset_stats confirm:True" + (" everything:True" if everything else "")
            prefix = f"{ctx.clean_prefix}reset_stats yes" + (" yes" if everything else "")
            await send(
                ctx,
                f"This would delete, for {where}: {_describe_rows(counts)}. Nothing has been "
                f"deleted yet: run `{slash}` (or `{prefix}`) to go ahead.",
                ephemeral=True,
                allowed_mentions=_QUIET,
            )
            return
        # Records still in memory belong to the statistics being reset: write them first.
        cog = self.bot.get_cog("Statistics")
        if cog is not None:
            await cog.flush()  # type: ignore[attr-defined]
        deleted = await asyncio.to_thread(usage.reset, scope)
        await send(
            ctx,
            f"Usage statistics reset for {where}. Deleted {_describe_rows(deleted)}. "
            "Server activity statistics (userstats) are untouched.",
            ephemeral=True,
            allowed_mentions=_QUIET,
        )

    async def cog_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:
        await reply_with_error(ctx, error)


def _describe_rows(counts: dict[str, int]) -> str:
    parts = [f"{n:,} {_TABLE_LABELS.get(t, t)}" for t, n in counts.items() if n]
    return ", ".join(parts) if parts else "nothing (there were no usage statistics)"


def stats_embed(summary: UsageSummary, *, where: str | None = None) -> discord.Embed:
    """The seed's four sections, plus latency percentiles and failure rates per command."""
    place = f" in {where}" if where else ""
    embed = discord.Embed(
        title=clip(
            f"Bot usage{place}, last {summary.days} day{'s' if summary.days != 1 else ''}", 256
        ),
        description=f"{summary.start} to {summary.end} ({summary.zone})",
        colour=discord.Colour(0x3B82F6),
    )
    embed.add_field(
        name="Image Generation",
        value=(
            f"Total images: {summary.images:,}\n"
            f"Average generation time: {summary.image_seconds_mean:.1f} s\n"
            f"Total videos: {summary.videos:,}\n"
            f"Average video time: {summary.video_seconds_mean:.1f} s"
        ),
        inline=True,
    )
    popular = "\n".join(f"`{c.command}`: {c.uses:,}" for c in summary.commands[:5]) or "none"
    embed.add_field(
        name="Command Usage",
        value=(
            f"Total commands: {summary.commands_total:,} ({summary.commands_failed:,} failed)\n"
            f"Popular commands:\n{popular}"
        )[:1024],
        inline=True,
    )
    label = summary.users_label
    note = "\n(members get a new pseudonym each month)" if label == "user-months" else ""
    embed.add_field(
        name="User Activity",
        value=(
            f"Total {label}: {summary.total_users:,}\n"
            f"Active {label} (2+ days): {summary.active_users:,}{note}"
        ),
        inline=True,
    )
    resolutions = "\n".join(f"{r}: {n:,}" for r, n in summary.resolutions) or "none"
    embed.add_field(name="Popular Resolutions", value=resolutions[:1024], inline=True)
    lines = [
        f"`{c.command}` median {c.median_ms:,.0f} ms · p95 {c.p95_ms:,.0f} ms · "
        f"{100 * c.failure_rate:.1f} % failed"
        for c in summary.commands[:10]
    ]
    embed.add_field(
        name="Latency and failures", value="\n".join(lines)[:1024] or "none", inline=False
    )
    embed.set_footer(text="Aggregates only: no figure about any one member.")
    return embed
