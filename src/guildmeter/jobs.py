"""Heavy statistics work (dumps, reports with charts, the usage summary) as plain functions.

The extension runs these in worker *processes*: formatting a year-long dump or drawing a
chart holds the GIL for seconds, and a flush sharing the process with it would crawl (every
database call gives the GIL up and must wait to get it back). Each function takes a
`StoreSpec` (how to open the database) and picklable values, and returns picklable ones;
each worker opens a store once and keeps it.
"""

from __future__ import annotations

import contextlib
import io
import os
from datetime import datetime
from typing import Literal

from guildmeter.errors import GuildmeterError
from guildmeter.reports.compute import Report
from guildmeter.reports.daterange import DateRange
from guildmeter.reports.usage import UsageSummary
from guildmeter.store import Store, StoreSpec

__all__ = [
    "DumpTooLargeError",
    "build_snapshots",
    "dump",
    "full_report",
    "lower_priority",
    "retention",
    "table_report",
    "usage",
]

_stores: dict[str, Store] = {}

#: How much lower a worker process's CPU priority is than the bot's (Unix niceness).
WORKER_NICENESS = 10


def lower_priority() -> None:
    """Each worker process's first step: give the CPU up to the bot's own process.

    The workers run apart from the flush (no shared GIL), but on the same cores: a
    year-long dump formatted at the bot's priority takes the CPU the event loop and the
    flush thread need, and a burst of events then waits seconds for its flush. At a lower
    priority the workers take what the bot leaves (a quiet bot leaves them everything).
    """
    with contextlib.suppress(AttributeError, OSError):  # no os.nice (Windows), or refused
        os.nice(WORKER_NICENESS)


def _store(spec: StoreSpec | Store) -> Store:
    if isinstance(spec, Store):  # the same process (a thread pool): use it as it is
        return spec
    key = repr(spec)
    store = _stores.get(key)
    if store is None:
        store = _stores[key] = spec.open()
    return store


class DumpTooLargeError(GuildmeterError):
    """The dump outgrew what may be sent; stopped as soon as it did, not built whole."""


def dump(
    spec: StoreSpec | Store, guild_id: int, span: DateRange, max_bytes: int | None = None
) -> tuple[bytes, str | None, int]:
    """The raw dump as gzip CSV bytes, its warning, and its row count.

    With ``max_bytes``, stops with `DumpTooLargeError` once the compressed file passes it.
    """
    from guildmeter.export.csv_gz import write_dump

    buffer = io.BytesIO()

    def check(_rows: int) -> None:
        if max_bytes is not None and buffer.tell() > max_bytes:
            raise DumpTooLargeError(
                f"The dump for {span.describe()} is more than {max_bytes / 1e6:.0f} MB, more "
                "than Discord accepts. Ask for a shorter range, or use `guildmeter export`."
            )

    result = write_dump(_store(spec), guild_id, span, buffer, progress=check)
    check(result.rows)
    return buffer.getvalue(), result.warning, result.rows


def full_report(
    spec: StoreSpec | Store, guild_id: int, span: DateRange, channel: str | None
) -> Report:
    from guildmeter.reports import compute_report

    return compute_report(_store(spec), guild_id, "full", span, channel)


def table_report(
    spec: StoreSpec | Store,
    guild_id: int,
    kind: Literal["weekday", "hourly"],
    span: DateRange,
    channel: str | None,
) -> tuple[Report, bytes, bytes]:
    """A weekday or hourly report, its gzip CSV and its chart (PNG)."""
    from guildmeter.charts import render_activity_png
    from guildmeter.export.csv_gz import write_report_csv
    from guildmeter.reports import compute_report
    from guildmeter.reports.series import activity_series

    store = _store(spec)
    report = compute_report(store, guild_id, kind, span, channel)
    csv = io.BytesIO()
    write_report_csv(report, csv)
    chart = render_activity_png(activity_series(store, guild_id, span, channel))
    return report, csv.getvalue(), chart


def usage(
    spec: StoreSpec | Store, guild_id: int, days: int, now: datetime
) -> tuple[UsageSummary, bytes]:
    """The ``/stats`` summary and its chart (PNG)."""
    from guildmeter.charts import render_usage_png
    from guildmeter.reports.usage import usage_summary

    summary = usage_summary(_store(spec), guild_id, days, now=now)
    return summary, render_usage_png(summary)


def build_snapshots(
    spec: StoreSpec | Store, months: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Build and store the report snapshots of these anonymised guild-months (reads every
    row of each: a worker's job); returns those stored (a late write discards a build)."""
    from guildmeter.reports.snapshots import build_month_snapshots

    store = _store(spec)
    if not isinstance(spec, Store):  # a worker process's store: guilds seen since it opened
        store.reload_calendars()
    return [(g, m) for g, m in months if build_month_snapshots(store, g, m)]


def retention(spec: StoreSpec | Store, due: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """Delete the member-level rows of ``(guild, month, retention_months)`` (see
    `guildmeter.store.retention`); returns the months done."""
    from guildmeter.store.retention import apply_retention

    store = _store(spec)
    if not isinstance(spec, Store):
        store.reload_calendars()
    return [(r.guild_id, r.month) for r in apply_retention(store, due)]
