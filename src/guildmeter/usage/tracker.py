"""The usage tracker: records appended in memory on the event path, written in batches.

Raw user ids stay in memory only until the batch is written: `write` turns each into the
guild-month pseudonym (the same keyed pseudonym the activity statistics use) before
anything reaches the store. A batch that fails to write waits, whole, for the next flush;
its id is recorded with its rows, so a retry after a lost commit reply adds nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from guildmeter.privacy import Keyring
from guildmeter.privacy.optout import OptOuts
from guildmeter.store import Store
from guildmeter.store.usage import LabelledUsage, UsageStore
from guildmeter.timeutil import hour_index, month_of_hour, utcnow

__all__ = ["ActivityRecord", "CommandUse", "Generation", "UsageTracker"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CommandUse:
    guild_id: int  # 0 in direct messages
    channel_id: int
    user_id: int
    command: str
    kind: str  # prefix, slash, context_menu
    at: datetime
    duration_ms: float
    ok: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class Generation:
    guild_id: int
    user_id: int
    at: datetime
    prompt: str | None  # None unless the owner enabled store_prompts
    resolution: str
    loras: tuple[str, ...]
    upscale: float
    seconds: float
    is_video: bool
    generation_type: str


@dataclass(frozen=True, slots=True)
class ActivityRecord:
    guild_id: int
    user_id: int
    at: datetime
    action: str
    details: str


Record = CommandUse | Generation | ActivityRecord


@dataclass
class _Batch:
    records: list[Record]
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)


class UsageTracker:
    """See the module docstring. ``store_prompts`` off: prompts are dropped on arrival."""

    def __init__(
        self,
        keyring: Keyring,
        *,
        store_prompts: bool = False,
        clock: Callable[[], datetime] = utcnow,
        optouts: OptOuts | None = None,
    ) -> None:
        self.keyring = keyring
        #: Members who opted out of a guild: their commands, jobs and actions are dropped.
        self.optouts = optouts if optouts is not None else keyring.optouts
        self.store_prompts = store_prompts
        self.clock = clock
        self._records: list[Record] = []
        self._waiting: list[_Batch] = []

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
        self._records.append(
            CommandUse(
                guild_id or 0,
                channel_id or 0,
                user_id,
                command[:100],
                kind,
                at or self.clock(),
                max(0.0, duration_ms),
                ok,
                None if error is None else error[:100],
            )
        )

    def generation(self, record: Generation) -> None:
        if self._opted_out(record.guild_id, record.user_id):
            return
        if record.prompt is not None and not self.store_prompts:
            record = Generation(
                record.guild_id,
                record.user_id,
                record.at,
                None,
                record.resolution,
                record.loras,
                record.upscale,
                record.seconds,
                record.is_video,
                record.generation_type,
            )
        self._records.append(record)

    def activity(self, record: ActivityRecord) -> None:
        if self._opted_out(record.guild_id, record.user_id):
            return
        self._records.append(record)

    def _opted_out(self, guild_id: int, user_id: int) -> bool:
        return self.optouts.active and self.optouts.blocks(guild_id, user_id)

    def forget(self, guild_id: int | None, user_id: int) -> int:
        """Drop a member's records still in memory (forget-me); returns how many."""

        def keep(record: Record) -> bool:
            return record.user_id != user_id or guild_id not in (None, record.guild_id)

        before = len(self._records) + sum(len(b.records) for b in self._waiting)
        self._records = [r for r in self._records if keep(r)]
        for batch in self._waiting:
            batch.records = [r for r in batch.records if keep(r)]
        return before - len(self._records) - sum(len(b.records) for b in self._waiting)

    # -- the flusher's side -----------------------------------------------------------------------

    def take(self) -> None:
        """Move the records gathered so far into a batch (on the loop: no I/O)."""
        if self._records:
            self._waiting.append(_Batch(self._records))
            self._records = []

    @property
    def waiting_batches(self) -> int:
        return len(self._waiting)

    def write(self, store: Store) -> int:
        """Write waiting batches, oldest first (I/O); returns the records written."""
        written = 0
        usage = UsageStore(store)
        while self._waiting:
            batch = self._waiting[0]
            usage.write(batch.batch_id, self._labelled(store, batch.records))
            self._waiting.pop(0)
            written += len(batch.records)
        return written

    def _labelled(self, store: Store, records: Sequence[Record]) -> list[LabelledUsage]:
        hours = [hour_index(r.at) for r in records]
        pairs = {(r.guild_id, month_of_hour(h)) for r, h in zip(records, hours, strict=True)}
        self.keyring.load(store, sorted(pairs))
        out = []
        for record, hour in zip(records, hours, strict=True):
            # Records were taken before any opt-out since (later ones are dropped on arrival).
            label = self.keyring.pseudonym_before_optout(
                record.guild_id, month_of_hour(hour), record.user_id
            )
            if label is None:  # pragma: no cover - load() above provides every key
                raise RuntimeError("no key for a usage record after loading keys")
            out.append(LabelledUsage(record, hour, label))
        return out
