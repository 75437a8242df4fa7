"""Activity statistics as one object: collector, keyring and store, flush and month-end.

The event path calls ``collector`` and ``voice`` (memory only). The flush runs in three
steps so that an asyncio host can keep its loop free: `load_keys` (I/O, in a thread),
`take_batch` (memory, on the loop: it must not race the listeners) and `write` (I/O, in a
thread). `flush` runs the three in a row for synchronous callers (CLI, demo, tests).
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
from guildmeter.store.rights import RightsStore
from guildmeter.timeutil import month_of, month_start, utcnow
from guildmeter.usage.tracker import UsageTracker

__all__ = ["ActivityStats", "FlushResult", "anonymise_finished_months"]

log = logging.getLogger(__name__)

_PRUNE_EVERY = timedelta(hours=1)


@dataclass
class FlushResult:
    """What one flush did; ``error`` is set when the store could not be reached."""

    rows_written: int = 0
    usage_records_written: int = 0
    batches_written: int = 0
    batches_waiting: int = 0
    anonymised: list[AnonymisationResult] = field(default_factory=list)
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
        )
        self.voice = VoiceTracker(self.collector)
        #: Bot-usage records (commands, generations, actions), written with each flush.
        self.usage = UsageTracker(
            self.keyring, store_prompts=store_prompts, clock=clock, optouts=self.optouts
        )
        self.anonymise_grace = anonymise_grace
        self.clock = clock
        self._waiting: list[Batch] = []
        self._pruned_at: datetime | None = None

    @classmethod
    def from_config(cls, config: Config) -> ActivityStats:
        """Open the configured store (I/O: migrations) and build the engine on it."""
        return cls(
            Store.open(config.db),
            ignored_users=config.ignored_users,
            ignored_channels=config.ignored_channels,
            anonymise_grace=timedelta(seconds=config.anonymise_grace_seconds),
            store_prompts=config.store_prompts,
        )

    # -- the three flush steps ----------------------------------------------------------------

    def load_keys(self, pairs: Iterable[tuple[int, int]] | None = None) -> None:
        """Fetch or create the keys the collector is waiting for (I/O)."""
        needed = self.collector.keys_needed() if pairs is None else set(pairs)
        self.keyring.load(self.store, sorted(needed))

    def take_batch(self, now: datetime | None = None) -> Batch:
        """Credit open voice sessions, resolve pending counts and drain memory (no I/O)."""
        self.voice.checkpoint(now or self.clock())
        self.collector.resolve_pending()
        batch = self.collector.drain()
        if batch.counts or batch.channels:
            self._waiting.append(batch)
        self.usage.take()
        return batch

    def write(self, now: datetime | None = None) -> FlushResult:
        """Write every waiting batch, oldest first, then run the month-end job if due (I/O).

        A batch that fails stays waiting, whole, and is retried by the next call; its id is
        recorded with its rows, so it cannot be applied twice.
        """
        result = FlushResult()
        try:
            self.refresh_optouts()
            while self._waiting:
                result.rows_written += self.store.write_batch(self._waiting[0])
                self._waiting.pop(0)
                result.batches_written += 1
            result.usage_records_written = self.usage.write(self.store)
            now = now or self.clock()
            result.anonymised = self._month_end(now)
            if self._pruned_at is None or now - self._pruned_at >= _PRUNE_EVERY:
                self.store.prune_flush_log()  # batch ids older than any retry can be
                self._pruned_at = now
        except StoreUnavailableError as exc:
            result.error = str(exc)
            log.warning("flush failed, %d batches kept for retry: %s", len(self._waiting), exc)
        result.batches_waiting = len(self._waiting) + self.usage.waiting_batches
        return result

    def flush(self, now: datetime | None = None) -> FlushResult:
        """All three steps in a row (for synchronous callers)."""
        now = now or self.clock()
        self.voice.checkpoint(now)  # first: the seconds it credits may need a key
        try:
            self.load_keys()
        except StoreUnavailableError as exc:
            log.warning("could not load keys, counts kept pending: %s", exc)
        self.take_batch(now)
        return self.write(now)

    def close(self, now: datetime | None = None) -> FlushResult:
        """Clean shutdown: close voice sessions and flush everything."""
        now = now or self.clock()
        self.voice.close_all(now)
        return self.flush(now)

    def refresh_optouts(self) -> None:
        """Reload the opt-out list (I/O): at start-up, and each flush for other processes'.

        Pseudonyms cached for guilds whose list changed are recomputed on their next event.
        """
        self.keyring.drop_guilds(self.optouts.refresh(RightsStore(self.store)))

    def opt_out(self, guild_id: int, user_id: int) -> bool:
        """Record a member's opt-out (I/O: in a thread); honoured from this moment."""
        added = self.optouts.opt_out(RightsStore(self.store), guild_id, user_id)
        self.keyring.forget(guild_id, user_id)  # its next event looks the choice up
        return added

    def opt_in(self, guild_id: int, user_id: int) -> bool:
        """Remove a member's opt-out (I/O: in a thread); counted again from this moment."""
        removed = self.optouts.opt_in(RightsStore(self.store), guild_id, user_id)
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

    # -- month end ------------------------------------------------------------------------------

    def _month_end(self, now: datetime) -> list[AnonymisationResult]:
        current = month_of(now)
        if now < month_start(current) + self.anonymise_grace:
            return []
        if self._waiting or self.collector.has_pending_for_month_before(current):
            return []  # old-month counts not yet stored: anonymise on a later flush
        done = anonymise_finished_months(self.store, now)
        for result in done:
            self.keyring.retire(result.guild_id, result.month)
        return done


def anonymise_finished_months(store: Store, now: datetime) -> list[AnonymisationResult]:
    """Anonymise every guild-month before ``now``'s month that still has a key or pseudonym."""
    done = []
    for guild_id, month in store.months_to_anonymise(month_of(now)):
        done.append(store.anonymise_month(guild_id, month))
        log.info("anonymised %d pseudonyms of month %d", done[-1].pseudonyms_replaced, month)
    if done:
        store.scrub()
    return done
