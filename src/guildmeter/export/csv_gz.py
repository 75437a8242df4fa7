"""Gzip-compressed, Excel-compatible CSV: the raw dump and the weekday/hourly reports.

Excel-compatible means UTF-8 with a byte-order mark (without it Excel reads emoji and
non-Latin channel names as mojibake) and CRLF line ends.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from guildmeter.events import EventKind
from guildmeter.reports.compute import Report, report_table
from guildmeter.reports.daterange import DateRange
from guildmeter.store import Store
from guildmeter.timeutil import hour_start
from guildmeter.zones import GuildCalendar, format_offset

__all__ = [
    "DUMP_HEADER",
    "NOT_ANONYMISED_WARNING",
    "DumpResult",
    "write_dump",
    "write_report_csv",
]

DUMP_HEADER = ("Period", "Event", "User hash", "Channel", "Count")
NOT_ANONYMISED_WARNING = "not yet anonymised — do not distribute"


@dataclass(frozen=True)
class DumpResult:
    rows: int
    unanonymised_months: list[int]

    @property
    def warning(self) -> str | None:
        """The warning to show beside the file, if it holds live pseudonyms."""
        if not self.unanonymised_months:
            return None
        months = ", ".join(f"{m // 100}-{m % 100:02d}" for m in self.unanonymised_months)
        return (
            f"{months}: {NOT_ANONYMISED_WARNING}. These user hashes are keyed pseudonyms of a "
            "month in progress; they become anonymous tokens after the month ends."
        )


@contextmanager
def _gzip_csv(target: IO[bytes]) -> Iterator[Any]:
    with gzip.GzipFile(fileobj=target, mode="wb", compresslevel=5) as compressed:
        text = io.TextIOWrapper(compressed, encoding="utf-8-sig", newline="")
        yield csv.writer(text)
        text.flush()
        text.detach()


def write_dump(
    store: Store,
    guild_id: int,
    daterange: DateRange,
    target: IO[bytes],
    *,
    progress: Callable[[int], None] | None = None,
) -> DumpResult:
    """Write the guild's raw counts in ``daterange`` as gzip CSV into ``target``.

    Rows are formatted a day at a time into one string: periods, event names, labels and
    counts never need CSV quoting, and channel names are quoted once, up front.
    """
    channel_label = {
        cid: _csv_field(f"#{name}") for cid, name in store.channel_names(guild_id).items()
    }
    channel_label[0] = ""
    labels = store.member_labels(guild_id, daterange.months)
    labels[0] = ""
    event_names = {int(kind): kind.label for kind in EventKind}
    periods: dict[int, str] = {}
    period_of = _period_formatter(daterange.calendar)
    rows = 0
    with gzip.GzipFile(fileobj=target, mode="wb", compresslevel=5) as compressed:
        compressed.write(("\ufeff" + ",".join(DUMP_HEADER) + "\r\n").encode("utf-8"))
        for chunk in store.iter_dump(guild_id, daterange.start_hour, daterange.end_hour):
            lines = []
            for hour, event, member_id, channel_id, count in chunk:
                period = periods.get(hour)
                if period is None:
                    period = periods[hour] = period_of(hour)
                channel = channel_label.get(channel_id)
                if channel is None:
                    channel = channel_label[channel_id] = f"#{channel_id}"
                label = labels.get(member_id)
                if label is None:  # a member the live flush created after we read labels
                    labels.update(store.member_labels(guild_id, daterange.months))
                    label = labels.get(member_id, "")
                lines.append(f"{period},{event_names[event]},{label},{channel},{count}\r\n")
            compressed.write("".join(lines).encode("utf-8"))
            rows += len(lines)
            if progress is not None:
                progress(rows)
    return DumpResult(rows, store.unanonymised_months(guild_id, daterange.months))


def _period_formatter(calendar: GuildCalendar) -> Callable[[int], str]:
    """A bucket's Period: KazTron's ``YYYY-MM-DD HH:MM:SS`` in UTC for a UTC guild (byte
    for byte as before); the local hour's start with its offset for other guilds."""
    if calendar.is_utc:
        return lambda hour: hour_start(hour).strftime("%Y-%m-%d %H:%M:%S")

    def local(hour: int) -> str:
        start = calendar.bucket_start(hour)
        offset = start.utcoffset()
        assert offset is not None
        return start.strftime("%Y-%m-%d %H:%M:%S") + format_offset(offset)

    return local


def _csv_field(text: str) -> str:
    """``text`` quoted as Excel's CSV dialect would, when it needs quoting."""
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_report_csv(report: Report, target: IO[bytes]) -> None:
    """The seed's 12 columns, ``Case`` first, one row per case."""
    header, *body = report_table(report)
    with _gzip_csv(target) as writer:
        writer.writerow(header)
        for row in body:
            writer.writerow([round(v, 6) if isinstance(v, float) else v for v in row])
