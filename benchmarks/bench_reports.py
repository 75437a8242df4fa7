"""Reports, export and import on a month of a large server, SQLite and PostgreSQL.

The month: about 1,000,000 activity rows — 20,000 posting users (a few heavy, most
occasional), 50 text channels, 5 voice channels, a day/night wave and busier weekends —
written through Store.write_batch in 100,000-row batches (memory stays low).

Baseline, same run: the reports computed KazTron's way — reading the month's gzip CSV
dump row by row into Python dictionaries — which is what "loading rows into Python" costs.
On SQLite each live report also runs in one pass on one connection (``…_one_pass``): how
reports were read before the month's members were split into chunks on two connections.

Then the month is closed: anonymised, its snapshots built (`snapshot_build_s`), and every
report of it read from them (`report_month_snapshot_s`: the slowest of full, weekday and
hourly, for all channels and for one; baseline: the same reports computed live), and its
member rows deleted by retention: `db_bytes_per_row` is the database's used bytes per
activity row of the month before and after (`…_after_retention`).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import math
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from guildmeter.collect import Batch
from guildmeter.export import import_files, write_dump
from guildmeter.reports import DateRange, chunks, compute_report
from guildmeter.reports.compute import compute_live_report
from guildmeter.reports.snapshots import build_month_snapshots
from guildmeter.store import Store
from guildmeter.store.retention import delete_member_rows
from guildmeter.zones import GuildCalendar

from _common import PG_URL, best_of, emit, peak_rss_mb, pg_schema, postgresql_available

GUILD = 42
MONTH = DateRange(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
#: The same month read on New York's clock (DST starts on 8 March): local weekdays and
#: hours of day come from a CASE over the two DST runs.
NEW_YORK_MONTH = DateRange.month(202603, GuildCalendar(((0, "America/New_York"),)))
USERS, TEXT, VOICE = 20_000, 50, 5
TARGET_ROWS = 1_000_000
ONE_CHANNEL = "channel-03"


def _rhythm(hour_index: int) -> float:
    hour, weekday = hour_index % 24, (hour_index // 24 + 3) % 7
    wave = (1 + math.cos(2 * math.pi * (hour - 20) / 24)) / 2
    return (0.15 + 1.7 * wave**1.5) * (1.3 if weekday >= 5 else 1.0)


def populate(store: Store) -> int:
    rng = random.Random(7)
    hours = list(range(MONTH.start_hour, MONTH.end_hour))
    weights = [_rhythm(h) for h in hours]
    per_hour = [TARGET_ROWS * w / sum(weights) for w in weights]
    user_weights = [1 / (i + 1) ** 0.6 for i in range(USERS)]
    text_weights = [1 / (i + 1) ** 0.8 for i in range(TEXT)]
    channels = {(GUILD, 100 + i): f"channel-{i:02d}" for i in range(TEXT)}
    channels |= {(GUILD, 900 + i): f"voice-{i}" for i in range(VOICE)}
    counts: dict[Any, int] = {}
    written = 0
    for hour, amount in zip(hours, per_hour, strict=True):
        n = round(amount)
        users = rng.choices(range(USERS), weights=user_weights, k=n)
        texts = rng.choices(range(TEXT), weights=text_weights, k=n)
        for user, text in zip(users, texts, strict=True):
            label = f"h${user:032x}"
            if rng.random() < 0.05:
                counts[(GUILD, hour, 4, label, 900 + text % VOICE)] = rng.randint(60, 3600)
            else:
                key = (GUILD, hour, 1, label, 100 + text)
                counts[key] = counts.get(key, 0) + rng.randint(1, 6)
        counts[(GUILD, hour, 2, f"h${rng.randrange(USERS):032x}", 0)] = 1
        counts[(GUILD, hour, 5, "", 0)] = 25_000 + hour % 1000
        if len(counts) >= 100_000:
            written += store.write_batch(Batch(counts=counts, channels=channels))
            counts, channels = {}, {}
    written += store.write_batch(Batch(counts=counts, channels=channels))
    return written


@contextlib.contextmanager
def one_pass() -> Iterator[None]:
    """Reports read the month's members in one chunk, on the caller's connection."""
    was = chunks.MAX_CHUNKS
    chunks.MAX_CHUNKS = 1
    try:
        yield
    finally:
        chunks.MAX_CHUNKS = was


def baseline_reports(dump: bytes) -> dict[str, float]:
    """KazTron-style: parse the dump and aggregate per case and user in Python."""

    def compute(kind: str, channel: str | None) -> None:
        per_user: dict[tuple[int, str, str], int] = defaultdict(int)
        reader = csv.reader(io.StringIO(gzip.decompress(dump).decode("utf-8-sig")))
        next(reader)
        for period, event, user, chan, count in reader:
            if event not in ("msg", "voice") or (channel and chan != "#" + channel):
                continue
            when = datetime.fromisoformat(period)
            case = 0 if kind == "full" else when.weekday() if kind == "weekday" else when.hour
            per_user[(case, event, user)] += int(count)
        by_case: dict[tuple[int, str], list[int]] = defaultdict(list)
        for (case, event, _), total in per_user.items():
            by_case[(case, event)].append(total)
        for values in by_case.values():
            statistics.fmean(values)
            if len(values) > 1:
                statistics.stdev(values)

    return {
        "report_full_s_baseline": best_of(1, lambda: compute("full", None)),
        "report_weekday_s_baseline": best_of(1, lambda: compute("weekday", None)),
        "report_hourly_s_baseline": best_of(1, lambda: compute("hourly", None)),
    }


def measure(store: Store, folder: Path, suffix: str) -> dict[str, float]:
    figures: dict[str, float] = {}
    start = time.perf_counter()
    figures[f"activity_rows{suffix}"] = populate(store)
    store.analyze()  # a bulk load, as after an import
    figures[f"populate_s{suffix}"] = time.perf_counter() - start
    for kind in ("full", "weekday", "hourly"):
        figures[f"report_{kind}_s{suffix}"] = best_of(
            3, lambda kind=kind: compute_report(store, GUILD, kind, MONTH)
        )
        if store.dialect == "sqlite":  # same run: one pass on one connection, as before
            with one_pass():
                figures[f"report_{kind}_s_one_pass{suffix}"] = best_of(
                    3, lambda kind=kind: compute_report(store, GUILD, kind, MONTH)
                )
        figures[f"report_{kind}_one_channel_s{suffix}"] = best_of(
            3, lambda kind=kind: compute_report(store, GUILD, kind, MONTH, ONE_CHANNEL)
        )
        figures[f"report_{kind}_s_new_york{suffix}"] = best_of(
            3, lambda kind=kind: compute_report(store, GUILD, kind, NEW_YORK_MONTH)
        )
    dump_path = folder / f"dump{suffix}.csv.gz"

    def export() -> None:
        with dump_path.open("wb") as handle:
            write_dump(store, GUILD, MONTH, handle)

    figures[f"export_s{suffix}"] = best_of(2, export)
    start = time.perf_counter()
    result = import_files(store, GUILD + 1, [dump_path])
    figures[f"import_s{suffix}"] = time.perf_counter() - start
    figures[f"import_rows{suffix}"] = result.rows
    store.delete_guild(GUILD + 1)
    figures.update(measure_closed_month(store, suffix, figures[f"activity_rows{suffix}"]))
    return figures


def used_bytes(store: Store) -> int:
    """Bytes the database holds in use (free pages and dead tuples excluded)."""
    if store.dialect == "sqlite":
        with store.engine.connect() as conn:
            return int(
                conn.exec_driver_sql(
                    "SELECT (page_count - freelist_count) * page_size "
                    "FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()"
                ).scalar()
                or 0
            )
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM FULL")  # dead tuples and their pages given back
        return int(
            conn.exec_driver_sql(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            ).scalar()
            or 0
        )


def measure_closed_month(store: Store, suffix: str, rows: float) -> dict[str, float]:
    """Close the month: snapshots, reports read from them, retention (see the docstring)."""
    figures: dict[str, float] = {}
    month = 202603
    figures[f"db_bytes_per_row{suffix}"] = used_bytes(store) / rows
    store.anonymise_month(GUILD, month)
    start = time.perf_counter()
    assert build_month_snapshots(store, GUILD, month)
    figures[f"snapshot_build_s{suffix}"] = time.perf_counter() - start
    read = live = 0.0
    for kind in ("full", "weekday", "hourly"):
        for channel in (None, ONE_CHANNEL):
            read = max(
                read,
                best_of(20, lambda k=kind, c=channel: compute_report(store, GUILD, k, MONTH, c)),
            )
            live = max(
                live,
                best_of(
                    1, lambda k=kind, c=channel: compute_live_report(store, GUILD, k, MONTH, c)
                ),
            )
    figures[f"report_month_snapshot_s{suffix}"] = read
    figures[f"report_month_snapshot_s_baseline{suffix}"] = live
    start = time.perf_counter()
    assert delete_member_rows(store, GUILD, month, retention_months=1) is not None
    figures[f"retention_s{suffix}"] = time.perf_counter() - start
    figures[f"db_bytes_per_row_after_retention{suffix}"] = used_bytes(store) / rows
    return figures


def main() -> None:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = Store.open(str(folder / "bench.db"))
        figures.update(measure(store, folder, ""))
        figures["peak_rss_mb"] = peak_rss_mb()
        store.close()
        figures.update(baseline_reports((folder / "dump.csv.gz").read_bytes()))
        if postgresql_available():
            with pg_schema() as kwargs:
                pg = Store.open(PG_URL, **kwargs)
                figures.update(measure(pg, folder, "_postgresql"))
                pg.close()
        else:
            print(f"PostgreSQL at {PG_URL} not reachable: skipped", file=sys.stderr)
    emit(figures)


if __name__ == "__main__":
    main()
