"""What the extension's cogs share at run time: worker threads, job limits, settings.

The flush has a thread of its own, so that no command, however heavy, can delay it; heavy
commands (dumps, reports, ``/stats``) run in a small bounded pool of worker processes of
their own (see `guildmeter.jobs`: in threads they would hold the GIL that the flush needs),
at a lower CPU priority than the bot's process (they would take the cores it needs), with
limits on how many run at once per member, per guild and in all. Settings are read from
memory on the command path and refreshed from the database by every flush, so a change
made through another process holds here within one flush interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from discord.ext import commands

from guildmeter import jobs
from guildmeter.config import Config
from guildmeter.ext.checks import NotAllowed
from guildmeter.store import Store, StoreSpec
from guildmeter.store.settings import GuildSettings, SettingsStore

__all__ = ["JobLimits", "Runtime", "cog_cooldown", "runtime_for"]

T = TypeVar("T")
log = logging.getLogger(__name__)


def cog_cooldown(ctx: commands.Context[Any]) -> commands.Cooldown | None:
    """For ``commands.dynamic_cooldown``: the cooldown the command's cog was configured with
    (its ``cooldown_uses`` per ``cooldown_seconds``)."""
    uses = getattr(ctx.cog, "cooldown_uses", None)
    seconds = getattr(ctx.cog, "cooldown_seconds", None)
    if uses is None or seconds is None:
        return None
    return commands.Cooldown(uses, seconds)


class JobLimits:
    """How many heavy jobs run at once: per member, per guild and in all (on the loop)."""

    def __init__(self, *, per_member: int, per_guild: int, total: int) -> None:
        self.per_member = per_member
        self.per_guild = per_guild
        self.total = total
        self._members: Counter[tuple[int, int]] = Counter()
        self._guilds: Counter[int] = Counter()
        self._running = 0

    @contextlib.asynccontextmanager
    async def slot(self, guild_id: int, member_id: int) -> AsyncIterator[None]:
        """Hold a slot for one job, or refuse at once (the member is told why)."""
        if self._members[(guild_id, member_id)] >= self.per_member:
            raise NotAllowed(
                "You already have statistics being made; wait for them to arrive first."
            )
        if self._guilds[guild_id] >= self.per_guild:
            raise NotAllowed(
                "This server already has statistics being made; try again in a minute."
            )
        if self._running >= self.total:
            raise NotAllowed("The bot is busy making statistics; try again in a minute.")
        self._members[(guild_id, member_id)] += 1
        self._guilds[guild_id] += 1
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            self._guilds[guild_id] -= 1
            self._members[(guild_id, member_id)] -= 1
            if not self._guilds[guild_id]:
                del self._guilds[guild_id]
            if not self._members[(guild_id, member_id)]:
                del self._members[(guild_id, member_id)]

    @property
    def running(self) -> int:
        return self._running


class Runtime:
    """Threads, job limits and the settings cache of one loaded extension."""

    def __init__(
        self, config: Config, settings: SettingsStore, *, standalone: bool = False
    ) -> None:
        self.settings = settings
        self.flush_pool = ThreadPoolExecutor(1, thread_name_prefix="guildmeter-flush")
        store = settings.store
        self.workers = config.heavy_workers
        self.job_timeout = config.heavy_job_timeout_seconds
        processes = config.heavy_work == "processes" or (config.heavy_work == "auto" and standalone)
        #: What the heavy jobs get to reach the database: how to open it, in a process.
        self.heavy_store: StoreSpec | Store
        self.processes = processes and store.reopen is not None
        self.heavy_store = store.reopen if self.processes and store.reopen else store
        self.heavy_pool: Executor = self._new_heavy_pool()
        limits = {
            "per_member": config.heavy_jobs_per_member,
            "per_guild": config.heavy_jobs_per_guild,
            "total": config.heavy_jobs_total,
        }
        #: Moderators' dumps and reports; ``/stats`` has limits of its own, so that anyone's
        #: ``/stats`` spam cannot lock the moderators out (both share the heavy threads).
        self.jobs = JobLimits(**limits)
        self.usage_jobs = JobLimits(**limits)
        self._settings: dict[int, GuildSettings] = {}
        self._closed = False

    async def in_flush_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self.flush_pool, functools.partial(fn, *args)
        )

    def _new_heavy_pool(self) -> Executor:
        if self.processes:
            # spawn, not fork: this process runs threads (the flush, the host's own).
            context = multiprocessing.get_context("spawn")
            return ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=jobs.lower_priority
            )
        return ThreadPoolExecutor(self.workers, thread_name_prefix="guildmeter-heavy")

    async def in_heavy_worker(self, job: Callable[..., T], *args: Any) -> T:
        """Run one of `guildmeter.jobs` (a module-level function), given the store first.

        A worker process that died (killed, out of memory) breaks its pool: a new pool
        replaces it and the job is tried once more. A job still running after
        ``heavy_job_timeout_seconds`` is abandoned, so that its slot is given back.
        """
        call = functools.partial(job, self.heavy_store, *args)
        for attempt in (1, 2):
            pool = self.heavy_pool
            try:
                return await asyncio.wait_for(
                    asyncio.get_running_loop().run_in_executor(pool, call), self.job_timeout
                )
            except BrokenProcessPool:
                if attempt == 2 or self._closed:
                    raise
                log.warning("a heavy-work process died; starting new ones and retrying the job")
                if self.heavy_pool is pool:
                    pool.shutdown(wait=False, cancel_futures=True)
                    self.heavy_pool = self._new_heavy_pool()
            except TimeoutError:
                raise NotAllowed(
                    "Making these statistics took too long and was stopped; ask for a shorter "
                    "range, or use the command line on the bot's machine."
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- settings: memory on the command path, refreshed by the flush ------------------------

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """A guild's settings: from memory, or read once (a small query, default pool)."""
        cached = self._settings.get(guild_id)
        if cached is not None:
            return cached
        settings = await asyncio.to_thread(self.settings.read, guild_id)
        self._settings[guild_id] = settings
        return settings

    def forget_settings(self, guild_id: int) -> None:
        """After a change made here: the next read goes to the database."""
        self._settings.pop(guild_id, None)

    def cached_guilds(self) -> list[int]:
        """The guilds whose settings are held (on the loop, for the flush to refresh)."""
        return list(self._settings)

    def install_settings(self, fresh: dict[int, GuildSettings]) -> None:
        """Replace held settings with what the flush read (on the loop)."""
        for guild_id, settings in fresh.items():
            if guild_id in self._settings:
                self._settings[guild_id] = settings

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.flush_pool.shutdown(wait=False, cancel_futures=False)
            self.heavy_pool.shutdown(wait=False, cancel_futures=True)


def runtime_for(bot: commands.Bot, config: Config, settings: SettingsStore) -> Runtime:
    """The runtime of the extension loaded into ``bot`` (one per load; see `close`)."""
    existing = getattr(bot, "guildmeter_runtime", None)
    if isinstance(existing, Runtime) and not existing._closed and existing.settings is settings:
        return existing
    standalone = bool(getattr(bot, "guildmeter_standalone", False))
    runtime = Runtime(config, settings, standalone=standalone)
    bot.guildmeter_runtime = runtime  # type: ignore[attr-defined]
    return runtime
