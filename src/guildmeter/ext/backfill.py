"""The history backfill inside the bot: runs, their progress messages, resume, cancel.

Each run is an asyncio task of this cog; its database work goes to the cog's own worker
thread (never asyncio's default executor, never the flush's thread). Unloading the cog
(the bot closing) pauses every run between two pages and waits a few seconds for it to
commit what it read; an interrupted run resumes on the next READY. Nothing starts at
start-up unless the database holds a run to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import discord
from discord.ext import commands

from guildmeter.activity import ActivityStats
from guildmeter.backfill import Backfill, BackfillBusy, HistorySource, Progress, describe
from guildmeter.errors import GuildmeterError
from guildmeter.ext.replies import NO_MENTIONS, clip
from guildmeter.store.backfill import runs_to_resume

__all__ = ["BackfillCog", "joins_note"]

log = logging.getLogger(__name__)

#: An interaction's token lasts 15 minutes: a slash reply is edited for 14 at most.
_INTERACTION_EDITS_S = 14 * 60
_STOP_WAIT_S = 5.0


def joins_note(members_intent: bool) -> str:
    """What the backfill cannot recover, said in every reply."""
    if members_intent:
        return (
            "Joins come from when current members joined; parts, and the joins of members "
            "who have left since, cannot be recovered."
        )
    return (
        "Joins and parts cannot be recovered: the bot lacks the Server Members intent "
        "(only messages are counted)."
    )


class BackfillCog(commands.Cog, name="Backfill"):
    """Runs `guildmeter.backfill.Backfill` for ``/userstats backfill``."""

    def __init__(
        self, bot: commands.Bot, stats: ActivityStats, *, progress_every: float = 5.0
    ) -> None:
        self.bot = bot
        self.stats = stats
        self.progress_every = progress_every
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="guildmeter-backfill")
        self.runs: dict[int, tuple[Backfill, asyncio.Task[Progress | None]]] = {}
        #: Per guild, the message its run edits (None: it reports nowhere).
        self.replies: dict[int, discord.Message | None] = {}
        self._resume_task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = asyncio.Event()

    async def cog_unload(self) -> None:
        self._closing = True
        self._closed.set()
        if self._resume_task is not None:
            self._resume_task.cancel()
        tasks = []
        for runner, task in list(self.runs.values()):
            runner.stop("paused")
            tasks.append(task)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=_STOP_WAIT_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._resume_task is not None:
            await asyncio.gather(self._resume_task, return_exceptions=True)
        self.executor.shutdown(wait=False, cancel_futures=True)

    # -- starting and stopping -------------------------------------------------------------------

    def running(self, guild_id: int) -> Backfill | None:
        found = self.runs.get(guild_id)
        return found[0] if found is not None and not found[1].done() else None

    def cancel(self, guild_id: int) -> bool:
        runner = self.running(guild_id)
        if runner is None:
            return False
        runner.stop("cancelled")
        return True

    def start(
        self,
        guild: discord.Guild,
        days: int | None,
        reply: discord.Message | None = None,
        *,
        reply_channel_id: int | None = None,
    ) -> Backfill:
        """Start (or, ``days`` None, resume) the guild's run; its task edits the reply
        (given here, or later with `attach_reply`)."""
        if self._closing:
            raise GuildmeterError("the bot is shutting down")
        if self.running(guild.id) is not None:
            raise BackfillBusy("a backfill of this server is already running")
        stats = self.stats
        runner = Backfill(
            stats.store,
            HistorySource(self.bot.http, guild.id),
            guild.id,
            days,
            executor=self.executor,
            optouts=stats.optouts,
            ignored_users=stats.collector.ignored_users,
            ignored_channels=stats.collector.ignored_channels,
            anonymise_grace=stats.anonymise_grace,
            members=self._members_of(guild) if self.bot.intents.members else None,
            reply_channel_id=reply_channel_id,
            clock=stats.clock,
        )
        self.replies[guild.id] = reply
        task = asyncio.create_task(self._run(runner), name=f"guildmeter-backfill-{guild.id}")
        self.runs[guild.id] = (runner, task)
        return runner

    def attach_reply(self, guild_id: int, reply: discord.Message | None) -> None:
        """The message the running backfill edits with its progress."""
        self.replies[guild_id] = reply

    @staticmethod
    def _members_of(guild: discord.Guild) -> Any:
        """Current members from the cache (the Server Members intent fills it)."""

        async def members() -> AsyncIterator[tuple[int, datetime, bool]]:
            for member in list(guild.members):
                if member.joined_at is not None:
                    yield member.id, member.joined_at, member.bot

        return members

    async def _run(self, runner: Backfill) -> Progress | None:
        guild_id = runner.guild_id
        reporter = asyncio.create_task(self._report(runner))
        try:
            # Live starts noted in memory (READY, the first live message of a channel) must
            # be stored before the run reads them: the next flush writes them first.
            counter = self.bot.get_cog("Statistics")
            flush = getattr(counter, "flush", None)
            if flush is not None:
                await flush()
            try:
                progress = await runner.run()
            except BackfillBusy:
                if runner.days is not None:
                    raise
                # Resuming after a crash: the dead process's claim lapses after a minute
                # (a shutdown meanwhile ends the wait at once).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), runner.claim_seconds)
                if self._closed.is_set():
                    reporter.cancel()
                    return None
                progress = await runner.run()
        except BackfillBusy as exc:
            reporter.cancel()
            await self._edit(guild_id, f"Backfill not started: {exc}.")
            return None
        except asyncio.CancelledError:
            reporter.cancel()
            raise
        except Exception as exc:
            reporter.cancel()
            log.exception("history backfill failed")
            text = "the database is unavailable" if "database" in str(exc) else "it has been logged"
            await self._edit(
                guild_id,
                f"Backfill stopped by an error ({text}): {describe(runner.progress)}. "
                "Run it again to continue where it stopped.",
            )
            return None
        reporter.cancel()
        await self._edit(guild_id, self._final(progress))
        return progress

    def _final(self, progress: Progress) -> str:
        members = self.bot.intents.members
        joins = f" {progress.joins:,} joins of current members." if progress.joins else ""
        anonymised = (
            f" {len(progress.anonymised_months)} past months anonymised (their keys destroyed)."
            if progress.anonymised_months
            else ""
        )
        if progress.state == "cancelled":
            head = "Backfill cancelled"
        elif progress.state == "paused":
            head = "Backfill paused (the bot is stopping; it resumes when it starts again)"
        else:
            head = "Backfill done"
        return f"{head}: {describe(progress)}.{joins}{anonymised} {joins_note(members)}"

    async def _report(self, runner: Backfill) -> None:
        """Edit the reply every few seconds while the run goes on."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            await asyncio.sleep(self.progress_every)
            reply = self.replies.get(runner.guild_id)
            interaction = isinstance(reply, discord.InteractionMessage)
            if interaction and loop.time() - started > _INTERACTION_EDITS_S:
                return
            await self._edit(runner.guild_id, f"Backfill running: {describe(runner.progress)}…")

    async def _edit(self, guild_id: int, text: str) -> None:
        reply = self.replies.get(guild_id)
        if reply is None:
            return
        try:
            await reply.edit(content=clip(text), allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:  # an expired interaction, a deleted message
            log.info("could not edit the backfill's progress message: %s", exc)

    # -- resume ----------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        if self._resume_task is None or self._resume_task.done():
            self._resume_task = asyncio.create_task(self._resume())

    async def _resume(self) -> None:
        """Resume runs a restart interrupted (one small query; nothing when there is none)."""
        guilds = {guild.id: guild for guild in self.bot.guilds}
        loop = asyncio.get_running_loop()
        try:
            runs = await loop.run_in_executor(
                self.executor, runs_to_resume, self.stats.store, list(guilds)
            )
        except Exception as exc:
            log.warning("could not look for interrupted backfills: %s", exc)
            return
        for run in runs:
            guild = guilds.get(run.guild_id)
            if guild is None or self.running(run.guild_id) is not None or self._closing:
                continue
            reply = None
            channel = guild.get_channel(run.reply_channel_id) if run.reply_channel_id else None
            if isinstance(channel, discord.TextChannel):
                with contextlib.suppress(discord.HTTPException):
                    reply = await channel.send(
                        "Resuming the history backfill interrupted by a restart…",
                        allowed_mentions=NO_MENTIONS,
                    )
            log.info("resuming an interrupted history backfill (%d days)", run.days)
            self.start(guild, None, reply, reply_channel_id=run.reply_channel_id)
