"""The moderators' commands: ``userstats`` (dump and reports) and ``statsconfig``.

Hybrid commands: the prefix form answers only in the guild's moderator channels, the slash
form answers only to the member who asked (ephemeral). Work that reads the database runs in
a worker thread; a slash command is deferred first, a prefix command says "One moment…".
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Callable
from typing import Any, Literal

import discord
from discord.ext import commands

from guildmeter.activity import ActivityStats
from guildmeter.charts import render_activity_png
from guildmeter.errors import GuildmeterError, StoreUnavailableError
from guildmeter.export.csv_gz import write_dump, write_report_csv
from guildmeter.ext.checks import NotAllowed, can_configure, is_moderator, viewer_of
from guildmeter.ext.embeds import report_embed
from guildmeter.reports import DateRange, Report, compute_report, parse_daterange
from guildmeter.reports.series import activity_series
from guildmeter.store.settings import (
    AGGREGATES_ONLY,
    KEEP_MEMBER_ROWS,
    GuildSettings,
    SettingsStore,
)

Context = commands.Context[commands.Bot]
# mypy cannot solve discord.py's ParamSpec-over-Union callback type for methods, hence the
# ``type: ignore[arg-type]`` on the command decorators below.

__all__ = [
    "UPLOAD_LIMIT_BYTES",
    "UserStatsCommands",
    "error_message",
    "reply_with_error",
    "root_error",
]

log = logging.getLogger(__name__)
#: Every reply mentions nobody, whatever the host bot's default.
_QUIET = discord.AllowedMentions.none()

#: Discord's upload limit for a bot in a server without boosts.
UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024
_CHANNEL_MENTION = re.compile(r"^<#(\d+)>$")


def _cooldown(ctx: Context) -> commands.Cooldown | None:
    cog = ctx.cog
    if isinstance(cog, UserStatsCommands):
        return commands.Cooldown(cog.cooldown_uses, cog.cooldown_seconds)
    return None


class UserStatsCommands(commands.Cog, name="User statistics"):
    """Server activity statistics, for moderators."""

    def __init__(
        self,
        bot: commands.Bot,
        stats: ActivityStats,
        settings: SettingsStore,
        *,
        cooldown_uses: int = 3,
        cooldown_seconds: float = 60.0,
    ) -> None:
        self.bot = bot
        self.stats = stats
        self.settings = settings
        self.cooldown_uses = cooldown_uses
        self.cooldown_seconds = cooldown_seconds

    # -- who may ask, and where ---------------------------------------------------------------

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        return await asyncio.to_thread(self.settings.get, guild_id)

    async def _require_moderator(self, ctx: Context) -> None:
        if ctx.guild is None:
            raise commands.NoPrivateMessage()
        settings = await self.guild_settings(ctx.guild.id)
        if not is_moderator(viewer_of(ctx.author), settings):
            raise NotAllowed(
                "Server statistics are for moderators: you need Manage Server, Administrator "
                "or one of this server's moderator roles."
            )
        if ctx.interaction is None and ctx.channel.id not in settings.mod_channels:
            raise NotAllowed(_where_to_ask(ctx, settings))

    async def _one_moment(self, ctx: Context) -> None:
        if ctx.interaction is not None:
            await ctx.defer(ephemeral=True)
        else:
            await ctx.send("One moment… reading the statistics.", allowed_mentions=_QUIET)

    # -- userstats ------------------------------------------------------------------------------

    @commands.guild_only()
    @commands.dynamic_cooldown(_cooldown, commands.BucketType.member)
    @commands.hybrid_group(name="userstats", fallback="dump", invoke_without_command=True)  # type: ignore[arg-type]
    async def userstats(self, ctx: Context, *, daterange: str | None = None) -> None:
        """Upload the raw counts (gzip CSV) for a date or `date1 to date2` (default: last month).

        Parameters
        ----------
        daterange:
            A date or `date1 to date2` (the second date excluded); default: last month.
        """
        await self._require_moderator(ctx)
        assert ctx.guild is not None
        span = parse_daterange(daterange, now=self.stats.clock())
        await self._one_moment(ctx)
        data, warning, rows = await asyncio.to_thread(self._dump, ctx.guild.id, span)
        if len(data) > UPLOAD_LIMIT_BYTES:
            await ctx.send(
                f"The dump for {span.describe()} is {len(data) / 1e6:.1f} MB, more than "
                "Discord accepts. Ask for a shorter range, or use `guildmeter export`.",
                ephemeral=True,
                allowed_mentions=_QUIET,
            )
            return
        text = f"Raw statistics, {span.describe()}: {rows:,} rows."
        if warning:
            text += f"\n⚠️ {warning}"
        name = f"userstats-{span.start:%Y-%m-%d}-to-{span.end:%Y-%m-%d}.csv.gz"
        await ctx.send(
            text,
            file=discord.File(io.BytesIO(data), filename=name),
            ephemeral=True,
            allowed_mentions=_QUIET,
        )

    def _dump(self, guild_id: int, span: DateRange) -> tuple[bytes, str | None, int]:
        buffer = io.BytesIO()
        result = write_dump(self.stats.store, guild_id, span, buffer)
        return buffer.getvalue(), result.warning, result.rows

    @commands.guild_only()
    @commands.dynamic_cooldown(_cooldown, commands.BucketType.member)
    @userstats.command(name="report")  # type: ignore[arg-type]
    async def report(
        self,
        ctx: Context,
        type: Literal["full", "weekday", "hourly"],
        channel: str,
        *,
        daterange: str | None = None,
    ) -> None:
        """Show a full report, or upload a weekday or hourly one (gzip CSV and chart).

        Parameters
        ----------
        type:
            full: the whole period; weekday: per day of the week; hourly: per hour (UTC).
        channel:
            A channel's name, or `all`.
        daterange:
            A date or `date1 to date2` within one month; default: last month.
        """
        await self._require_moderator(ctx)
        assert ctx.guild is not None
        span = parse_daterange(daterange, now=self.stats.clock())
        channel_name = _channel_name(ctx.guild, channel)
        await self._one_moment(ctx)
        if type == "full":
            report = await asyncio.to_thread(
                compute_report, self.stats.store, ctx.guild.id, "full", span, channel_name
            )
            await ctx.send(embed=report_embed(report), ephemeral=True, allowed_mentions=_QUIET)
            return
        report, chart = await asyncio.to_thread(
            self._table_report, ctx.guild.id, type, span, channel_name
        )
        stem = f"{type}-{report.channel}-{span.start:%Y-%m-%d}-to-{span.end:%Y-%m-%d}"
        await ctx.send(
            f"{type.capitalize()} report, {_channel_label(report)}, {span.describe()}.",
            files=[
                discord.File(io.BytesIO(report_bytes(report)), filename=f"{stem}.csv.gz"),
                discord.File(io.BytesIO(chart), filename=f"{stem}.png"),
            ],
            ephemeral=True,
            allowed_mentions=_QUIET,
        )

    def _table_report(
        self, guild_id: int, kind: Literal["weekday", "hourly"], span: DateRange, channel: str
    ) -> tuple[Report, bytes]:
        report = compute_report(self.stats.store, guild_id, kind, span, channel)
        chart = render_activity_png(activity_series(self.stats.store, guild_id, span, channel))
        return report, chart

    # -- statsconfig ----------------------------------------------------------------------------

    @commands.guild_only()
    @commands.hybrid_group(name="statsconfig", fallback="show", invoke_without_command=True)  # type: ignore[arg-type]
    async def statsconfig(self, ctx: Context) -> None:
        """Show who may see statistics, and where."""
        settings = await self._require_configurer(ctx)
        await ctx.send(_describe(settings), ephemeral=True, allowed_mentions=_QUIET)

    @commands.guild_only()
    @statsconfig.command(name="modchannel")  # type: ignore[arg-type]
    async def modchannel(self, ctx: Context, channel: discord.TextChannel) -> None:
        """Add a moderator channel, where prefix commands answer (again to remove it).

        Parameters
        ----------
        channel:
            A channel only moderators can read.
        """
        await self._toggle(ctx, "mod_channel", channel.id, channel.mention)

    @commands.guild_only()
    @statsconfig.command(name="modrole")  # type: ignore[arg-type]
    async def modrole(self, ctx: Context, role: discord.Role) -> None:
        """Let a role see server statistics (again to remove it).

        Parameters
        ----------
        role:
            The moderators' role.
        """
        await self._toggle(ctx, "mod_role", role.id, f"@{role.name}")

    @commands.guild_only()
    @statsconfig.command(name="managerrole")  # type: ignore[arg-type]
    async def managerrole(self, ctx: Context, role: discord.Role) -> None:
        """Let a role reset the bot-usage statistics (again to remove it).

        Parameters
        ----------
        role:
            The Bot Manager role.
        """
        await self._toggle(ctx, "manager_role", role.id, f"@{role.name}")

    @commands.guild_only()
    @statsconfig.command(name="reportchannel")  # type: ignore[arg-type]
    async def reportchannel(self, ctx: Context, channel: discord.TextChannel | None = None) -> None:
        """Post each month's full report in this channel (none: stop posting).

        Parameters
        ----------
        channel:
            A channel only moderators can read; leave out to stop the monthly post.
        """
        settings = await self._require_configurer(ctx)
        assert ctx.guild is not None
        value = None if channel is None else channel.id
        await asyncio.to_thread(self.settings.set_single, ctx.guild.id, "report_channel", value)
        if channel is None:
            text = "The monthly report will no longer be posted."
        else:
            text = f"Each month's full report will be posted in {channel.mention}."
            if channel.id not in settings.mod_channels:
                text += " Make sure only moderators can read it."
        await ctx.send(text, ephemeral=True, allowed_mentions=_QUIET)

    # Members' rights (issue 11): small cells and what anonymised months keep.

    @commands.guild_only()
    @statsconfig.command(name="mincell")  # type: ignore[arg-type]
    async def mincell(self, ctx: Context, users: commands.Range[int, 1, 1000]) -> None:
        """Hide report rows with fewer users than this where non-moderators can read them.

        Parameters
        ----------
        users:
            The smallest number of members a public row may show (default 5).
        """
        await self._require_configurer(ctx)
        assert ctx.guild is not None
        await asyncio.to_thread(self.settings.set_single, ctx.guild.id, "min_cell_users", users)
        await ctx.send(
            f"Outputs other members can read now show rows with fewer than {users} members "
            f"as “fewer than {users}”.",
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @commands.guild_only()
    @statsconfig.command(name="anonymised")  # type: ignore[arg-type]
    async def anonymised(self, ctx: Context, keep: Literal["member_rows", "aggregates"]) -> None:
        """What anonymised months keep: a row per member's token, or aggregate counts only.

        Parameters
        ----------
        keep:
            member_rows: per-member reports of past months stay possible; aggregates: the
            strongest privacy, per-member figures of past months are lost.
        """
        await self._require_configurer(ctx)
        assert ctx.guild is not None
        value = AGGREGATES_ONLY if keep == "aggregates" else KEEP_MEMBER_ROWS
        await asyncio.to_thread(self.settings.set_single, ctx.guild.id, "anonymised_rows", value)
        await ctx.send(
            _describe_anonymised(keep == "aggregates"),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    async def _require_configurer(self, ctx: Context) -> GuildSettings:
        if ctx.guild is None:
            raise commands.NoPrivateMessage()
        if not can_configure(viewer_of(ctx.author)):
            raise NotAllowed(
                "Only members with Manage Server or Administrator change these settings."
            )
        return await self.guild_settings(ctx.guild.id)

    async def _toggle(
        self,
        ctx: Context,
        setting: Literal["mod_channel", "mod_role", "manager_role"],
        value: int,
        label: str,
    ) -> None:
        await self._require_configurer(ctx)
        assert ctx.guild is not None
        added = await asyncio.to_thread(self.settings.toggle, ctx.guild.id, setting, value)
        what = {"mod_channel": "moderator channel", "mod_role": "moderator role",
                "manager_role": "Bot Manager role"}[setting]  # fmt: skip
        verb = "is now" if added else "is no longer"
        await ctx.send(f"{label} {verb} a {what}.", ephemeral=True, allowed_mentions=_QUIET)

    # -- errors ---------------------------------------------------------------------------------

    async def cog_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:
        await reply_with_error(ctx, error)


async def reply_with_error(ctx: commands.Context[Any], error: Exception) -> None:
    """Answer a failed command with `error_message`, privately where Discord allows."""
    try:
        await ctx.send(
            error_message(ctx, error)[:2000],  # it may echo the member's input
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )
    except discord.HTTPException as exc:  # pragma: no cover - logged
        log.warning("could not send an error reply: %s", exc)


def root_error(error: BaseException) -> BaseException:
    """The exception a command raised, out of discord.py's invoke/hybrid wrappers."""
    while isinstance(
        error,
        commands.CommandInvokeError
        | commands.HybridCommandError
        | discord.app_commands.CommandInvokeError,
    ):
        error = error.original
    return error


def error_message(ctx: Context, error: BaseException) -> str:
    """A reply for the member, never a traceback; unexpected errors are logged."""
    error = root_error(error)
    if isinstance(error, NotAllowed):
        return str(error)
    if isinstance(error, commands.CommandOnCooldown):
        return f"This command is cooling down: try again in {error.retry_after:.0f} s."
    if isinstance(error, commands.NoPrivateMessage):
        return "This command works in a server, not in direct messages."
    if isinstance(error, StoreUnavailableError):
        return "The statistics database is unavailable right now; please try again later."
    if isinstance(error, GuildmeterError):
        return str(error)
    if isinstance(error, commands.BadLiteralArgument):
        return (
            f"Unknown {error.param.name} {error.argument!r}: choose "
            + ", ".join(str(v) for v in error.literals)
            + "."
        )
    if isinstance(error, commands.UserInputError):
        usage = (
            f"{ctx.clean_prefix}{ctx.command.qualified_name} {ctx.command.signature}"
            if ctx.command
            else ""
        )
        return f"{error} Usage: `{usage.strip()}`."
    if isinstance(error, commands.CheckFailure):
        return "You cannot use this command here."
    log.error("command %s failed", ctx.command, exc_info=error)
    return "Something went wrong while making these statistics; it has been logged."


def report_bytes(report: Report) -> bytes:
    buffer = io.BytesIO()
    write_report_csv(report, buffer)
    return buffer.getvalue()


def _channel_name(guild: discord.Guild, text: str) -> str:
    """A channel argument as the name the reports know: ``<#id>`` mentions become names."""
    match = _CHANNEL_MENTION.match(text.strip())
    if match:
        channel = guild.get_channel(int(match.group(1)))
        if channel is not None:
            return channel.name
    return text.strip()


def _channel_label(report: Report) -> str:
    return "all channels" if report.channel == "all" else f"#{report.channel}"


def _where_to_ask(ctx: Context, settings: GuildSettings) -> str:
    if settings.mod_channels:
        places = ", ".join(f"<#{c}>" for c in sorted(settings.mod_channels))
        return (
            f"Statistics are only shown in moderator channels: ask in {places}, or use the "
            "slash command (only you will see the answer)."
        )
    return (
        "Statistics are only shown in moderator channels, and none is set yet: a member with "
        f"Manage Server can add one with `{ctx.clean_prefix}statsconfig modchannel #channel`. "
        "Or use the slash command: only you will see the answer."
    )


def _describe(settings: GuildSettings) -> str:
    def listed(ids: frozenset[int], mention: Callable[[int], str]) -> str:
        return ", ".join(mention(i) for i in sorted(ids)) or "none"

    def channel(i: int) -> str:
        return f"<#{i}>"

    def role(i: int) -> str:
        return f"<@&{i}>"

    return "\n".join(
        [
            f"Moderator channels: {listed(settings.mod_channels, channel)}",
            "Moderator roles (besides Manage Server and Administrator): "
            + listed(settings.mod_roles, role),
            f"Bot Manager roles: {listed(settings.manager_roles, role)}",
            "Monthly report channel: "
            + (channel(settings.report_channel) if settings.report_channel else "none"),
            f"Smallest public cell: {settings.min_cell_users} members",
            _describe_anonymised(settings.aggregates_only),
        ]
    )


def _describe_anonymised(aggregates_only: bool) -> str:
    if aggregates_only:
        return (
            "Anonymised months keep: aggregate counts only (per-member figures of past "
            "months are dropped at month end)"
        )
    return "Anonymised months keep: a row per member's random token (per-member reports stay)"
