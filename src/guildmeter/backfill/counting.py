"""Counting a page of channel history: local hour buckets, monthly pseudonyms, skips.

Runs in the backfill's own worker thread, with a keyring of its own (no structure here is
shared with the event loop). Keys are the store's, as for live counting: the current
month's is the live key (so a member has one pseudonym whether counted live or from
history), a past month's is made for it on first use and destroyed when the backfill
anonymises the month; a month already anonymised gives anonymous tokens, as late live
events do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from guildmeter.collect.accumulator import CountKey
from guildmeter.events import NO_CHANNEL, NO_USER, EventKind
from guildmeter.privacy.keyring import OPTED_OUT, Keyring
from guildmeter.store.backfill import DISCORD_EPOCH_MS
from guildmeter.store.sql import Store

__all__ = ["HistoryCounter"]

_MSG = int(EventKind.MSG)
_JOIN = int(EventKind.JOIN)


class HistoryCounter:
    """Turns ``(message id, author id)`` pairs into counts of one guild."""

    def __init__(
        self,
        store: Store,
        guild_id: int,
        keyring: Keyring,
        *,
        ignored_users: Iterable[int] = (),
    ) -> None:
        self.store = store
        self.guild_id = guild_id
        self.keyring = keyring
        self.ignored_users = frozenset(ignored_users)
        #: The current bucket: (first second, end second, bucket, month).
        self._span = (0, 0, 0, 0)
        self._loaded: set[int] = set()
        #: Buckets a KazTron import filled, per event: not counted again.
        self._filled: dict[int, frozenset[int]] = {}

    def skip_hours(self, filled: Mapping[int, Iterable[int]]) -> None:
        """Count no message (join) in these buckets: an import counted them already."""
        self._filled = {event: frozenset(hours) for event, hours in filled.items()}

    def _bucket(self, seconds: int) -> tuple[int, int]:
        start, end, bucket, month = self._span
        if not start <= seconds < end:
            calendar = self.store.calendars.get(self.guild_id)
            bucket = calendar.bucket_of_s(seconds)
            month = calendar.month_of_bucket(bucket)
            self._span = (
                calendar.bucket_start_s(bucket),
                calendar.bucket_end_s(bucket),
                bucket,
                month,
            )
        return bucket, month

    def _load_keys(self, months: set[int]) -> None:
        """Fetch (or make) the keys of these months (I/O, in this thread)."""
        wanted = [(self.guild_id, m) for m in sorted(months - self._loaded)]
        if wanted:
            self.keyring.install(self.keyring.fetch(self.store, wanted))
            self._loaded.update(m for _g, m in wanted)

    def count_messages(
        self,
        pages: Sequence[tuple[int, Sequence[tuple[int, int]]]],
        counts: dict[CountKey, int],
        skipped: Counter[int] | None = None,
    ) -> int:
        """Add ``[(channel, [(message id, author id), ...]), ...]`` to ``counts``.

        Returns the messages counted (opted-out members and ignored users are not);
        messages of hours an import filled go to ``skipped`` (per bucket) instead.
        """
        self._load_keys(
            {
                self._bucket(((mid >> 22) + DISCORD_EPOCH_MS) // 1000)[1]
                for _channel, rows in pages
                for mid, _uid in (*rows[:1], *rows[-1:])
            }
        )
        counted = 0
        guild_id, ignored, pseudonym = self.guild_id, self.ignored_users, self.keyring.pseudonym
        filled = self._filled.get(_MSG)
        for channel_id, rows in pages:
            for mid, uid in rows:
                if uid in ignored:
                    continue
                bucket, month = self._bucket(((mid >> 22) + DISCORD_EPOCH_MS) // 1000)
                if filled and bucket in filled:
                    if skipped is not None:
                        skipped[bucket] += 1
                    continue
                label = pseudonym(guild_id, month, uid)
                if label is None:  # a month inside the page whose key we did not foresee
                    self._load_keys({month})
                    label = pseudonym(guild_id, month, uid)
                if label is None or label is OPTED_OUT:
                    continue
                key = (guild_id, bucket, _MSG, label, channel_id)
                counts[key] = counts.get(key, 0) + 1
                counted += 1
        return counted

    def count_joins(
        self,
        joins: Iterable[tuple[int, datetime]],
        counts: dict[CountKey, int],
        skipped: Counter[int] | None = None,
    ) -> int:
        """Add ``[(user id, joined at), ...]`` as joins; an opted-out member's join counts
        for nobody, as live counting does (totals stay right, no one is linked to it).
        Returns the joins counted; those of hours an import filled go to ``skipped``."""
        joined = [
            (uid, int(when.timestamp())) for uid, when in joins if uid not in self.ignored_users
        ]
        filled = self._filled.get(_JOIN) or frozenset()
        kept = []
        for uid, seconds in joined:
            bucket = self._bucket(seconds)[0]
            if bucket in filled:
                if skipped is not None:
                    skipped[bucket] += 1
            else:
                kept.append((uid, seconds))
        self._load_keys({self._bucket(seconds)[1] for _uid, seconds in kept})
        for uid, seconds in kept:
            bucket, month = self._bucket(seconds)
            label = self.keyring.pseudonym(self.guild_id, month, uid)
            if label is None:
                continue
            if label is OPTED_OUT:
                label = NO_USER
            key = (self.guild_id, bucket, _JOIN, label, NO_CHANNEL)
            counts[key] = counts.get(key, 0) + 1
        return len(kept)
