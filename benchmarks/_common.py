"""Shared benchmark plumbing: timing, peak memory, PostgreSQL scratch schemas, JSON output."""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy

from guildmeter.store import normalise_url
from guildmeter.store.engine import unreachable_reason

PG_URL = os.environ.get("GUILDMETER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def best_of(runs: int, work: Callable[[], Any]) -> float:
    """Fastest wall time of ``runs`` calls, in seconds (the least disturbed by noise)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def postgresql_available() -> bool:
    return unreachable_reason(PG_URL) is None


@contextmanager
def pg_schema() -> Iterator[dict[str, Any]]:
    """A scratch schema; yields the engine keyword arguments that select it."""
    name = f"gm_bench_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {name}")
    try:
        # A statement timeout: a bad plan fails the run instead of hanging it.
        yield {"connect_args": {"options": f"-csearch_path={name} -cstatement_timeout=120000"}}
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()


def emit(figures: dict[str, Any]) -> None:
    """Print the figures as the last line, one JSON object (units in the key names)."""
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))


def emit_year_figures(measure: Callable[[Any, str], dict[str, Any]]) -> None:
    """Run a year benchmark's ``measure(store, suffix)`` on SQLite, and on PostgreSQL when
    ``GUILDMETER_BENCH_PG_YEAR`` is set (a year of rows takes minutes there), then print."""
    from guildmeter.store import Store

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(str(Path(folder) / "bench.db"))
        figures.update(measure(store, ""))
        store.close()
    figures["peak_rss_mb"] = peak_rss_mb()
    if postgresql_available() and os.environ.get("GUILDMETER_BENCH_PG_YEAR"):
        with pg_schema() as kwargs:
            pg = Store.open(PG_URL, **kwargs)
            figures.update(measure(pg, "_postgresql"))
            pg.close()
    else:
        print("PostgreSQL year skipped (set GUILDMETER_BENCH_PG_YEAR)", file=sys.stderr)
    emit(figures)
