"""The usage tracker: records appended in memory on the event path, written in batches.

Raw user ids stay in memory only until `take` (on the event loop) turns each into the
guild-month pseudonym (the same keyed pseudonym the activity statistics use); `write` (in
the flush thread) only sees labelled records. A batch that fails to write waits, whole, for
the next flush; its id is recorded with its rows, so a retry after a lost commit reply adds
nothing twice.

What is kept is no finer than needed: times are truncated to the hour (as the activity
statistics are), and a direct-message channel id, which is permanent per member and so
names them, is never kept (stored as 0).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from guildmeter.privacy import Keyring
from guildmeter.privacy.optout import OptOuts
from guildmeter.store import Store
from guildmeter.store.usage import UsageStore
from guildmeter.timeutil import utcnow
from guildmeter.usage_records import ActivityRecord, CommandUse, Generation, LabelledUsage, Record
from guildmeter.zones import UTC_CALENDAR, GuildCalendar

__all__ = ["ActivityRecord", "CommandUse", "Generation", "UsageTracker"]

log = logging.getLogger(__name__)


@dataclass
class _Batch:
    items: list[LabelledUsage]
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)


#: Records held in memory at most (the store down for long); beyond it new ones are dropped.
MAX_RECORDS_IN_MEMORY = 1_000_000


class UsageTracker:
    """See the module docstring. ``store_prompts`` off: prompts are dropped on arrival."""

    def __init__(
        self,
        keyring: Keyring,
        *,
        store_prompts: bool = False,
        clock: Callable[[], datetime] = utcnow,
        optouts: OptOuts | None = None,
        calendar_of: Callable[[int], GuildCalendar] | None = None,
    ) -> None:
        self.keyring = keyring
        #: A guild's clock (the collector's): records take the guild's bucket and month.
        self.calendar_of = calendar_of or (lambda _guild: UTC_CALENDAR)
        #: Members who opted out of a guild: their commands, jobs and actions are dropped.
        self.optouts = optouts if optouts is not None else keyring.optouts
        self.store_prompts = store_prompts
        self.clock = clock
        self._records: list[Record] = []
        self._waiting: list[_Batch] = []
        self._head_attempted = False
        #: Records in memory at most; beyond it new records are dropped, and counted.
        self.max_records = MAX_RECORDS_IN_MEMORY
        self.dropped = 0
        self._held = 0  # records in waiting batches

    # -- the event path: memory only ------------------------------------------------------------

    def command(
        self,
        command: str,
        *,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int,
        kind: str,
        duration_ms: float,
        ok: bool,
        error: str | None = None,
        at: datetime | None = None,
    ) -> None:
        if self._opted_out(guild_id or 0, user_id):
            return
        if not guild_id:
            channel_id = 0  # a DM channel id names the member for good: never kept
        self._append(
            CommandUse(
                guild_id or 0,
                channel_id or 0,
                user_id,
                command[:100],
                kind,
                self._hour_of(guild_id or 0, at or self.clock()),
                max(0.0, duration_ms),
                ok,
                None if error is None else error[:100],
            )
        )

    def generation(self, record: Generation) -> None:
        if self._opted_out(record.guild_id, record.user_id):
            return
        self._append(
            Generation(
                record.guild_id,
                record.user_id,
                self._hour_of(record.guild_id, record.at),
                record.prompt if self.store_prompts else None,
                record.resolution,
                record.loras,
                record.upscale,
                record.seconds,
                record.is_video,
                record.generation_type,
            )
        )

    def activity(self, record: ActivityRecord) -> None:
        if self._opted_out(record.guild_id, record.user_id):
            return
        self._append(
            ActivityRecord(
                record.guild_id,
                record.user_id,
                self._hour_of(record.guild_id, record.at),
                record.action,
                record.details,
            )
        )

    def _hour_of(self, guild_id: int, when: datetime) -> datetime:
        """The start of ``when``'s hour bucket (the guild's local hour): usage times are
        kept no finer than that."""
        calendar = self.calendar_of(guild_id)
        return calendar.bucket_start(calendar.bucket_of(when)).astimezone(UTC)

    def _append(self, record: Record) -> None:
        if len(self._records) + self._held >= self.max_records:
            self.dropped += 1
            return
        self._records.append(record)

    def _opted_out(self, guild_id: int, user_id: int) -> bool:
        return self.optouts.active and self.optouts.blocks(guild_id, user_id)

    def forget(self, guild_id: int | None, user_id: int) -> int:
        """Drop a member's records still in memory (forget-me); returns how many."""

        def keep(record: Record) -> bool:
            return record.user_id != user_id or guild_id not in (None, record.guild_id)

        before = self.records_in_memory
        self._records = [r for r in self._records if keep(r)]
        for batch in self._waiting:
            kept = [item for item in batch.items if keep(item.record)]
            self._held -= len(batch.items) - len(kept)
            batch.items = kept
        return before - self.records_in_memory

    # -- the flusher's side -----------------------------------------------------------------------

    def keys_needed(self) -> set[tuple[int, int]]:
        """(guild, month) pairs of the records waiting to be labelled (on the loop)."""
        calendar_of = self.calendar_of
        return {(r.guild_id, calendar_of(r.guild_id).month_of(r.at)) for r in self._records}

    def take(self) -> None:
        """Label the records gathered so far and batch them (on the loop: no I/O).

        Records whose key is not loaded yet (the store is down) stay for the next flush.
        """
        if not self._records:
            return
        items: list[LabelledUsage] = []
        unlabelled: list[Record] = []
        calendar_of = self.calendar_of
        for record in self._records:
            calendar = calendar_of(record.guild_id)
            hour = calendar.bucket_of(record.at)
            # Records were taken before any opt-out since (later ones are dropped on arrival).
            label = self.keyring.pseudonym_before_optout(
                record.guild_id, calendar.month_of_bucket(hour), record.user_id
            )
            if label is None:
                unlabelled.append(record)
            else:
                items.append(LabelledUsage(record, hour, label))
        self._records = unlabelled
        if not items:
            return
        self._held += len(items)
        if self._waiting and not (len(self._waiting) == 1 and self._head_attempted):
            self._waiting[-1].items.extend(items)  # never sent yet: safe to merge
        else:
            self._waiting.append(_Batch(items))

    @property
    def waiting_batches(self) -> int:
        return len(self._waiting)

    @property
    def records_in_memory(self) -> int:
        return len(self._records) + self._held

    def write(self, store: Store) -> int:
        """Write waiting batches, oldest first (I/O); returns the records written.

        Runs in the flush thread, while no `take` runs (the flush holds its lock).
        """
        written = 0
        usage = UsageStore(store)
        while self._waiting:
            batch = self._waiting[0]
            self._head_attempted = True
            usage.write(batch.batch_id, batch.items)
            self._waiting.pop(0)
            self._head_attempted = False
            self._held -= len(batch.items)
            written += len(batch.items)
        return written
