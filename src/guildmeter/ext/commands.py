"""The moderators' commands: ``userstats`` (dump and reports) and ``statsconfig``.

Hybrid commands: the prefix form answers only in the guild's moderator channels, the slash
form answers only to the member who asked (ephemeral). Who may ask is checked before
anything else — before arguments are converted (no probing of hidden channel or role names)
and before the cooldown (a refused member uses up nobody's bucket). Work that reads the
database runs in the heavy-work threads (never the flush's), a limited number of jobs at a
time per member, per guild and in all; a slash command is deferred first, a prefix command
says "One moment…". Every reply goes through `guildmeter.ext.replies`: clipped, no pings.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal, TypeVar, cast

import discord
from discord.ext import commands

from guildmeter import jobs
from guildmeter.activity import ActivityStats
from guildmeter.errors import GuildmeterError, StoreUnavailableError
from guildmeter.ext.checks import (
    NotAllowed,
    can_configure,
    everyone_can_read,
    is_moderator,
    viewer_of,
)
from guildmeter.ext.embeds import report_embed
from guildmeter.ext.replies import clip, echo, literal, send
from guildmeter.ext.runtime import Runtime, cog_cooldown
from guildmeter.intents import collection_of
from guildmeter.reports import DateRange, Report, parse_daterange
from guildmeter.reports.compute import check_report_range, resolve_channel
from guildmeter.store.catalog import data_span, has_statistics
from guildmeter.store.retention import describe_retention
from guildmeter.store.settings import AGGREGATES_ONLY, KEEP_MEMBER_ROWS, GuildSettings
from guildmeter.zones import GuildCalendar, zone_choices
from guildmeter.zonetext import describe_change, describe_timezone

Context = commands.Context[commands.Bot]
# mypy cannot solve discord.py's ParamSpec-over-Union callback type for methods, hence the
# ``type: ignore[arg-type]`` on the command decorators below.

__all__ = [
    "UPLOAD_LIMIT_BYTES",
    "UserStatsCommands",
    "configurers_only",
    "error_message",
    "moderators_only",
    "reply_with_error",
    "root_error",
]

log = logging.getLogger(__name__)
#: Every reply mentions nobody, whatever the host bot's default.
_QUIET = discord.AllowedMentions.none()

#: Discord's upload limit for a bot in a server without boosts.
UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024
_CHANNEL_MENTION = re.compile(r"^<#(\d+)>$")


_Decorated = TypeVar("_Decorated")


def moderators_only() -> Callable[[_Decorated], _Decorated]:
    """A check (so it runs before argument conversion and the cooldown): moderators only,
    and the prefix form only in the guild's moderator channels."""

    async def predicate(ctx: Context) -> bool:
        cog = ctx.cog
        assert isinstance(cog, UserStatsCommands)
        await cog.require_moderator(ctx)
        return True

    return cast(Callable[[_Decorated], _Decorated], commands.check(predicate))


def configurers_only() -> Callable[[_Decorated], _Decorated]:
    """A check: Manage Server or Administrator (before any argument is converted)."""

    async def predicate(ctx: Context) -> bool:
        if ctx.guild is None:
            raise commands.NoPrivateMessage()
        if not can_configure(viewer_of(ctx.author)):
            raise NotAllowed(
                "Only members with Manage Server or Administrator change these settings."
            )
        return True

    return cast(Callable[[_Decorated], _Decorated], commands.check(predicate))


class UserStatsCommands(commands.Cog, name="User statistics"):
    """Server activity statistics, for moderators."""

    def __init__(
        self,
        bot: commands.Bot,
        stats: ActivityStats,
        runtime: Runtime,
        *,
        cooldown_uses: int = 3,
        cooldown_seconds: float = 60.0,
        max_dump_days: int = 366,
        retention_months: int = 0,
    ) -> None:
        self.bot = bot
        self.stats = stats
        self.runtime = runtime
        self.settings = runtime.settings
        self.cooldown_uses = cooldown_uses
        self.cooldown_seconds = cooldown_seconds
        self.max_dump_days = max_dump_days
        #: The configured ``retention_months`` (a guild's own setting overrides it).
        self.retention_months = retention_months

    # -- who may ask, and where ---------------------------------------------------------------

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        return await self.runtime.guild_settings(guild_id)

    async def require_moderator(self, ctx: Context) -> None:
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

    async def _require_data(self, guild_id: int, span: DateRange) -> None:
        """Say at once when a range holds nothing, and where this server's data lies."""
        store = self.stats.store
        found = await asyncio.to_thread(
            has_statistics, store, guild_id, span.start_hour, span.end_hour
        )
        if found:
            return
        known = await asyncio.to_thread(data_span, store, guild_id)
        where = (
            f"this server has statistics from {known.first:%Y-%m-%d} to {known.last:%Y-%m-%d}."
            if known
            else "this server has no statistics yet."
        )
        raise NotAllowed(f"No statistics between {span.describe()}; {where}")

    def _calendar(self, ctx: Context) -> GuildCalendar:
        """The guild's clock (its timezone per month), from memory."""
        assert ctx.guild is not None
        return self.stats.collector.calendar(ctx.guild.id)

    async def _one_moment(self, ctx: Context) -> None:
        if ctx.interaction is not None:
            await ctx.defer(ephemeral=True)
        else:
            await send(ctx, "One moment… reading the statistics.")

    # -- userstats ------------------------------------------------------------------------------

    @moderators_only()
    @commands.dynamic_cooldown(cog_cooldown, commands.BucketType.member)
    @commands.hybrid_group(name="userstats", fallback="dump", invoke_without_command=True)  # type: ignore[arg-type]
    @commands.guild_only()  # below the group: registers the slash command for servers only
    async def userstats(self, ctx: Context, *, daterange: str | None = None) -> None:
        """Upload the raw counts (gzip CSV) for a date or `date1 to date2` (default: last month).

        Parameters
        ----------
        daterange:
            A date or `date1 to date2` (the second date excluded); default: last month.
        """
        assert ctx.guild is not None
        span = parse_daterange(daterange, now=self.stats.clock(), calendar=self._calendar(ctx))
        if span.end - span.start > timedelta(days=self.max_dump_days):
            raise NotAllowed(
                f"A dump covers at most {self.max_dump_days} days; {span.describe()} is "
                f"{(span.end - span.start).days}. Ask for a shorter range, or use "
                "`guildmeter export` on the bot's machine."
            )
        await self._require_data(ctx.guild.id, span)
        async with self.runtime.jobs.slot(ctx.guild.id, ctx.author.id):
            await self._one_moment(ctx)
            data, warning, rows = await self.runtime.in_heavy_worker(
                jobs.dump, ctx.guild.id, span, UPLOAD_LIMIT_BYTES
            )
        text = f"Raw statistics, {span.describe()}: {rows:,} rows."
        if warning:
            text += f"\n⚠️ {warning}"
        name = f"userstats-{span.start:%Y-%m-%d}-to-{span.last_day:%Y-%m-%d}.csv.gz"
        await send(ctx, text, file=discord.File(io.BytesIO(data), filename=name), ephemeral=True)

    @commands.guild_only()
    @moderators_only()
    @commands.dynamic_cooldown(cog_cooldown, commands.BucketType.member)
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
            full: the whole period; weekday: per day of the week; hourly: per hour (local).
        channel:
            A channel's name, or `all`.
        daterange:
            A date or `date1 to date2` within one month; default: last month.
        """
        assert ctx.guild is not None
        span = parse_daterange(daterange, now=self.stats.clock(), calendar=self._calendar(ctx))
        check_report_range(span)
        channel_name = _channel_name(ctx.guild, channel)
        # A small query, answered before "One moment": an unknown channel is told at once.
        await asyncio.to_thread(resolve_channel, self.stats.store, ctx.guild.id, channel_name)
        await self._require_data(ctx.guild.id, span)
        async with self.runtime.jobs.slot(ctx.guild.id, ctx.author.id):
            await self._one_moment(ctx)
            if type == "full":
                report = await self.runtime.in_heavy_worker(
                    jobs.full_report, ctx.guild.id, span, channel_name
                )
                await send(ctx, embed=report_embed(report), ephemeral=True)
                return
            report, csv, chart = await self.runtime.in_heavy_worker(
                jobs.table_report, ctx.guild.id, type, span, channel_name
            )
        stem = f"{type}-{report.channel}-{span.start:%Y-%m-%d}-to-{span.last_day:%Y-%m-%d}"
        await send(
            ctx,
            f"{type.capitalize()} report, {_channel_label(report)}, {span.describe()}.",
            files=[
                discord.File(io.BytesIO(csv), filename=f"{stem}.csv.gz"),
                discord.File(io.BytesIO(chart), filename=f"{stem}.png"),
            ],
            ephemeral=True,
            allowed_mentions=_QUIET,
        )

    @commands.guild_only()
    @configurers_only()
    @userstats.command(name="backfill")  # type: ignore[arg-type]
    async def backfill(self, ctx: Context, days: str | None = None) -> None:
        """Count the message history from before the bot counted here (or `cancel` it).

        Parameters
        ----------
        days:
            How many days back to read (default 30, at most 366), or `cancel`.
        """
        assert ctx.guild is not None
        from guildmeter.backfill import MAX_DAYS, describe
        from guildmeter.ext.backfill import BackfillCog, joins_note

        cog = self.bot.get_cog("Backfill")
        if not isinstance(cog, BackfillCog):
            raise NotAllowed("The history backfill is not loaded in this bot.")
        wanted = (days or "30").strip().lower()
        if wanted == "cancel":
            runner = cog.running(ctx.guild.id)
            if runner is None or not cog.cancel(ctx.guild.id):
                raise NotAllowed("No history backfill is running in this server.")
            await send(
                ctx,
                f"Cancelling the backfill after the pages being read: {describe(runner.progress)}.",
                ephemeral=True,
            )
            return
        if not wanted.isdigit() or not 1 <= int(wanted) <= MAX_DAYS:
            raise NotAllowed(
                f"Days must be a number from 1 to {MAX_DAYS}, or `cancel` (got {echo(days)})."
            )
        if cog.running(ctx.guild.id) is not None:
            raise NotAllowed(
                "A history backfill is already running in this server "
                f"(`{ctx.clean_prefix}userstats backfill cancel` stops it)."
            )
        count = int(wanted)
        cog.start(
            ctx.guild,
            count,
            reply_channel_id=None if ctx.interaction is not None else ctx.channel.id,
        )  # at once: a second request meanwhile finds it running
        reply = await send(
            ctx,
            f"Backfill started: reading up to {count} days of message history from before "
            "the bot began counting here, in every channel, voice chat, thread and forum post "
            "it can read. Bots, webhooks, ignored channels and members who opted out are not "
            f"counted. {joins_note(self.bot.intents.members)}",
            ephemeral=True,
        )
        cog.attach_reply(ctx.guild.id, reply if isinstance(reply, discord.Message) else None)

    # -- statsconfig ----------------------------------------------------------------------------

    @configurers_only()
    @commands.hybrid_group(name="statsconfig", fallback="show", invoke_without_command=True)  # type: ignore[arg-type]
    @commands.guild_only()  # below the group: registers the slash command for servers only
    async def statsconfig(self, ctx: Context) -> None:
        """Show who may see statistics, and where, and what this bot collects."""
        assert ctx.guild is not None
        settings = await self.guild_settings(ctx.guild.id)
        collected = collection_of(self.bot.intents).lines()
        text = (
            _describe(settings, self.retention_months)
            + "\n"
            + describe_timezone(self._calendar(ctx), self.stats.clock())
            + "\n**Collected here:**\n"
            + "\n".join(collected)
        )
        await send(ctx, text, ephemeral=True)

    @commands.guild_only()
    @configurers_only()
    @statsconfig.command(name="timezone")  # type: ignore[arg-type]
    async def timezone(self, ctx: Context, zone: str) -> None:
        """The server's timezone: statistics follow its local hours, days and months.

        Parameters
        ----------
        zone:
            An IANA timezone name, such as Europe/Berlin, America/New_York or Asia/Kolkata.
        """
        assert ctx.guild is not None
        stats = self.stats
        counter = self.bot.get_cog("Statistics")
        flush = getattr(counter, "flush", None)
        if flush is not None:
            # Counts still in memory were taken on the old clock: store them first, so that
            # "nobody counted yet" (a switch at once) is decided on everything counted.
            await flush()
        change = await asyncio.to_thread(
            stats.store.set_timezone, ctx.guild.id, zone, stats.clock()
        )
        stats.collector.install_calendars(stats.store.calendars)  # on the loop
        await send(ctx, describe_change(change, self._calendar(ctx)), ephemeral=True)

    @timezone.autocomplete("zone")
    async def _zone_choices(
        self, _interaction: discord.Interaction, current: str
    ) -> list[discord.app_commands.Choice[str]]:
        return [discord.app_commands.Choice(name=z, value=z) for z in zone_choices(current)]

    # Members' rights: small cells and what anonymised months keep.

    @commands.guild_only()
    @configurers_only()
    @statsconfig.command(name="mincell")  # type: ignore[arg-type]
    async def mincell(self, ctx: Context, users: commands.Range[int, 1, 1000]) -> None:
        """Hide report rows with fewer users than this where non-moderators can read them.

        Parameters
        ----------
        users:
            The smallest number of members a public row may show (default 5).
        """
        assert ctx.guild is not None
        await asyncio.to_thread(self.settings.set_single, ctx.guild.id, "min_cell_users", users)
        self.runtime.forget_settings(ctx.guild.id)
        await send(
            ctx,
            f"Outputs other members can read now show rows with fewer than {users} members "
            f"as “fewer than {users}”.",
            ephemeral=True,
        )

    @commands.guild_only()
    @configurers_only()
    @statsconfig.command(name="anonymised")  # type: ignore[arg-type]
    async def anonymised(self, ctx: Context, keep: Literal["member_rows", "aggregates"]) -> None:
        """What anonymised months keep: a row per member's token, or aggregate counts only.

        Parameters
        ----------
        keep:
            member_rows: per-member reports of past months stay possible; aggregates: the
            strongest privacy, per-member figures of past months are lost.
        """
        assert ctx.guild is not None
        value = AGGREGATES_ONLY if keep == "aggregates" else KEEP_MEMBER_ROWS
        await asyncio.to_thread(self.settings.set_single, ctx.guild.id, "anonymised_rows", value)
        self.runtime.forget_settings(ctx.guild.id)
        await send(ctx, _describe_anonymised(keep == "aggregates"), ephemeral=True)

    @commands.guild_only()
    @configurers_only()
    @statsconfig.command(name="retention")  # type: ignore[arg-type]
    async def retention(self, ctx: Context, months: commands.Range[int, 0, 600]) -> None:
        """How long past months keep member-level rows (0: keep everything).

        Parameters
        ----------
        months:
            Months after its end a month keeps its per-member rows; then only its totals
            and its stored whole-month reports stay. 0 keeps everything.
        """
        assert ctx.guild is not None
        await asyncio.to_thread(self.settings.set_single, ctx.guild.id, "retention_months", months)
        self.runtime.forget_settings(ctx.guild.id)
        settings = await self.guild_settings(ctx.guild.id)
        await send(ctx, describe_retention(settings, self.retention_months), ephemeral=True)

    @commands.guild_only()
    @configurers_only()
    @statsconfig.command(name="public")  # type: ignore[arg-type]
    async def public(self, ctx: Context, state: Literal["on", "off"]) -> None:
        """Open or close the dashboard's read-only public page of this server.

        Parameters
        ----------
        state:
            on: anyone with the link sees the page, small cells hidden; off: moderators only.
        """
        assert ctx.guild is not None
        value = 1 if state == "on" else None
        await asyncio.to_thread(self.settings.set_single, ctx.guild.id, "public_view", value)
        self.runtime.forget_settings(ctx.guild.id)
        settings = await self.guild_settings(ctx.guild.id)
        await send(ctx, _describe_public(settings), ephemeral=True)

    @commands.guild_only()
    @configurers_only()
    @statsconfig.command(name="modchannel", ignore_extra=False)  # type: ignore[arg-type]
    async def modchannel(
        self, ctx: Context, channel: discord.TextChannel, public: bool = False
    ) -> None:
        """Add a moderator channel, where prefix commands answer (again to remove it).

        Parameters
        ----------
        channel:
            A channel only moderators can read.
        public:
            True to accept a channel that every member can read (dumps would be public).
        """
        assert ctx.guild is not None
        settings = await self.guild_settings(ctx.guild.id)
        adding = channel.id not in settings.mod_channels
        if adding and everyone_can_read(channel) and not public:
            raise NotAllowed(
                f"{channel.mention} can be read by every member, and the prefix commands post "
                "statistics (even raw dumps) in moderator channels. Choose a channel only "
                "moderators can read, or add `public: True` (prefix: `yes`) if you really mean it."
            )
        await self._toggle(ctx, "mod_channel", channel.id, channel.mention)

    @commands.guild_only()
    @configurers_only()
    @statsconfig.command(name="modrole", ignore_extra=False)  # type: ignore[arg-type]
    async def modrole(self, ctx: Context, role: discord.Role) -> None:
        """Let a role see server statistics (again to remove it).

        Parameters
        ----------
        role:
            The moderators' role.
        """
        _refuse_everyone(role, "see server statistics (raw dumps included)")
        await self._toggle(ctx, "mod_role", role.id, _role_label(role))

    @commands.guild_only()
    @configurers_only()
    @statsconfig.command(name="managerrole", ignore_extra=False)  # type: ignore[arg-type]
    async def managerrole(self, ctx: Context, role: discord.Role) -> None:
        """Let a role reset the bot-usage statistics (again to remove it).

        Parameters
        ----------
        role:
            The Bot Manager role.
        """
        _refuse_everyone(role, "reset the bot-usage statistics")
        await self._toggle(ctx, "manager_role", role.id, _role_label(role))

    @commands.guild_only()
    @configurers_only()
    @statsconfig.command(name="reportchannel", ignore_extra=False)  # type: ignore[arg-type]
    async def reportchannel(self, ctx: Context, channel: discord.TextChannel | None = None) -> None:
        """Post each month's full report in this channel (none: stop posting).

        Parameters
        ----------
        channel:
            A channel only moderators can read; leave out to stop the monthly post.
        """
        assert ctx.guild is not None
        settings = await self.guild_settings(ctx.guild.id)
        value = None if channel is None else channel.id
        await asyncio.to_thread(self.settings.set_single, ctx.guild.id, "report_channel", value)
        self.runtime.forget_settings(ctx.guild.id)
        if channel is None:
            text = "The monthly report will no longer be posted."
        else:
            text = f"Each month's full report will be posted in {channel.mention}."
            if everyone_can_read(channel):
                text += " Every member can read that channel: choose one only moderators read."
            elif channel.id not in settings.mod_channels:
                text += " Make sure only moderators can read it."
        await send(ctx, text, ephemeral=True)

    async def _toggle(
        self,
        ctx: Context,
        setting: Literal["mod_channel", "mod_role", "manager_role"],
        value: int,
        label: str,
    ) -> None:
        assert ctx.guild is not None
        added = await asyncio.to_thread(self.settings.toggle, ctx.guild.id, setting, value)
        self.runtime.forget_settings(ctx.guild.id)
        what = {"mod_channel": "moderator channel", "mod_role": "moderator role",
                "manager_role": "Bot Manager role"}[setting]  # fmt: skip
        verb = "is now" if added else "is no longer"
        await send(ctx, f"{label} {verb} a {what}.", ephemeral=True)

    # -- errors ---------------------------------------------------------------------------------

    async def cog_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:
        await reply_with_error(ctx, error)


async def reply_with_error(ctx: commands.Context[Any], error: Exception) -> None:
    """Answer a failed command with `error_message`, privately where Discord allows."""
    try:
        await send(ctx, error_message(ctx, error), ephemeral=True)
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


#: Messages that may quote what the member typed are cut to this length.
_ECHOING_LIMIT = 400


def error_message(ctx: commands.Context[Any], error: BaseException) -> str:
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
        # Written for every face (the command line too): plain text, escaped for Discord.
        return literal(clip(str(error), _ECHOING_LIMIT))
    if isinstance(error, OverflowError):
        return "That date or number is beyond what the statistics support."
    usage = (
        f"{ctx.clean_prefix}{ctx.command.qualified_name} {ctx.command.signature}".strip()
        if ctx.command
        else ""
    )
    if isinstance(error, commands.BadLiteralArgument):
        return (
            f"Unknown {error.param.name} {echo(error.argument)}: choose "
            + ", ".join(str(v) for v in error.literals)
            + "."
        )
    if isinstance(error, commands.TooManyArguments):
        return (
            "Nothing was changed: part of what you typed was not understood (a channel or "
            f"role that does not exist?). Usage: `{clip(usage, 200)}`."
        )
    if isinstance(error, commands.UserInputError):
        return f"{literal(clip(str(error), _ECHOING_LIMIT))} Usage: `{clip(usage, 200)}`."
    if isinstance(error, commands.CheckFailure):
        return "You cannot use this command here."
    log.error("command %s failed", ctx.command, exc_info=error)
    return "Something went wrong while making these statistics; it has been logged."


def _refuse_everyone(role: discord.Role, what: str) -> None:
    """@everyone is every member: as a moderator or manager role it would let anyone in."""
    if role.is_default():
        raise NotAllowed(
            f"@everyone is every member of the server: it cannot be a role that may {what}."
        )


def _channel_name(guild: discord.Guild, text: str) -> str:
    """A channel argument as the name the reports know: ``<#id>`` mentions become names."""
    match = _CHANNEL_MENTION.match(text.strip())
    if match:
        channel = guild.get_channel(int(match.group(1)))
        if channel is not None:
            return channel.name
    return text.strip()


def _channel_label(report: Report) -> str:
    return "all channels" if report.channel == "all" else f"#{literal(report.channel)}"


def _role_label(role: discord.Role) -> str:
    """A role's name as text (not a mention: no ping, and shown as its name was typed)."""
    return literal("@" + role.name.removeprefix("@"))


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


def _describe(settings: GuildSettings, default_retention: int = 0) -> str:
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
            describe_retention(settings, default_retention),
            _describe_public(settings),
        ]
    )


def _describe_public(settings: GuildSettings) -> str:
    if settings.public_view:
        return (
            f"Public dashboard page: on — anyone with its link (/public/SERVER_ID on the "
            f"dashboard) sees the activity charts, with figures about fewer than "
            f"{settings.min_cell_users} members hidden, and no raw data"
        )
    return "Public dashboard page: off (the dashboard shows this server to moderators only)"


def _describe_anonymised(aggregates_only: bool) -> str:
    if aggregates_only:
        return (
            "Anonymised months keep: aggregate counts only (per-member figures of past "
            "months are dropped at month end)"
        )
    return "Anonymised months keep: a row per member's random token (per-member reports stay)"
