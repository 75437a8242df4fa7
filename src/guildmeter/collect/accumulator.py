"""Hourly counters per (guild, hour bucket, event, pseudonym, channel).

Buckets and months are the guild's own (`guildmeter.zones`): for a UTC guild a bucket is
the UTC hour index, for others a local hour.

Listeners call the methods below from the event loop; they only touch dictionaries. The
raw user id is turned into the month's pseudonym by the keyring's in-memory cache; while a
guild-month's key has not been loaded yet (first event of a new guild or month), the count
waits in a small pending map and is resolved by `resolve_pending` after the flusher has
loaded the key off the loop.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from guildmeter.errors import InvalidEventError
from guildmeter.events import NO_CHANNEL, NO_USER, EventKind
from guildmeter.privacy.keyring import OPTED_OUT, Keyring
from guildmeter.privacy.optout import OptOuts
from guildmeter.zones import Calendars, GuildCalendar

__all__ = ["Accumulator", "Batch", "CountKey"]

#: (guild_id, hour bucket, event code, user label, channel id)
CountKey = tuple[int, int, int, str, int]
_PendingKey = tuple[int, int, int, int, int]  # same, with the raw user id


@dataclass(frozen=True, slots=True)
class Batch:
    """Counts drained from memory, written to the store in one transaction.

    ``batch_id`` is recorded with the write, so a batch whose commit outcome was unknown
    (connection lost mid-commit) is never applied twice when it is retried.
    """

    counts: dict[CountKey, int]
    channels: dict[tuple[int, int], str]
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: The guilds' clocks the buckets were counted on.
    calendars: Calendars = field(default_factory=Calendars)

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def months(self) -> set[tuple[int, int]]:
        """The (guild, month) pairs this batch writes to."""
        get = self.calendars.get
        return {(key[0], get(key[0]).month_of_bucket(key[1])) for key in self.counts}

    def absorb(self, newer: Batch) -> None:
        """Add a newer batch's counts into this one (member totals: the newer value wins).

        Only for a batch that was never sent to the store: its id must not have been
        recorded, or the merged counts would be skipped as already applied.
        """
        counts = self.counts
        for key, count in newer.counts.items():
            if key[2] == _TOTAL_USERS:
                counts[key] = count
            else:
                counts[key] = counts.get(key, 0) + count
        self.channels.update(newer.channels)


class Accumulator:
    """Counts events in memory; see the module docstring."""

    def __init__(
        self,
        keyring: Keyring,
        *,
        ignored_users: Iterable[int] = (),
        ignored_channels: Iterable[int] = (),
        optouts: OptOuts | None = None,
        calendars: Calendars | None = None,
    ) -> None:
        self._keyring = keyring
        #: Every guild's clock; replaced (on the loop) when timezones are re-read.
        self.calendars = calendars if calendars is not None else Calendars()
        #: Per guild, the current bucket: (first ms, end ms, bucket, month, (guild, month))
        #: — one comparison maps a message's time to its bucket until the next local hour
        #: mark, and the prebuilt pair finds the month's cached pseudonyms.
        self._spans: dict[int, tuple[int, int, int, int, tuple[int, int]]] = {}
        #: The keyring's pseudonym caches (the same dict, read here on the loop only).
        self._pseudonyms = keyring.caches
        #: Members who opted out (the keyring's, shared with the voice and usage trackers).
        self.optouts = optouts if optouts is not None else keyring.optouts
        self._ignored_users = frozenset(ignored_users)
        self._ignored_channels = frozenset(ignored_channels)
        #: Whether anything is ignored at all: most bots ignore nothing, and the message
        #: path then skips both set lookups.
        self._ignoring = bool(self._ignored_users or self._ignored_channels)
        self._counts: dict[CountKey, int] = {}
        self._pending: dict[_PendingKey, int] = {}
        self._keys_needed: set[tuple[int, int]] = set()
        self._channels: dict[tuple[int, int], str] = {}
        self._saturated = False
        self.dropped = 0

    @property
    def ignored_users(self) -> frozenset[int]:
        """Users never counted (config ``ignored_users``); fixed for the collector's life."""
        return self._ignored_users

    @property
    def ignored_channels(self) -> frozenset[int]:
        """Channels never counted (config ``ignored_channels``); fixed likewise."""
        return self._ignored_channels

    # -- the event path -------------------------------------------------------------------

    def message(
        self, guild_id: int, channel_id: int, user_id: int, when: datetime, *, bot: bool = False
    ) -> None:
        """One message by ``user_id`` in ``channel_id``."""
        if bot:
            return
        if when.tzinfo is None:
            raise InvalidEventError(
                f"naive datetime {when.isoformat()} — events need a timezone-aware time"
            )
        self.message_at_ms(guild_id, channel_id, user_id, int(when.timestamp() * 1000))

    @property
    def saturated(self) -> bool:
        """Set by the flusher while memory holds its high-water mark of counters (the store
        has been down for long): new events are then dropped, and counted in `dropped`."""
        return self._saturated

    @saturated.setter
    def saturated(self, value: bool) -> None:
        if value == self._saturated:
            return
        self._saturated = value
        # The fast path pays nothing for the mark: while saturated, an instance attribute
        # shadows it with a version that only counts the drop.
        if value:
            self.message_at_ms = self._drop_message  # type: ignore[method-assign]
        else:
            del self.message_at_ms

    def _drop_message(self, guild_id: int, channel_id: int, user_id: int, ms: int) -> None:
        self.dropped += 1

    def message_at_ms(self, guild_id: int, channel_id: int, user_id: int, ms: int) -> None:
        """One message by a (non-bot) user at epoch millisecond ``ms``: the listener's path.

        Discord message ids carry their time, so the listener takes it from the id and
        skips building a datetime; the guild's current bucket is cached, so mapping the
        time to its local hour is one comparison. Otherwise `message` without its checks.
        """
        if self._ignoring and (
            user_id in self._ignored_users or channel_id in self._ignored_channels
        ):
            return
        span = self._spans.get(guild_id)
        if span is None or not span[0] <= ms < span[1]:
            span = self._span(guild_id, ms)
        cached = self._pseudonyms.get(span[4])
        label = cached.get(user_id) if cached is not None else None
        if label is None:
            label = self._keyring.pseudonym(guild_id, span[3], user_id)
            if label is None:
                self.add_at_hour(EventKind.MSG, guild_id, channel_id, user_id, span[2], 1)
                return
        if label is OPTED_OUT:
            return
        key = (guild_id, span[2], _MSG, label, channel_id)
        try:  # the counter exists for all but a member's first message of the hour
            self._counts[key] += 1
        except KeyError:
            self._counts[key] = 1

    def message_at_hour(self, guild_id: int, channel_id: int, user_id: int, hour: int) -> None:
        """One message by a (non-bot) user in bucket ``hour`` (a UTC guild's UTC hour)."""
        if user_id in self.ignored_users or channel_id in self.ignored_channels:
            return
        self.add_at_hour(EventKind.MSG, guild_id, channel_id, user_id, hour, 1)

    def _span(self, guild_id: int, ms: int) -> tuple[int, int, int, int, tuple[int, int]]:
        calendar = self.calendars.get(guild_id)
        bucket = calendar.bucket_of_s(ms // 1000)
        month = calendar.month_of_bucket(bucket)
        span = (
            calendar.bucket_start_s(bucket) * 1000,
            calendar.bucket_end_s(bucket) * 1000,
            bucket,
            month,
            (guild_id, month),
        )
        self._spans[guild_id] = span
        return span

    def calendar(self, guild_id: int) -> GuildCalendar:
        """The guild's clock."""
        return self.calendars.get(guild_id)

    def install_calendars(self, calendars: Calendars) -> None:
        """Use re-read timezones (on the loop); cached spans are recomputed."""
        if calendars is not self.calendars:
            self.calendars = calendars
            self._spans = {}

    def _hour(self, guild_id: int, when: datetime) -> int:
        if when.tzinfo is None:
            raise InvalidEventError(
                f"naive datetime {when.isoformat()} — events need a timezone-aware time"
            )
        seconds = when.timestamp()
        if self.calendars.get(guild_id).is_utc:
            return int(seconds // 3600)
        ms = int(seconds * 1000)
        span = self._spans.get(guild_id)
        if span is None or not span[0] <= ms < span[1]:
            span = self._span(guild_id, ms)
        return span[2]

    def join(self, guild_id: int, user_id: int, when: datetime, *, bot: bool = False) -> None:
        """A member joined the guild (server-wide event)."""
        if bot or user_id in self.ignored_users:
            return
        self._server_event(EventKind.JOIN, guild_id, user_id, self._hour(guild_id, when))

    def part(self, guild_id: int, user_id: int, when: datetime, *, bot: bool = False) -> None:
        """A member left the guild (server-wide event)."""
        if bot or user_id in self.ignored_users:
            return
        self._server_event(EventKind.PART, guild_id, user_id, self._hour(guild_id, when))

    def _server_event(self, kind: EventKind, guild_id: int, user_id: int, hour: int) -> None:
        """A join or part: an opted-out member's is counted for nobody (totals stay right)."""
        if self.optouts.active and self.optouts.blocks(guild_id, user_id):
            key = (guild_id, hour, int(kind), NO_USER, NO_CHANNEL)
            self._counts[key] = self._counts.get(key, 0) + 1
            return
        self.add_at_hour(kind, guild_id, NO_CHANNEL, user_id, hour, 1)

    def member_total(self, guild_id: int, total: int, when: datetime) -> None:
        """The guild's member count at ``when``; the latest value in an hour is kept."""
        if total < 0:
            raise InvalidEventError(f"member total cannot be negative (got {total})")
        key = (guild_id, self._hour(guild_id, when), _TOTAL_USERS, NO_USER, NO_CHANNEL)
        self._counts[key] = total

    def add(
        self,
        event: EventKind | str,
        guild_id: int,
        channel_id: int,
        user_id: int,
        when: datetime,
        count: int = 1,
    ) -> None:
        """Generic entry point: validates the kind and count, then adds."""
        kind = _kind(event)
        if kind is EventKind.TOTAL_USERS:
            self.member_total(guild_id, count, when)
            return
        self.add_at_hour(kind, guild_id, channel_id, user_id, self._hour(guild_id, when), count)

    def add_at_hour(
        self, kind: EventKind, guild_id: int, channel_id: int, user_id: int, hour: int, count: int
    ) -> None:
        """Add ``count`` to an additive counter for the guild's bucket ``hour``."""
        if count < 0:
            raise InvalidEventError(f"count cannot be negative (got {count} for {kind.label})")
        if count == 0:
            return
        if self.saturated:
            self.dropped += 1
            return
        span = self._spans.get(guild_id)  # most events are in the guild's current hour
        if span is not None and span[2] == hour:
            month = span[3]
        else:
            month = self.calendars.get(guild_id).month_of_bucket(hour)
        label = self._keyring.pseudonym(guild_id, month, user_id)
        if label is None:
            if self.optouts.active and self.optouts.blocks(guild_id, user_id):
                return  # no key yet, and opted out: never pending
            pkey = (guild_id, hour, int(kind), user_id, channel_id)
            self._pending[pkey] = self._pending.get(pkey, 0) + count
            self._keys_needed.add((guild_id, month))
            return
        if label is OPTED_OUT:
            return
        key = (guild_id, hour, int(kind), label, channel_id)
        counts = self._counts
        counts[key] = counts.get(key, 0) + count

    def name_channel(self, guild_id: int, channel_id: int, name: str) -> None:
        """Remember a channel's current name; written with the next batch."""
        self._channels[(guild_id, channel_id)] = name

    # -- the flusher's side ---------------------------------------------------------------

    def keys_needed(self) -> set[tuple[int, int]]:
        """(guild, month) pairs whose key must be loaded before pending counts resolve."""
        return set(self._keys_needed)

    def resolve_pending(self) -> int:
        """Turn pending counts into pseudonymous counts where keys are now loaded.

        Returns how many counters are still waiting for a key.
        """
        still: dict[_PendingKey, int] = {}
        needed: set[tuple[int, int]] = set()
        pending, self._pending = self._pending, {}
        self._keys_needed = set()
        get = self.calendars.get
        for (guild_id, hour, code, user_id, channel_id), count in pending.items():
            month = get(guild_id).month_of_bucket(hour)
            # Pending counts were taken before any opt-out since: they count.
            label = self._keyring.pseudonym_before_optout(guild_id, month, user_id)
            if label is None:
                still[(guild_id, hour, code, user_id, channel_id)] = count
                needed.add((guild_id, month))
                continue
            key = (guild_id, hour, code, label, channel_id)
            self._counts[key] = self._counts.get(key, 0) + count
        # Events may have arrived meanwhile: merge rather than overwrite.
        for pkey, count in still.items():
            self._pending[pkey] = self._pending.get(pkey, 0) + count
        self._keys_needed |= needed
        return len(self._pending)

    def drain(self) -> Batch:
        """Take every resolved counter out of memory as one batch."""
        counts, self._counts = self._counts, {}
        channels, self._channels = self._channels, {}
        return Batch(counts=counts, channels=channels, calendars=self.calendars)

    def has_pending_for_month_before(self, now: datetime) -> bool:
        """True if counts of a month that ended before ``now`` (on its guild's clock) are
        still in memory.

        Iterates the live counters: call it on the event loop, never from a worker thread
        (the listeners add to these dictionaries while a thread would iterate them).
        """
        firsts: dict[int, int] = {}

        def first_bucket(guild_id: int) -> int:
            found = firsts.get(guild_id)
            if found is None:
                calendar = self.calendars.get(guild_id)
                found = firsts[guild_id] = calendar.first_bucket(calendar.month_of(now))
            return found

        return any(k[1] < first_bucket(k[0]) for k in self._counts) or any(
            k[1] < first_bucket(k[0]) for k in self._pending
        )

    def forget(self, guild_id: int | None, user_id: int, labels: Iterable[str]) -> int:
        """Drop a member's counts still in memory (forget-me); returns the counters dropped."""
        wanted = set(labels)
        before = len(self)
        self._counts = {
            k: v
            for k, v in self._counts.items()
            if k[3] not in wanted or (guild_id is not None and k[0] != guild_id)
        }
        self._pending = {
            k: v
            for k, v in self._pending.items()
            if k[3] != user_id or (guild_id is not None and k[0] != guild_id)
        }
        return before - len(self)

    def __len__(self) -> int:
        return len(self._counts) + len(self._pending)


_MSG = int(EventKind.MSG)
_TOTAL_USERS = int(EventKind.TOTAL_USERS)


def _kind(event: EventKind | str) -> EventKind:
    if isinstance(event, EventKind):
        return event
    try:
        return EventKind.parse(event)
    except ValueError as exc:
        raise InvalidEventError(str(exc)) from None
