"""Per-member report passes over SQLite in member-id chunks, on two connections at once.

A live weekday or hourly report of a big month is one grouped pass over every member's
rows (`guildmeter.reports.compute`), and SQLite runs one query on one core. The members
of a month have consecutive ids, and each member's rows are read in the order of
``ix_activity_member``: a pass split into chunks of member ids reads disjoint rows, and
the chunks' per-case counts, sums and sums of squares simply add up. SQLite gives the GIL
up while it steps a query, so two threads, each with its own connection, use two cores.

Chunks are many and of equal id width (ids first seen early in the month belong to the
busiest members, so equal widths are not equal work): two threads take them from one
queue, and no thread waits long for the other at the end.

Each chunk reads its own snapshot of the database; so did each statement of a report
before (it never ran in one transaction), and a member's rows are all in one chunk.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Connection, Executable

from guildmeter.store import Store

__all__ = ["MEMBERS_PER_CHUNK", "member_chunks", "run_all"]

#: Members per chunk at least: a smaller month is read in one query, as before.
MEMBERS_PER_CHUNK = 1_000
#: Chunks at most per pass: enough for two threads to end together, few enough that the
#: per-query cost stays small.
MAX_CHUNKS = 24


def member_chunks(first: int, last: int) -> list[tuple[int, int]]:
    """The ids [first, last] in chunks of equal width, [a, b] each, in order."""
    if last < first:
        return []
    width = last - first + 1
    count = max(1, min(MAX_CHUNKS, width // MEMBERS_PER_CHUNK))
    bounds = [first + width * i // count for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(count)]


def _threads() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def run_all(
    store: Store, conn: Connection, queries: Sequence[tuple[Executable, dict[str, Any]]]
) -> list[list[Any]]:
    """Each query's rows (a statement and its parameters), in order: on ``conn`` when there
    is one query (or the database is not a SQLite file), else on two connections of the
    store's pool."""
    parallel = (
        len(queries) > 1
        and store.dialect == "sqlite"
        and store.reopen is not None  # a file: every connection sees the same database
        and _threads() > 1
    )
    if not parallel:
        return [list(conn.execute(statement, params)) for statement, params in queries]

    def one(query: tuple[Executable, dict[str, Any]]) -> list[Any]:
        with store.engine.connect() as own:
            return list(own.execute(*query))

    with ThreadPoolExecutor(_threads(), thread_name_prefix="guildmeter-report") as pool:
        return list(pool.map(one, queries))
