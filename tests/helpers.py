"""Test helpers shared across the suite."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection

from guildmeter.collect import Batch
from guildmeter.errors import StoreUnavailableError
from guildmeter.store import Store


class Clock:
    """A bot's or runner's notion of now, moved by the test (voice time is measured with it)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FlakyStore(Store):
    """A real store whose next writes fail as planned.

    ``"before"``: the write fails before anything is committed (database down or locked).
    ``"after"``: the write commits, then the caller hears a failure (connection lost while
    the commit's answer was on its way) — the case that tempts a naive retry to double.
    """

    def __init__(self, store: Store) -> None:
        super().__init__(store.engine)
        self.plan: list[str] = []
        #: The same, for writes through `transaction()` (the usage tables).
        self.transaction_plan: list[str] = []

    @contextmanager
    def transaction(self) -> Iterator[Connection]:  # type: ignore[override]
        mode = self.transaction_plan.pop(0) if self.transaction_plan else "ok"
        if mode == "before":
            raise StoreUnavailableError("database unavailable or busy: injected outage")
        with super().transaction() as conn:
            yield conn
        if mode == "after":
            raise StoreUnavailableError("database unavailable or busy: injected lost reply")

    def write_batch(self, batch: Batch) -> int:
        mode = self.plan.pop(0) if self.plan else "ok"
        if mode == "before":
            raise StoreUnavailableError("database unavailable or busy: injected outage")
        written = super().write_batch(batch)
        if mode == "after":
            raise StoreUnavailableError("database unavailable or busy: injected lost reply")
        return written


def shape(totals: dict[tuple[int, int, int, str], int]) -> dict[tuple[int, int, int], list[int]]:
    """Counts per (hour, event, channel) as a sorted list of per-user counts.

    Comparable between raw user ids and pseudonyms without knowing which is which.
    """
    out: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    for (hour, event, channel, _user), count in totals.items():
        out[(hour, event, channel)].append(count)
    return {k: sorted(v) for k, v in out.items()}


def distinct_users_per_month(totals: dict[tuple[int, int, int, str], int]) -> Counter[int]:
    from guildmeter.timeutil import month_of_hour

    seen = {(month_of_hour(hour), user) for (hour, _e, _c, user) in totals if user != ""}
    return Counter(month for month, _ in seen)


def database_bytes(path: Path) -> bytes:
    """Every byte of a SQLite database: main file, WAL and shared memory."""
    data = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            data += candidate.read_bytes()
    return data
