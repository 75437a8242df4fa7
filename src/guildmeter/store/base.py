"""What every part of the store shares: the engine, the member-id cache, the clocks, and
transactions whose connection losses and lock time-outs become `StoreUnavailableError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from guildmeter.errors import StoreUnavailableError
from guildmeter.zones import UTC_NAME, Calendars

if TYPE_CHECKING:
    from guildmeter.store.sql import StoreSpec

_CHUNK = 500  # bound parameters per IN list

_SQLITE_BUSY_MS = 10_000  # the engine's busy timeout (see make_engine)

#: Rows per JSON parameter where SQLite takes many rows in one statement (the driver then
#: gives the GIL up once per statement instead of once per row).
_SQLITE_JSON_ROWS = 20_000


class StoreBase:
    """The engine, the caches and the plumbing every part of the store shares."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # (guild, month, label) -> member id; filled only after a commit succeeded.
        self._member_ids: dict[tuple[int, int, str], int] = {}
        #: How another process can open the same database (None: it cannot, e.g. :memory:).
        self.reopen: StoreSpec | None = None
        #: The zone of guilds that never set one (config ``default_timezone``).
        self.default_zone = UTC_NAME
        #: Every guild's clock (`guildmeter.zones`), read at start-up and by each flush.
        self.calendars = Calendars()

    def insert(self, table: Any) -> Any:
        """The dialect's INSERT (with ``on_conflict_do_nothing``/``on_conflict_do_update``)."""
        return self._insert(table)

    def transaction(self) -> AbstractContextManager[Connection]:
        """A transaction for other store modules; errors as in ``_begin``."""
        return self._begin()

    def _insert(self, table: Any) -> Any:
        return (postgresql if self.dialect == "postgresql" else sqlite).insert(table)

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A transaction; connection loss and lock time-outs become StoreUnavailableError."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:
            raise _unavailable(exc) from exc


def _unavailable(exc: DBAPIError) -> StoreUnavailableError:
    reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
    return StoreUnavailableError(f"database unavailable or busy: {reason}")


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
