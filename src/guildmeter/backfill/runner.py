"""One guild's history backfill: channels read newest to oldest, counted, committed with
their cursors, past months anonymised at the end.

The event loop only awaits Discord (through discord.py) and hands pages over; counting
and every database call run in the executor the caller gives (the bot's backfill thread,
never asyncio's default executor nor the flush's thread). A few channels are read at once;
a bounded queue between the readers and the single writer keeps memory flat however long
the history. Each write is one transaction: the counts of some pages and the cursors of
their channels (`guildmeter.store.backfill`), so a crash loses no count and a resume
counts nothing twice.

`stop` ends a run between pages: "cancelled" (a moderator asked: the months it wrote are
anonymised now, nothing resumes) or "paused" (the bot shuts down: it resumes on the next
start, with the same keys while its months are held).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import discord

from guildmeter.backfill.counting import HistoryCounter
from guildmeter.backfill.source import Channel, HistorySource
from guildmeter.collect.accumulator import CountKey
from guildmeter.errors import GuildmeterError, StoreUnavailableError
from guildmeter.events import EventKind
from guildmeter.privacy.keyring import Keyring
from guildmeter.privacy.optout import OptOuts
from guildmeter.store import AnonymisationResult
from guildmeter.store.backfill import (
    CANCELLED,
    CLAIM_SECONDS,
    DONE,
    FAILED,
    GUILD_WIDE,
    RUNNING,
    BackfillRun,
    claim_run,
    ensure_guild_start,
    finish_run,
    peek_run,
    read_cursors,
    read_live_starts,
    release_run,
    snowflake_at,
    time_of_snowflake,
    write_progress,
)
from guildmeter.store.overlap import imported_hours
from guildmeter.store.retention import PastRetention
from guildmeter.store.rights import RightsStore
from guildmeter.store.snapshots import Discarded, collecting_discards
from guildmeter.store.sql import Store
from guildmeter.timeutil import add_months, month_of, utcnow

__all__ = ["MAX_DAYS", "Backfill", "BackfillBusy", "Progress"]

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_DAYS = 366
_WRITE_PAGES = 25  # pages per transaction at most
_WRITE_EVERY_S = 1.0  # and at least this often while pages arrive
_BEAT_EVERY_S = 20.0  # a heartbeat when no page arrives (all waiting on rate limits)
_QUEUE_PAGES = 32  # pages read but not yet written, at most
_WRITE_ATTEMPTS = 7  # 1 + 2 + ... + 32 s of waiting for the database


class BackfillBusy(GuildmeterError):
    """A backfill of this guild is running already (here or in another process)."""


@dataclass
class Progress:
    """What a run has done so far (read on the loop by whoever reports it)."""

    days: int = 0
    channels_total: int = 0
    channels_done: int = 0
    channels_unreadable: int = 0
    messages_read: int = 0
    messages_counted: int = 0
    requests: int = 0
    reached: datetime | None = None  # the oldest message time read so far
    joins: int | None = None  # None: joins were not recovered
    #: Read but discarded: their months' member rows were deleted by retention.
    messages_discarded: int = 0
    joins_discarded: int = 0
    past_retention: PastRetention | None = None
    #: Not counted: their hours were filled by a KazTron import (from, to).
    messages_skipped: int = 0
    joins_skipped: int = 0
    skipped_span: tuple[datetime, datetime] | None = None
    state: str = "starting"
    resumed: bool = False
    anonymised_months: list[int] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


@dataclass(frozen=True)
class _Committed:
    """One write's outcome: kept, finished channels, and what it left out."""

    event: int  # what was counted: messages or joins
    counted: int
    finished: int
    discarded: Discarded
    skipped: int  # of hours an import filled
    skipped_span: tuple[datetime, datetime] | None


@dataclass
class _Written:
    channel_id: int
    name: str
    rows: list[tuple[int, int]]
    cursor: int
    finished: bool


class Backfill:
    """See the module docstring. ``run`` once; ``stop`` from anywhere on the loop."""

    def __init__(
        self,
        store: Store,
        source: HistorySource,
        guild_id: int,
        days: int | None,
        *,
        executor: Executor,
        optouts: OptOuts | None = None,
        ignored_users: Iterable[int] = (),
        ignored_channels: Iterable[int] = (),
        anonymise_grace: timedelta = timedelta(0),
        members: Callable[[], Any] | None = None,
        reply_channel_id: int | None = None,
        concurrency: int = 6,
        claim_seconds: float = CLAIM_SECONDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """``days`` None: resume the guild's interrupted run. ``members``: an async iterable
        factory of ``(user id, joined at, bot)`` (joins), or None when not available."""
        if days is not None and not 1 <= days <= MAX_DAYS:
            raise GuildmeterError(f"a backfill reaches 1 to {MAX_DAYS} days back (got {days})")
        self.store = store
        self.source = source
        self.guild_id = guild_id
        self.days = days
        self.executor = executor
        self.own_optouts = optouts is None
        self.optouts = optouts if optouts is not None else OptOuts()
        self.ignored_users = frozenset(ignored_users)
        self.ignored_channels = frozenset(ignored_channels)
        self.anonymise_grace = anonymise_grace
        self.members = members
        self.reply_channel_id = reply_channel_id
        self.concurrency = max(1, concurrency)
        self.claim_seconds = claim_seconds
        self.clock = clock
        self.owner = secrets.token_hex(16)
        self.progress = Progress(days=days or 0, resumed=days is None)
        self._stopping: str | None = None
        self._counter = HistoryCounter(
            store, guild_id, Keyring(self.optouts), ignored_users=self.ignored_users
        )

    def stop(self, reason: str = CANCELLED) -> None:
        """End between pages: "cancelled" or "paused" (see the module docstring)."""
        if self._stopping is None:
            self._stopping = reason

    @property
    def stopping(self) -> bool:
        return self._stopping is not None

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # -- the run ---------------------------------------------------------------------------------

    async def run(self) -> Progress:
        """Ask Discord first (the channels): a refused token, an unknown server or an
        unreachable API leaves the database as it was — no run, no live start."""
        progress = self.progress
        now = self.clock()
        stored, busy = await self._io(
            functools.partial(peek_run, claim_seconds=self.claim_seconds),
            self.store,
            self.guild_id,
        )
        resumable = stored is not None and stored.state == RUNNING
        if busy or (self.days is None and not resumable):
            raise self._busy()
        if self.days is not None:
            target = snowflake_at(now - timedelta(days=self.days))
        else:
            assert stored is not None
            target = stored.target_id
        progress.state = "listing channels"
        try:
            channels = await self.source.channels(time_of_snowflake(target))
        except BaseException:
            progress.state = FAILED
            raise
        run = await self._io(self._claim, now)
        if run is None:
            raise self._busy()
        if run.target_id != target:  # another run's target was resumed meanwhile
            channels = await self.source.channels(time_of_snowflake(run.target_id))
        progress.days = run.days
        state = FAILED
        try:
            await self._count(run, now, channels)
            state = self._stopping or DONE
        except asyncio.CancelledError:
            state = "paused"
            raise
        finally:
            progress.state = state
            if state == "paused":
                await asyncio.shield(self._io(release_run, self.store, self.guild_id, self.owner))
            else:
                await asyncio.shield(self._io(self._finish, state))
        return progress

    def _busy(self) -> BackfillBusy:
        return BackfillBusy(
            "a backfill of this server is already running"
            if self.days is not None
            else "no interrupted backfill of this server to resume"
        )

    def _claim(self, now: datetime) -> BackfillRun | None:
        """In the executor: claim the run, pin the live start, read where it stopped."""
        if self.own_optouts:
            self.optouts.refresh(RightsStore(self.store))
        self.store.reload_calendars()
        target = None if self.days is None else snowflake_at(now - timedelta(days=self.days))
        run = claim_run(
            self.store,
            self.guild_id,
            self.owner,
            target_id=target,
            days=self.days or 0,
            reply_channel_id=self.reply_channel_id,
            claim_seconds=self.claim_seconds,
        )
        if run is not None:
            # No live start yet (the bot never counted this guild): live counting, when it
            # starts, counts from now on; the history is everything before.
            ensure_guild_start(self.store, self.guild_id, snowflake_at(now))
        return run

    async def _count(self, run: BackfillRun, now: datetime, listed: list[Channel]) -> None:
        progress = self.progress
        target = run.target_id
        # A deeper earlier run is never undone: its cursors are lower, channels simply stop.
        starts = await self._io(read_live_starts, self.store, self.guild_id)
        cursors = await self._io(read_cursors, self.store, self.guild_id)
        await self._io(self._skip_imported, target, now)
        now_id = snowflake_at(now)
        channels = [
            c
            for c in listed
            if c.id not in self.ignored_channels and c.parent_id not in self.ignored_channels
        ]
        work: list[tuple[Channel, int]] = []
        for channel in channels:
            boundary = starts.boundary(channel.id, now_id)
            covered = min(cursors.get(channel.id, boundary), boundary)
            if covered > target and channel.id < covered:
                work.append((channel, covered))
        progress.channels_total = len(channels)
        progress.channels_done = len(channels) - len(work)
        progress.state = "reading history"
        queue: asyncio.Queue[_Written | None] = asyncio.Queue(_QUEUE_PAGES)
        todo: asyncio.Queue[tuple[Channel, int]] = asyncio.Queue()
        for item in work:
            todo.put_nowait(item)
        writer = asyncio.create_task(self._writer(queue))
        readers = [
            asyncio.create_task(self._reader(todo, queue, target))
            for _ in range(min(self.concurrency, len(work)) or 1)
        ]
        reading = asyncio.gather(*readers)
        try:
            watched: set[asyncio.Future[Any]] = {reading, writer}
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if writer.done():  # it failed (it ends only after None): readers would wait
                writer.result()
            await reading
            await queue.put(None)
            await writer
        except BaseException:
            for task in (*readers, writer):
                task.cancel()
            await asyncio.gather(*readers, writer, return_exceptions=True)
            raise
        if not self.stopping and self.members is not None:
            progress.state = "counting joins"
            guild_start = starts.guild if starts.guild is not None else now_id
            await self._joins(cursors.get(GUILD_WIDE, guild_start), target)

    def _skip_imported(self, target: int, now: datetime) -> None:
        """In the executor: the hours of the window a KazTron import filled are not
        counted again (`guildmeter.store.overlap`); read after the claim, which waited
        for any import in progress."""
        calendar = self.store.calendars.get(self.guild_id)
        first = calendar.bucket_of(time_of_snowflake(target))
        end = calendar.bucket_of(now) + 1
        self._counter.skip_hours(imported_hours(self.store, self.guild_id, first, end))

    async def _reader(
        self,
        todo: asyncio.Queue[tuple[Channel, int]],
        out: asyncio.Queue[_Written | None],
        target: int,
    ) -> None:
        progress = self.progress
        while not self.stopping:
            try:
                channel, before = todo.get_nowait()
            except asyncio.QueueEmpty:
                return
            while not self.stopping:
                page = await self.source.page(channel.id, before)
                progress.requests = self.source.requests
                if page is None:
                    progress.channels_unreadable += 1
                    progress.channels_done += 1
                    break
                rows = [row for row in page.rows if row[0] >= target]
                finished = page.last or page.oldest_id is None or page.oldest_id <= target
                cursor = target if finished else int(page.oldest_id or target)
                progress.messages_read += page.size
                if page.oldest_id is not None:
                    reached = time_of_snowflake(max(page.oldest_id, target))
                    if progress.reached is None or reached < progress.reached:
                        progress.reached = reached
                await out.put(_Written(channel.id, channel.name, rows, cursor, finished))
                if finished:
                    break
                before = cursor

    async def _writer(self, queue: asyncio.Queue[_Written | None]) -> None:
        """The only writer: takes pages as they come, one transaction per few of them."""
        loop = asyncio.get_running_loop()
        pending: list[_Written] = []
        first_at = last_write = loop.time()
        ended = False
        while not ended:
            timeout = _WRITE_EVERY_S if pending else _BEAT_EVERY_S
            try:
                item = await asyncio.wait_for(queue.get(), timeout)
            except TimeoutError:
                item = _TIMEOUT
            if item is None:
                ended = True
            elif item is not _TIMEOUT:
                if not pending:
                    first_at = loop.time()
                pending.append(item)
            due = (
                ended
                or len(pending) >= _WRITE_PAGES
                or (pending and loop.time() - first_at >= _WRITE_EVERY_S)
                or (not pending and loop.time() - last_write >= _BEAT_EVERY_S)
            )
            if due:
                batch, pending = pending, []
                committed = await self._write_retrying(batch)
                self.progress.messages_counted += committed.counted
                self.progress.channels_done += committed.finished
                self._note(committed)
                last_write = loop.time()

    def _note(self, committed: _Committed) -> None:
        """On the loop: what a committed write left out into the progress — messages of
        hours an import filled (skipped), counts past retention (discarded)."""
        progress = self.progress
        if committed.skipped:
            if committed.event == _MSG:
                progress.messages_skipped += committed.skipped
            else:
                progress.joins_skipped += committed.skipped
            span = committed.skipped_span
            if span is not None and progress.skipped_span is not None:
                old = progress.skipped_span
                span = (min(span[0], old[0]), max(span[1], old[1]))
            progress.skipped_span = span
        past = PastRetention.of(committed.discarded, self.guild_id)
        if past is None:
            return
        for key, count in committed.discarded.counts.items():
            if key[2] == _MSG:
                progress.messages_discarded += count
            elif key[2] == _JOIN:
                progress.joins_discarded += count
        progress.past_retention = past.merged(progress.past_retention)

    async def _write_retrying(self, batch: list[_Written]) -> _Committed:
        """`_write`, retried while the database is unreachable (a transaction that failed
        left nothing behind), for about two minutes."""
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                return await self._io(self._write, batch)
            except StoreUnavailableError as exc:
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise
                log.warning("backfill write failed (%s); retrying in %d s", exc, 2**attempt)
                await asyncio.sleep(2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _write(self, batch: list[_Written]) -> _Committed:
        """In the executor: count the pages and commit them with their cursors."""
        counts: dict[CountKey, int] = {}
        skipped: Counter[int] = Counter()
        counted = self._counter.count_messages(
            [(item.channel_id, item.rows) for item in batch], counts, skipped
        )
        names = {(self.guild_id, item.channel_id): item.name for item in batch if item.name}
        cursors: dict[int, int] = {}
        for item in batch:  # pages of a channel come oldest last: the last cursor wins
            cursors[item.channel_id] = min(cursors.get(item.channel_id, item.cursor), item.cursor)
        with collecting_discards() as discarded:
            write_progress(self.store, self.guild_id, self.owner, counts, names, cursors)
        counted -= sum(n for key, n in discarded.counts.items() if key[2] == _MSG)
        finished = sum(1 for item in batch if item.finished)
        return self._committed(_MSG, counted, finished, discarded, skipped)

    def _committed(
        self, event: int, counted: int, finished: int, discarded: Discarded, skipped: Counter[int]
    ) -> _Committed:
        span = None
        if skipped:
            calendar = self.store.calendars.get(self.guild_id)
            span = (
                calendar.bucket_start(min(skipped)),
                datetime.fromtimestamp(calendar.bucket_end_s(max(skipped)), UTC),
            )
        return _Committed(event, counted, finished, discarded, sum(skipped.values()), span)

    async def _joins(self, covered: int, target: int) -> None:
        """Joins of current members inside the window, from their ``joined_at``."""
        if covered <= target or self.members is None:
            self.progress.joins = 0 if covered <= target else None
            return
        start, end = time_of_snowflake(target), time_of_snowflake(covered)
        found: list[tuple[int, datetime]] = []
        try:
            async for user_id, joined_at, bot in self.members():
                if not bot and start <= joined_at < end:
                    found.append((user_id, joined_at))
        except discord.Forbidden:
            self.progress.joins = None  # no Server Members intent: REST refuses the list
            return
        committed = await self._io(self._write_joins, found, target)
        self.progress.joins = committed.counted
        self._note(committed)

    def _write_joins(self, joins: list[tuple[int, datetime]], target: int) -> _Committed:
        counts: dict[CountKey, int] = {}
        skipped: Counter[int] = Counter()
        joined = self._counter.count_joins(joins, counts, skipped)
        with collecting_discards() as discarded:
            write_progress(self.store, self.guild_id, self.owner, counts, {}, {GUILD_WIDE: target})
        joined -= sum(n for key, n in discarded.counts.items() if key[2] == _JOIN)
        return self._committed(_JOIN, joined, 0, discarded, skipped)

    def _finish(self, state: str) -> list[AnonymisationResult]:
        """In the executor: anonymise the guild's finished months (those this run wrote
        included: their keys are destroyed now), then end the run."""
        now = self.clock()
        done = _anonymise_guild(self.store, self.guild_id, now, self.anonymise_grace)
        if done:
            self.store.scrub()
        self.progress.anonymised_months = sorted(r.month for r in done)
        finish_run(self.store, self.guild_id, self.owner, state)
        return done


_TIMEOUT: Any = object()
_MSG, _JOIN = int(EventKind.MSG), int(EventKind.JOIN)


def _anonymise_guild(
    store: Store, guild_id: int, now: datetime, grace: timedelta
) -> list[AnonymisationResult]:
    """Every finished month of one guild still holding a key or pseudonyms: the month
    end's rule (`guildmeter.activity.anonymise_finished_months`) for this guild only, our
    own hold ignored."""
    calendar = store.calendars.get(guild_id)
    done = []
    for guild, month in store.months_to_anonymise(add_months(month_of(now), 1)):
        if guild != guild_id:
            continue
        if calendar.month_start(add_months(month, 1)) + grace > now:
            continue
        done.append(store.anonymise_month(guild, month))
    return done
