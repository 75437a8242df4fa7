"""The store: every read and write of the statistics tables, on SQLite or PostgreSQL.

The store never sees a raw user id: it receives labels (pseudonyms or tokens) from the
collector and maps them to integer member ids.

`Store` is a thin face over one module per concern — find a job by its module:

- `guildmeter.store.base`: the engine, caches and transactions they all share;
- `guildmeter.store.keys`: per guild-month keys;
- `guildmeter.store.writes`: the flush's batches, imports, member ids, deleting a guild
  (with `guildmeter.store.summaries` and `guildmeter.store.snapshots` kept by the one write
  path);
- `guildmeter.store.monthend`: anonymising months, destroying keys, scrubbing;
- `guildmeter.store.reads`: totals, spans, names and the raw dump;
- elsewhere, each with its own module: `retention`, `rights` (opt-outs, forget-me),
  `settings`, `timezones`, `usage` and `rollups`, `backfill`, `catalog`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from guildmeter.store import spans, summaries
from guildmeter.store.engine import make_engine
from guildmeter.store.keys import KeysMixin
from guildmeter.store.migrations import apply_migrations
from guildmeter.store.monthend import AnonymisationResult, MonthEndMixin
from guildmeter.store.reads import ReadsMixin
from guildmeter.store.timezones import TimezoneChange, read_calendars, set_timezone
from guildmeter.store.writes import ImportSession, WritesMixin
from guildmeter.zones import UTC_NAME, Calendars

__all__ = ["AnonymisationResult", "ImportSession", "Store", "StoreSpec", "reopen_spec"]


@dataclass(frozen=True)
class StoreSpec:
    """What another process needs to open the same store: picklable, hashable."""

    url: str
    engine_kwargs: tuple[tuple[str, Any], ...] = ()
    #: The configured ``default_timezone``, so a worker reads guilds on the same clocks.
    default_zone: str = UTC_NAME

    def open(self) -> Store:
        store = Store.open(self.url, **dict(self.engine_kwargs))
        if self.default_zone != UTC_NAME:
            store.reload_calendars(self.default_zone)
        store.reopen = self
        return store


def reopen_spec(url: str, **engine_kwargs: Any) -> StoreSpec | None:
    """How another process or connection opens the database at ``url``; None for an
    in-memory SQLite database (each connection would see an empty one of its own)."""
    if ":memory:" in url or url in ("sqlite://", "sqlite:///"):
        return None
    return StoreSpec(url, tuple(sorted(engine_kwargs.items())))


class Store(WritesMixin, MonthEndMixin, ReadsMixin, KeysMixin):
    """Statistics storage over one SQLAlchemy engine (created once, passed around)."""

    @classmethod
    def open(cls, url: str, **engine_kwargs: Any) -> Store:
        """Connect and bring the schema up to date."""
        store = cls(make_engine(url, **engine_kwargs))
        store.migrate()
        store.reopen = reopen_spec(url, **engine_kwargs)
        return store

    def migrate(self) -> None:
        with self._begin() as conn:
            apply_migrations(conn)
        self.reload_calendars()

    def reload_calendars(self, default_zone: str | None = None) -> Calendars:
        """Read every guild's timezone schedule (a small table) and keep it."""
        if default_zone is not None:
            self.default_zone = default_zone
            if self.reopen is not None:
                self.reopen = dataclasses.replace(self.reopen, default_zone=default_zone)
        with self._begin() as conn:  # an outage is StoreUnavailableError, like any flush step
            self.calendars = read_calendars(conn, self.default_zone, self.calendars)
        return self.calendars

    def set_timezone(self, guild_id: int, zone: str, now: datetime) -> TimezoneChange:
        """Give a guild a zone from its next local month (at once when it has no statistics)."""
        with self._begin() as conn:
            change = set_timezone(conn, self.calendars, guild_id, zone, now)
            fresh = read_calendars(conn, self.default_zone, self.calendars)
            summaries.after_zone_change(conn, fresh, guild_id, change.from_month)
            spans.forget_guild(conn, guild_id, dropped_too=False)  # rebuilt on the new clock
            if change.from_month is None:  # at once: stored reports were on the old clock
                from guildmeter.store.snapshots import invalidate_months, month_snapshots

                marks = month_snapshots
                months = conn.execute(
                    select(marks.c.guild_id, marks.c.month).where(marks.c.guild_id == guild_id)
                ).all()
                invalidate_months(conn, [(int(g), int(m)) for g, m in months])
        self.reload_calendars()
        return change

    def close(self) -> None:
        self.engine.dispose()
