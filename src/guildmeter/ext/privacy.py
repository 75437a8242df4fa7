"""Members' rights in Discord: ``privacy`` (statement), ``optout``, ``optin``, ``forget``.

Anyone may use them, about themselves, and every answer is private: slash answers are
ephemeral; prefix answers go by direct message (the answer says whether this member is
opted out, and forget lists what was deleted: per-member facts that never belong in a
channel), and the channel only hears "sent you a direct message", or, when DMs are
closed, a pointer to the slash command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import discord
from discord.ext import commands

from guildmeter.activity import ActivityStats
from guildmeter.errors import StoreUnavailableError
from guildmeter.ext.commands import reply_with_error
from guildmeter.intents import collection_of
from guildmeter.privacy.rights import (
    ForgetReport,
    describe_forget,
    forget_in_store,
    member_labels,
    plan_forget,
)
from guildmeter.privacy.statement import privacy_statement
from guildmeter.store.rights import RightsStore
from guildmeter.store.settings import GuildSettings, SettingsStore

Context = commands.Context[commands.Bot]

__all__ = ["PrivacyCommands", "forget_member"]

log = logging.getLogger(__name__)

_NONE = discord.AllowedMentions.none()


class PrivacyCommands(commands.Cog, name="Privacy"):
    """Members' rights: what is kept, opt out, opt in, forget me."""

    #: Exercising a right leaves no bot-usage record (a forget request would re-create one).
    track_usage = False

    def __init__(
        self,
        bot: commands.Bot,
        stats: ActivityStats,
        settings: SettingsStore,
        *,
        anonymise_grace_seconds: float = 0.0,
        retention_months: int = 0,
    ) -> None:
        self.bot = bot
        self.stats = stats
        self.settings = settings
        self.anonymise_grace_seconds = anonymise_grace_seconds
        #: The configured default; a guild's own ``statsconfig retention`` overrides it.
        self.retention_months = retention_months

    async def cog_load(self) -> None:
        # Before the first event: an opt-out must hold from the first message after a restart.
        try:
            changed = await asyncio.to_thread(self.stats.load_optouts)
            self.stats.keyring.drop_guilds(changed)  # on the loop, where the caches live
        except StoreUnavailableError as exc:  # the first flush that reaches it loads it
            log.warning("could not load the opt-out list at start-up: %s", exc)

    # -- the commands ---------------------------------------------------------------------------

    @commands.hybrid_group(name="privacy", fallback="show", invoke_without_command=True)  # type: ignore[arg-type]
    async def privacy(self, ctx: Context) -> None:
        """What guildmeter keeps about you, for how long, and how to opt out or be forgotten."""
        guild = ctx.guild
        settings = GuildSettings() if guild is None else await self._settings(guild.id)
        text = privacy_statement(
            guild_name=None if guild is None else guild.name,
            now=self.stats.clock(),
            grace=timedelta(seconds=self.anonymise_grace_seconds),
            min_cell_users=settings.min_cell_users,
            aggregates_only=settings.aggregates_only,
            opted_out=None
            if ctx.guild is None
            else self.stats.optouts.blocks(ctx.guild.id, ctx.author.id),
            collection=collection_of(self.bot.intents),
            calendar=self.stats.collector.calendar(0 if guild is None else guild.id),
            retention_months=self.retention_months
            if settings.retention_months is None
            else settings.retention_months,
        )
        await self._answer(ctx, text)

    @commands.guild_only()
    @commands.cooldown(2, 30, commands.BucketType.user)
    @privacy.command(name="optout")  # type: ignore[arg-type]
    async def optout(self, ctx: Context) -> None:
        """Stop counting anything about you in this server, from now on."""
        assert ctx.guild is not None
        guild, user = ctx.guild, ctx.author
        stats = self.stats
        # Voice time up to this moment was counted before the choice: credit it, then stop.
        stats.voice.update(guild.id, user.id, None, stats.clock())
        try:
            added = await asyncio.to_thread(stats.save_opt_out, guild.id, user.id)
            stats.keyring.forget(guild.id, user.id)  # on the loop: its next event looks it up
        finally:
            self._resync_voice(ctx)
        text = (
            "Done: from now on nothing about you is counted in this server — messages, voice "
            "time, commands. Your joins and leaves still count toward the server's totals, "
            "for nobody. What was counted before stays until the month is anonymised; "
            "`/privacy forget` deletes it now. `/privacy optin` undoes this."
            if added
            else "You had already opted out: nothing about you is counted in this server."
        )
        await self._answer(ctx, text)

    @commands.guild_only()
    @commands.cooldown(2, 30, commands.BucketType.user)
    @privacy.command(name="optin")  # type: ignore[arg-type]
    async def optin(self, ctx: Context) -> None:
        """Be counted again in this server's statistics (undoes optout)."""
        assert ctx.guild is not None
        removed = await asyncio.to_thread(self.stats.save_opt_in, ctx.guild.id, ctx.author.id)
        self.stats.keyring.forget(ctx.guild.id, ctx.author.id)  # on the loop
        self._resync_voice(ctx)
        text = (
            "Done: you are counted again in this server, from now on."
            if removed
            else "You were not opted out: you are counted in this server's statistics."
        )
        await self._answer(ctx, text)

    @commands.guild_only()
    @commands.cooldown(2, 30, commands.BucketType.user)
    @privacy.command(name="forget")  # type: ignore[arg-type]
    async def forget(self, ctx: Context, confirm: bool = False) -> None:
        """Delete your statistics of the months not yet anonymised (first says what).

        Parameters
        ----------
        confirm:
            True to delete; without it, only says what would be deleted.
        """
        assert ctx.guild is not None
        if ctx.interaction is not None:
            await ctx.defer(ephemeral=True)
        if not confirm:
            plan = await asyncio.to_thread(
                plan_forget, self.stats.store, ctx.author.id, ctx.guild.id
            )
            how = "`/privacy forget confirm:True` (or `.privacy forget yes`)"
            await self._answer(ctx, f"{describe_forget(plan)}\nTo delete, run {how}.")
            return
        report = await forget_member(self.bot, self.stats, ctx.author.id, ctx.guild.id)
        self._resync_voice(ctx)  # still in voice and not opted out: counting goes on from now
        await self._answer(ctx, describe_forget(report))

    async def cog_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:
        await reply_with_error(ctx, error)

    # -- helpers --------------------------------------------------------------------------------

    async def _settings(self, guild_id: int) -> GuildSettings:
        return await asyncio.to_thread(self.settings.get, guild_id)

    def _resync_voice(self, ctx: Context) -> None:
        """Start (or not, if opted out) the member's voice session from now."""
        from guildmeter.ext.cog import StatsCog

        member = ctx.author
        if ctx.guild is None or not isinstance(member, discord.Member) or member.voice is None:
            return
        channel = StatsCog._counted_voice_channel(ctx.guild, member.voice.channel)
        self.stats.voice.update(ctx.guild.id, member.id, channel, self.stats.clock())

    async def _answer(self, ctx: Context, text: str) -> None:
        """Privately: ephemeral for slash, a DM for prefix (see the module docstring)."""
        text = text[:2000]
        if ctx.interaction is not None or ctx.guild is None:
            await ctx.send(text, ephemeral=True, allowed_mentions=_NONE)
            return
        try:
            await ctx.author.send(text, allowed_mentions=_NONE)
        except discord.HTTPException:
            await ctx.send(
                "I could not send you a direct message. Use the slash command "
                "`/privacy show` (or the other `/privacy` commands): only you will see the "
                "answer.",
                allowed_mentions=_NONE,
            )
            return
        await ctx.send("I have sent you the answer in a direct message.", allowed_mentions=_NONE)


_FORGET_SCRUB_WAIT_S = 2.0


async def forget_member(
    bot: commands.Bot | None, stats: ActivityStats, user_id: int, guild_id: int | None
) -> ForgetReport:
    """Forget a member: memory first (on the loop), then the database (in a thread).

    Runs under the counting cog's flush lock, so that no flush writes their counts between
    the two steps.
    """
    rights = RightsStore(stats.store)
    async with _flush_lock(bot):
        labels = await asyncio.to_thread(member_labels, rights, user_id, guild_id)
        dropped = stats.forget_in_memory(guild_id, user_id, (label for _, _, label in labels))
        report = await asyncio.to_thread(
            forget_in_store, stats.store, user_id, guild_id, labels=labels, scrub=False
        )
    # Scrubbing waits for long readers: outside the lock, so it never holds the flush, and
    # bounded; what it could not finish, the next flushes finish.
    if report.months and not await asyncio.to_thread(rights.scrub, _FORGET_SCRUB_WAIT_S):
        stats.scrub_later(rewrite_members=True)
    return report.with_memory(dropped)


@contextlib.asynccontextmanager
async def _flush_lock(bot: commands.Bot | None) -> AsyncIterator[None]:
    cog = None if bot is None else bot.get_cog("Statistics")
    lock = getattr(cog, "_flush_lock", None)
    if isinstance(lock, asyncio.Lock):
        async with lock:
            yield
    else:
        yield
