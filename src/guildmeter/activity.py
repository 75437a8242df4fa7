"""Activity statistics as one object: collector, keyring and store, flush and month-end.

The event path calls ``collector`` and ``voice`` (memory only). A flush is split so that an
asyncio host keeps its loop free and no structure the listeners change is ever read from a
worker thread: on the loop, `keys_needed`; in a thread, `fetch_keys` (I/O, changes no
memory); on the loop, `install_keys` and `take_batch` (drain memory, note whether old-month
counts are still held); in a thread, `write` (I/O on the batches only); on the loop,
`finish` (retire the keys of months just anonymised). `flush` runs them in a row for
synchronous callers (CLI, demo, tests).

Memory is bounded: batches waiting for a store that is down are merged (one per retry
plus one never sent), and once ``max_counters`` counters are held, new events are dropped
and counted, with a loud warning, rather than growing until the process dies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from guildmeter.collect import Accumulator, Batch, VoiceTracker
from guildmeter.config import Config
from guildmeter.errors import StoreUnavailableError
from guildmeter.privacy import Keyring
from guildmeter.privacy.optout import OptOuts
from guildmeter.store import AnonymisationResult, Store
from guildmeter.store.backfill import backfill_holds
from guildmeter.store.rights import RightsStore
from guildmeter.timeutil import add_months, month_of, utcnow
from guildmeter.usage.tracker import UsageTracker

__all__ = ["MAX_COUNTERS_IN_MEMORY", "ActivityStats", "FlushResult", "anonymise_finished_months"]

log = logging.getLogger(__name__)

_PRUNE_EVERY = timedelta(hours=1)
_SATURATION_LOG_EVERY = timedelta(minutes=1)
_SCRUB_WAIT_S = 0.5
_ANONYMISE_PER_FLUSH = 50
_NEVER_HELD = 10**8  # a month number above any real one

#: Counters held in memory at most (about 250 bytes each: ~500 MB), the high-water mark.
MAX_COUNTERS_IN_MEMORY = 2_000_000


@dataclass
class FlushResult:
    """What one flush did; ``error`` is set when the store could not be reached."""

    rows_written: int = 0
    usage_records_written: int = 0
    batches_written: int = 0
    batches_waiting: int = 0
    anonymised: list[AnonymisationResult] = field(default_factory=list)
    #: Guilds whose opt-out list changed (their cached pseudonyms are dropped on the loop).
    optouts_changed: set[int] = field(default_factory=set)
    error: str | None = None


class ActivityStats:
    """See the module docstring."""

    def __init__(
        self,
        store: Store,
        *,
        ignored_users: Iterable[int] = (),
        ignored_channels: Iterable[int] = (),
        anonymise_grace: timedelta = timedelta(0),
        store_prompts: bool = False,
        max_counters: int = MAX_COUNTERS_IN_MEMORY,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        #: Members' opt-outs, shared by every counter; refreshed from the store each flush.
        self.optouts = OptOuts()
        self.keyring = Keyring(self.optouts)
        self.collector = Accumulator(
            self.keyring,
            ignored_users=ignored_users,
            ignored_channels=ignored_channels,
            optouts=self.optouts,
            calendars=store.calendars,
        )
        self.voice = VoiceTracker(self.collector)
        #: Bot-usage records (commands, generations, actions), written with each flush.
        self.usage = UsageTracker(
            self.keyring,
            store_prompts=store_prompts,
            clock=clock,
            optouts=self.optouts,
            calendar_of=self.collector.calendar,
        )
        self.anonymise_grace = anonymise_grace
        self.clock = clock
        self.max_counters = max_counters
        self._waiting: list[Batch] = []
        self._head_attempted = False  # _waiting[0] was sent: its commit may have landed
        self._old_months_in_memory = False
        self._scrub_pending = False
        self._rewrite_members_pending = False
        self._pruned_at: datetime | None = None
        self._failing_since: datetime | None = None
        self._saturation_logged: datetime | None = None
        self._dropped_logged = 0

    @classmethod
    def from_config(cls, config: Config) -> ActivityStats:
        """Open the configured store (I/O: migrations) and build the engine on it."""
        store = Store.open(config.db)
        store.reload_calendars(config.default_timezone)
        return cls(
            store,
            ignored_users=config.ignored_users,
            ignored_channels=config.ignored_channels,
            anonymise_grace=timedelta(seconds=config.anonymise_grace_seconds),
            store_prompts=config.store_prompts,
            max_counters=config.max_counters_in_memory,
        )

    # -- the flush steps ----------------------------------------------------------------------

    def keys_needed(self) -> set[tuple[int, int]]:
        """(guild, month) pairs whose key memory is waiting for (on the loop)."""
        return self.collector.keys_needed() | self.usage.keys_needed()

    def fetch_keys(self, pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes | None]:
        """Fetch or create keys (I/O, in a thread; changes nothing in memory)."""
        return self.keyring.fetch(self.store, sorted(pairs))

    def install_keys(self, fetched: dict[tuple[int, int], bytes | None]) -> None:
        """Hand fetched keys to the keyring (on the loop)."""
        self.keyring.install(fetched)

    def load_keys(self, pairs: Iterable[tuple[int, int]] | None = None) -> None:
        """`fetch_keys` then `install_keys`, for synchronous callers."""
        self.install_keys(self.fetch_keys(self.keys_needed() if pairs is None else pairs))

    def take_batch(self, now: datetime | None = None) -> Batch:
        """Credit open voice sessions, resolve pending counts and drain memory (on the loop).

        A batch that was never sent is merged into the last waiting one, so an outage
        holds each counter once, not once per flush.
        """
        now = now or self.clock()
        self.voice.checkpoint(now)
        self.collector.resolve_pending()
        batch = self.collector.drain()
        if batch.counts or batch.channels:
            if self._waiting and not (len(self._waiting) == 1 and self._head_attempted):
                self._waiting[-1].absorb(batch)
            else:
                self._waiting.append(batch)
        self.usage.take()
        self._old_months_in_memory = self.collector.has_pending_for_month_before(now)
        self.collector.saturated = self.counters_in_memory >= self.max_counters
        return batch

    def write(self, now: datetime | None = None) -> FlushResult:
        """Write every waiting batch, oldest first, then run the month-end job if due (I/O).

        Runs in a worker thread: it reads only the batches `take_batch` handed over (the
        flush is serialised, so the loop does not touch them meanwhile) and the store. A
        batch that fails stays waiting, whole, and is retried by the next call; its id is
        recorded with its rows, so it cannot be applied twice.
        """
        result = FlushResult()
        try:
            result.optouts_changed = self.load_optouts()
            self.store.reload_calendars()  # another process may have set a zone
            while self._waiting:
                self._head_attempted = True
                result.rows_written += self.store.write_batch(self._waiting[0])
                self._waiting.pop(0)
                self._head_attempted = False
                result.batches_written += 1
            result.usage_records_written = self.usage.write(self.store)
            now = now or self.clock()
            result.anonymised = self._month_end(now)
            self._scrub_if_pending()
            if self._pruned_at is None or now - self._pruned_at >= _PRUNE_EVERY:
                self.store.prune_flush_log()  # batch ids older than any retry can be
                self._pruned_at = now
        except StoreUnavailableError as exc:
            result.error = str(exc)
        result.batches_waiting = len(self._waiting) + self.usage.waiting_batches
        return result

    def finish(self, result: FlushResult, now: datetime | None = None) -> None:
        """After `write`, on the loop: retire anonymised months' keys; report the state."""
        now = now or self.clock()
        self.collector.install_calendars(self.store.calendars)
        self.keyring.drop_guilds(result.optouts_changed)
        for done in result.anonymised:
            self.keyring.retire(done.guild_id, done.month)
        if result.error is None:
            if self._failing_since is not None:
                log.warning(
                    "the database is reachable again after %s; waiting counts written",
                    now - self._failing_since,
                )
            self._failing_since = None
        else:
            self._failing_since = self._failing_since or now
            log.warning(
                "flush failed (database unreachable since %s): %d counters and %d usage "
                "records wait in memory (high-water mark %d): %s",
                self._failing_since.isoformat(timespec="seconds"),
                self.counters_in_memory,
                self.usage.records_in_memory,
                self.max_counters,
                result.error,
            )
        # Written at last: accept new events again straight away.
        self.collector.saturated = self.counters_in_memory >= self.max_counters
        self._report_drops(now)

    def flush(self, now: datetime | None = None) -> FlushResult:
        """Every step in a row (for synchronous callers)."""
        now = now or self.clock()
        self.voice.checkpoint(now)  # first: the seconds it credits may need a key
        try:
            self.load_keys()
        except StoreUnavailableError as exc:
            log.warning("could not load keys, counts kept pending: %s", exc)
        self.take_batch(now)
        result = self.write(now)
        self.finish(result, now)
        return result

    def close(self, now: datetime | None = None) -> FlushResult:
        """Clean shutdown: close voice sessions and flush everything."""
        now = now or self.clock()
        self.voice.close_all(now)
        return self.flush(now)

    def load_optouts(self) -> set[int]:
        """Reload the opt-out list (I/O, may run in a thread); returns the guilds it changed.

        The caller drops those guilds' cached pseudonyms on the loop
        (``keyring.drop_guilds``): they are recomputed on their next event.
        """
        return self.optouts.refresh(RightsStore(self.store))

    def refresh_optouts(self) -> None:
        """`load_optouts` and the cache drop in one call, for callers without a loop."""
        self.keyring.drop_guilds(self.load_optouts())

    def save_opt_out(self, guild_id: int, user_id: int) -> bool:
        """Record a member's opt-out (I/O, may run in a thread); honoured from this moment.

        The caller then drops the member's cached pseudonyms on the loop
        (``keyring.forget``), as `opt_out` does.
        """
        return self.optouts.opt_out(RightsStore(self.store), guild_id, user_id)

    def save_opt_in(self, guild_id: int, user_id: int) -> bool:
        """Remove a member's opt-out (I/O, may run in a thread); see `save_opt_out`."""
        return self.optouts.opt_in(RightsStore(self.store), guild_id, user_id)

    def opt_out(self, guild_id: int, user_id: int) -> bool:
        """`save_opt_out` and the cache drop in one call, for callers without a loop."""
        added = self.save_opt_out(guild_id, user_id)
        self.keyring.forget(guild_id, user_id)  # its next event looks the choice up
        return added

    def opt_in(self, guild_id: int, user_id: int) -> bool:
        """`save_opt_in` and the cache drop in one call, for callers without a loop."""
        removed = self.save_opt_in(guild_id, user_id)
        self.keyring.forget(guild_id, user_id)
        return removed

    def forget_in_memory(self, guild_id: int | None, user_id: int, labels: Iterable[str]) -> int:
        """Drop a member's counts, sessions and records not yet written (forget-me; no I/O)."""
        wanted = set(labels)
        dropped = self.collector.forget(guild_id, user_id, wanted)
        dropped += self.voice.forget(guild_id, user_id)
        dropped += self.usage.forget(guild_id, user_id)
        for batch in self._waiting:
            for key in [k for k in batch.counts if k[3] in wanted and guild_id in (None, k[0])]:
                del batch.counts[key]
                dropped += 1
        self.keyring.forget(guild_id, user_id)
        return dropped

    @property
    def waiting_batches(self) -> int:
        return len(self._waiting) + self.usage.waiting_batches

    @property
    def counters_in_memory(self) -> int:
        """Counters held in memory: being collected, or waiting for the store."""
        return len(self.collector) + sum(len(batch) for batch in list(self._waiting))

    @property
    def dropped(self) -> int:
        """Events and usage records dropped at the high-water mark since start."""
        return self.collector.dropped + self.usage.dropped

    def _report_drops(self, now: datetime) -> None:
        dropped = self.dropped
        if not self.collector.saturated and dropped == self._dropped_logged:
            return
        first_drops = dropped > 0 and self._dropped_logged == 0  # said at once, then per minute
        recently = self._saturation_logged and now - self._saturation_logged < _SATURATION_LOG_EVERY
        if recently and not first_drops:
            return
        self._saturation_logged, self._dropped_logged = now, dropped
        if not self.collector.saturated:
            log.error(
                "below the high-water mark again: %d events and %d usage records were dropped "
                "while memory was full",
                self.collector.dropped,
                self.usage.dropped,
            )
            return
        log.error(
            "memory holds %d counters (high-water mark %d) waiting for the database: "
            "%d events and %d usage records dropped so far — check the database",
            self.counters_in_memory,
            self.max_counters,
            self.collector.dropped,
            self.usage.dropped,
        )

    # -- month end ------------------------------------------------------------------------------

    def _month_end(self, now: datetime) -> list[AnonymisationResult]:
        if self._waiting or self._old_months_in_memory:
            return []  # old-month counts not yet stored: anonymise on a later flush
        # A bounded share per flush: a bot in thousands of guilds would otherwise spend a
        # minute in one flush on the 1st; the rest follow in the next flushes.
        done = anonymise_finished_months(
            self.store, now, scrub=False, grace=self.anonymise_grace, limit=_ANONYMISE_PER_FLUSH
        )
        if done:
            self._scrub_pending = True
        return done

    def scrub_later(self, *, rewrite_members: bool = False) -> None:
        """Have the next flushes scrub the database files (e.g. after a forget-me whose
        own scrub could not finish at once)."""
        self._scrub_pending = True
        self._rewrite_members_pending |= rewrite_members

    def _scrub_if_pending(self) -> None:
        if not self._scrub_pending:
            return
        # Bounded: a long read (a moderator's dump) would hold up this flush, and every
        # write, for as long as it runs. Not finished now: the next flush tries again.
        done = self.store.scrub(wait_s=_SCRUB_WAIT_S, rewrite_members=self._rewrite_members_pending)
        if done:
            self._scrub_pending = self._rewrite_members_pending = False
        else:
            log.info("scrubbing the database files waits for a long read; retried next flush")


def anonymise_finished_months(
    store: Store,
    now: datetime,
    *,
    scrub: bool = True,
    grace: timedelta = timedelta(0),
    limit: int | None = None,
) -> list[AnonymisationResult]:
    """Anonymise every guild-month that ended ``grace`` before ``now`` on the guild's clock
    (its local midnight of the next 1st) and still has a key or pseudonym (at most
    ``limit`` of them).

    ``scrub``: then wipe the old bytes from the database files, waiting as long as needed.
    """
    done: list[AnonymisationResult] = []
    calendars = store.calendars
    # Local months end before or after the UTC month: ask for every month up to the next
    # UTC one, then keep those whose own end has passed.
    candidates = store.months_to_anonymise(add_months(month_of(now), 1))
    # Months a history backfill is still counting keep their key until it has finished
    # them (it anonymises them itself, at once): one pseudonym per member and month.
    held = backfill_holds(store, now) if candidates else {}
    for guild_id, month in candidates:
        if limit is not None and len(done) >= limit:
            break
        if month >= held.get(guild_id, _NEVER_HELD):
            continue
        if calendars.get(guild_id).month_start(add_months(month, 1)) + grace > now:
            continue
        done.append(store.anonymise_month(guild_id, month))
        log.info("anonymised %d pseudonyms of month %d", done[-1].pseudonyms_replaced, month)
    if done and scrub:
        store.scrub()
    return done
