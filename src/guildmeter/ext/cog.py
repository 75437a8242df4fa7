"""The Cog: Discord objects in, plain values out, to the collector. No SQL, no I/O here.

Listeners only touch memory. A `tasks.loop` flushes: keys are fetched and batches written
in the flush's own worker thread (no command shares it), while everything the listeners
also touch is handed over on the loop. A failed flush is logged and the next one runs; the
loop restarts itself if it ever stops, and a watchdog says loudly when no flush has
completed for three intervals. The cog flushes once more when it is unloaded.

Without Discord's Server Members intent no join or part arrives: member totals come from
the guild's approximate member count (REST, once an hour), and each flush records the
hours the bot ran without it, so that reports say "not collected" instead of a false 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

import discord
from discord.ext import commands, tasks

from guildmeter.activity import ActivityStats, FlushResult
from guildmeter.config import Config, load_config
from guildmeter.ext.runtime import Runtime
from guildmeter.intents import collection_of
from guildmeter.store.backfill import GUILD_WIDE, record_live_starts, snowflake_at
from guildmeter.store.coverage import mark_uncollected
from guildmeter.store.settings import GuildSettings, SettingsStore
from guildmeter.timeutil import hour_index

__all__ = [
    "StatsCog",
    "config_for",
    "hour_of_snowflake",
    "ms_of_snowflake",
    "settings_for",
    "stats_for",
]

log = logging.getLogger(__name__)


_DISCORD_EPOCH_MS = 1_420_070_400_000
#: Hours marked "not collected" at most per flush and guild (a clock that jumped).
_MAX_MARKED_HOURS = 24 * 31


def hour_of_snowflake(snowflake: int) -> int:
    """The UTC hour index (see `guildmeter.timeutil`) of a Discord id's creation time."""
    return ((snowflake >> 22) + _DISCORD_EPOCH_MS) // 3_600_000


def ms_of_snowflake(snowflake: int) -> int:
    """Unix epoch milliseconds of a Discord id's creation time."""
    return (snowflake >> 22) + _DISCORD_EPOCH_MS


def config_for(bot: commands.Bot) -> Config:
    """The host's ``bot.guildmeter_config``, or the configuration from the environment."""
    config = getattr(bot, "guildmeter_config", None)
    return config if isinstance(config, Config) else load_config()


async def stats_for(bot: commands.Bot, config: Config) -> ActivityStats:
    """The host's ``bot.guildmeter`` (created once at start-up), or one made from ``config``."""
    existing = getattr(bot, "guildmeter", None)
    if isinstance(existing, ActivityStats):
        return existing
    stats = await asyncio.to_thread(ActivityStats.from_config, config)
    bot.guildmeter = stats  # type: ignore[attr-defined]
    return stats


def settings_for(bot: commands.Bot, stats: ActivityStats) -> SettingsStore:
    """The per-guild settings, kept on the bot so that reloading the extension keeps them."""
    existing = getattr(bot, "guildmeter_settings", None)
    if isinstance(existing, SettingsStore) and existing.store is stats.store:
        return existing
    settings = SettingsStore(stats.store)
    bot.guildmeter_settings = settings  # type: ignore[attr-defined]
    return settings


class StatsCog(commands.Cog, name="Statistics"):
    """Counts activity; see the module docstring."""

    def __init__(
        self,
        bot: commands.Bot,
        stats: ActivityStats,
        runtime: Runtime,
        *,
        flush_interval: float = 5.0,
    ) -> None:
        self.bot = bot
        self.stats = stats
        self.runtime = runtime
        self.flush_interval = flush_interval
        self._flush_lock = asyncio.Lock()
        self._lost_since: datetime | None = None
        self._unloading = False
        self._failures = 0
        self._last_flush = self._previous_start = time.monotonic()
        self._stalled_logged = False
        #: What this bot collects: its intents are fixed for its lifetime.
        self.collection = collection_of(bot.intents)
        #: (guild, hour) pairs run without Server Members, not yet recorded (loop only).
        self._uncollected: set[tuple[int, int]] = set()
        self._uncollected_from: datetime | None = None
        #: The last hour recorded per guild, so that each hour is written once (loop only).
        self._marked_through: dict[int, int] = {}
        self._announced = False
        #: Where live counting began (`guildmeter.store.backfill`): per channel the first
        #: message counted live, per guild the first connection; written by the next flush,
        #: before the counts they cover (loop only).
        self._first_live: dict[int, int] = {}
        self._guilds_started: set[int] = set()
        self._new_starts: dict[tuple[int, int], int] = {}
        self.flush_loop.change_interval(seconds=flush_interval)
        self.watchdog.change_interval(seconds=flush_interval)

    async def cog_load(self) -> None:
        self.flush_loop.start()
        self.watchdog.start()
        if not self.collection.members:
            self._uncollected_from = self.stats.clock()
            self.approximate_totals.start()

    async def cog_unload(self) -> None:
        self._unloading = True
        self.approximate_totals.cancel()
        self.watchdog.cancel()
        self.flush_loop.cancel()
        limit = max(30.0, 3 * self.flush_interval)
        try:
            result = await asyncio.wait_for(self.flush(final=True), limit)
            if result.error:
                log.error(
                    "final flush failed, %d batches lost: %s", result.batches_waiting, result.error
                )
        except TimeoutError:  # a database that hangs must not hang the shutdown too
            log.error(
                "final flush did not finish in %.0f s (the database does not answer): "
                "%d counters lost",
                limit,
                self.stats.counters_in_memory,
            )
        finally:
            self.runtime.close()

    # -- flushing -----------------------------------------------------------------------------

    @tasks.loop(seconds=5.0)
    async def flush_loop(self) -> None:
        try:
            await self.flush()
            self._failures = 0
        except Exception:
            # Whatever went wrong, the counts are still in memory: log it, try again next time.
            self._failures += 1
            log.exception("flush failed (%d in a row); the next flush retries", self._failures)

    @flush_loop.error
    async def _flush_failed(self, error: BaseException) -> None:  # pragma: no cover - defensive
        log.critical("flush loop stopped unexpectedly; restarting it", exc_info=error)
        asyncio.get_running_loop().call_later(self.flush_interval, self._restart_flush_loop)

    def _restart_flush_loop(self) -> None:  # pragma: no cover - defensive
        if not self._unloading and not self.flush_loop.is_running():
            self.flush_loop.start()

    @tasks.loop(seconds=5.0)
    async def watchdog(self) -> None:
        """Say loudly when no flush has completed for three intervals (a stuck database)."""
        stats = self.stats
        # The high-water mark is kept here too: a flush stuck on a database that hangs
        # never reaches the step that would otherwise apply it.
        stats.collector.saturated = stats.counters_in_memory >= stats.max_counters
        stalled = time.monotonic() - self._last_flush
        if stalled >= 3 * self.flush_interval:
            if not self._stalled_logged:
                log.critical(
                    "no flush has completed for %.0f s: counts are held in memory "
                    "(%d counters) and will be lost if the bot is killed",
                    stalled,
                    self.stats.counters_in_memory,
                )
                self._stalled_logged = True
            if not self.flush_loop.is_running() and not self._unloading:
                self.flush_loop.start()
        elif self._stalled_logged:
            log.warning("flushing again after a stall")
            self._stalled_logged = False

    async def flush(self, *, final: bool = False) -> FlushResult:
        """One flush: keys (thread), drain (loop), write and month-end (thread), finish (loop).

        Nothing the listeners change is read from the thread: it gets the keys to fetch
        and the drained batches, and its results are applied back here, on the loop.
        """
        started = time.monotonic()
        async with self._flush_lock:
            locked = time.monotonic()
            stats, runtime = self.stats, self.runtime
            now = stats.clock()
            # Voice first: the seconds it credits may need a key not loaded yet.
            if final:
                stats.voice.close_all(now)
            else:
                stats.voice.checkpoint(now)
            needed = stats.keys_needed()
            key_error: str | None = None
            if needed:
                try:
                    stats.install_keys(await runtime.in_flush_thread(stats.fetch_keys, needed))
                except Exception as exc:  # the store is down: counts stay pending
                    key_error = f"could not load keys: {exc}"
            keyed = time.monotonic()
            stats.take_batch(now)
            marks = self._take_uncollected(now)
            starts, self._new_starts = self._new_starts, {}
            taken = time.monotonic()
            result, fresh, marked = await runtime.in_flush_thread(
                self._write, now, runtime.cached_guilds(), marks, starts
            )
            written = time.monotonic()
            if result.error is not None and starts:
                for place, first in starts.items():  # retried by the next flush
                    self._new_starts.setdefault(place, first)
            if key_error is not None and result.error is None:
                result.error = key_error  # counts wait for keys: not a completed flush
            stats.finish(result, now)
            runtime.install_settings(fresh)
            if marked:
                self._uncollected -= marks
                for guild_id, hour in marks:
                    if hour > self._marked_through.get(guild_id, -1):
                        self._marked_through[guild_id] = hour
            if result.error is None:
                self._last_flush = time.monotonic()
            log.debug(
                "flush: %d rows in %.3f s (lock %.3f, keys %.3f, drain %.3f, write %.3f; "
                "%.3f s after the previous one started)",
                result.rows_written, written - started, locked - started, keyed - locked,
                taken - keyed, written - taken, started - self._previous_start,
            )  # fmt: skip
            self._previous_start = started
            return result

    def _write(
        self,
        now: datetime,
        guilds: list[int],
        marks: frozenset[tuple[int, int]],
        starts: dict[tuple[int, int], int],
    ) -> tuple[FlushResult, dict[int, GuildSettings], bool]:
        """In the flush thread: record live starts, write, record hours not collected,
        re-read settings.

        Live starts go first, in a transaction of their own: counts are never stored
        without the start that keeps the history backfill from counting them again.
        """
        if starts:
            try:
                record_live_starts(self.stats.store, starts)
            except Exception as exc:
                error = f"could not record where live counting began: {exc}"
                return (
                    FlushResult(error=error, batches_waiting=self.stats.waiting_batches),
                    {},
                    False,
                )
        result = self.stats.write(now)
        fresh: dict[int, GuildSettings] = {}
        marked = False
        if result.error is None and marks:
            try:
                mark_uncollected(self.stats.store, marks)
                marked = True
            except Exception as exc:  # kept in memory: the next flush records them
                log.warning("could not record the hours joins were not collected: %s", exc)
        if result.error is None and guilds:
            try:
                fresh = self.runtime.settings.read_many(guilds)
            except Exception as exc:  # settings stay as they were until the next flush
                log.warning("could not refresh settings: %s", exc)
        return result, fresh, marked

    def _take_uncollected(self, now: datetime) -> frozenset[tuple[int, int]]:
        """On the loop: every guild's hours since the last flush, without Server Members."""
        if self.collection.members:
            return frozenset()
        since = self._uncollected_from or now
        last = hour_index(now)
        first = max(hour_index(since), last - _MAX_MARKED_HOURS)
        for guild in self.bot.guilds:
            after = max(first, self._marked_through.get(guild.id, first - 1) + 1)
            self._uncollected.update((guild.id, hour) for hour in range(after, last + 1))
        self._uncollected_from = now
        return frozenset(self._uncollected)

    # -- member totals without the Server Members intent ----------------------------------------

    @tasks.loop(hours=1)
    async def approximate_totals(self) -> None:
        await self.refresh_member_totals()

    @approximate_totals.before_loop
    async def _before_totals(self) -> None:
        await self.bot.wait_until_ready()

    async def refresh_member_totals(self, guild_ids: list[int] | None = None) -> int:
        """Feed guilds' approximate member counts (REST) as their totals; returns how many.

        Without Server Members, discord.py's ``member_count`` is only what GUILD_CREATE
        said at connection: no join or part moves it. Default: every guild.
        """
        done = failed = 0
        last_error: Exception | None = None
        wanted = [guild.id for guild in self.bot.guilds] if guild_ids is None else guild_ids
        for guild_id in wanted:
            try:
                fetched = await self.bot.fetch_guild(guild_id, with_counts=True)
            except discord.HTTPException as exc:
                failed += 1
                last_error = exc
                continue
            if fetched.approximate_member_count is not None:
                self.stats.collector.member_total(
                    guild_id, fetched.approximate_member_count, self.stats.clock()
                )
                done += 1
        if failed:
            log.warning(
                "approximate member count unavailable for %d guilds (retried in an hour): %s",
                failed,
                last_error,
            )
        return done

    # -- listeners: plain values only --------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        # The hottest path of all: plain attribute reads, the time taken from the id.
        guild = message.guild
        if guild is None or message.webhook_id is not None:
            return
        author = message.author
        if author.bot:
            return
        channel_id, message_id = message.channel.id, message.id
        if channel_id not in self._first_live:
            self._first_live[channel_id] = message_id
            self._new_starts[(guild.id, channel_id)] = message_id
        self.stats.collector.message_at_ms(
            guild.id, channel_id, author.id, (message_id >> 22) + _DISCORD_EPOCH_MS
        )

    @commands.Cog.listener()
    async def on_member_join(self, member: discord.Member) -> None:
        now = self.stats.clock()
        self.stats.collector.join(member.guild.id, member.id, now, bot=member.bot)
        self._member_total(member.guild, now)

    @commands.Cog.listener()
    async def on_raw_member_remove(self, payload: discord.RawMemberRemoveEvent) -> None:
        now = self.stats.clock()
        self.stats.collector.part(payload.guild_id, payload.user.id, now, bot=payload.user.bot)
        guild = self.bot.get_guild(payload.guild_id)
        if guild is not None:
            self._member_total(guild, now)

    @commands.Cog.listener()
    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        # Copy plain values now: discord.py hands us its live cached state.
        guild_id, user_id, bot = member.guild.id, member.id, member.bot
        channel_id = self._counted_voice_channel(member.guild, after.channel)
        self.stats.voice.update(guild_id, user_id, channel_id, self.stats.clock(), bot=bot)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        self._snapshot_all()
        if not self._announced:  # once connected: Discord accepted these intents
            self._announced = True
            log.info("guildmeter collects: %s", "; ".join(self.collection.lines()))
            for line in self.collection.missing():
                log.warning("guildmeter: %s", line)

    @commands.Cog.listener()
    async def on_resumed(self) -> None:
        self._snapshot_all()

    @commands.Cog.listener()
    async def on_disconnect(self) -> None:
        if self._lost_since is None:
            self._lost_since = self.stats.clock()

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        self._note_start(guild.id, self.stats.clock())
        self._snapshot(guild, self.stats.clock(), None)
        if not self.collection.members:
            await self.refresh_member_totals([guild.id])

    @commands.Cog.listener()
    async def on_guild_channel_create(self, channel: discord.abc.GuildChannel) -> None:
        self.stats.collector.name_channel(channel.guild.id, channel.id, channel.name)

    @commands.Cog.listener()
    async def on_guild_channel_update(
        self, _before: discord.abc.GuildChannel, after: discord.abc.GuildChannel
    ) -> None:
        self.stats.collector.name_channel(after.guild.id, after.id, after.name)

    # -- helpers ------------------------------------------------------------------------------

    def _snapshot_all(self) -> None:
        now, lost_since = self.stats.clock(), self._lost_since
        self._lost_since = None
        for guild in self.bot.guilds:
            self._note_start(guild.id, now)
            self._snapshot(guild, now, lost_since)

    def _note_start(self, guild_id: int, now: datetime) -> None:
        """Live counting of the guild begins (if it never did before: the row is kept)."""
        if guild_id not in self._guilds_started:
            self._guilds_started.add(guild_id)
            self._new_starts[(guild_id, GUILD_WIDE)] = snowflake_at(now)

    def _snapshot(self, guild: discord.Guild, now: datetime, lost_since: datetime | None) -> None:
        """Channel names, member total and who is in voice: after a (re)connection."""
        for channel in guild.channels:
            self.stats.collector.name_channel(guild.id, channel.id, channel.name)
        present: dict[int, int] = {}
        for channel in guild.voice_channels + guild.stage_channels:
            counted = self._counted_voice_channel(guild, channel)
            if counted is None:
                continue
            for user_id, state in channel.voice_states.items():
                member = guild.get_member(user_id)
                if state.channel is not None and not (member is not None and member.bot):
                    present[user_id] = counted
        self.stats.voice.rebuild(guild.id, present, now, lost_since=lost_since)
        self._member_total(guild, now)

    def _member_total(self, guild: discord.Guild, now: datetime) -> None:
        # Without Server Members the count would be frozen at connection: see
        # `refresh_member_totals`.
        if self.collection.members and guild.member_count is not None:
            self.stats.collector.member_total(guild.id, guild.member_count, now)

    @staticmethod
    def _counted_voice_channel(
        guild: discord.Guild, channel: discord.abc.Connectable | None
    ) -> int | None:
        """The voice channel's id, or None when not in voice or in the AFK channel."""
        if channel is None:
            return None
        afk = guild.afk_channel
        channel_id: int = channel.id  # type: ignore[attr-defined]
        return None if afk is not None and afk.id == channel_id else channel_id
