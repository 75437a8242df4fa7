"""Import KazTron UserStats files: hourly ``userstats/YYYY-MM-DD.csv.gz`` and dumps.

Hourly files have no header and rows ``period,event,user_hash,channel,count``; KazTron
appends a gzip member per hour to the day's file. Dumps (``.userstats``) have a header
line. Both are read the same way. A folder (KazTron's ``userstats/``) means every
``*.csv.gz`` in it, in date order (their names are dates).

- A user hash keeps its identity within its month: ``h$…`` + hex (or KazTron's older bare
  hex) stays a pseudonym of that month; ``uYYYYMM$…`` tokens (ours, or those of KazTron's
  month-end Anonymizer) stay tokens. Anything else is refused: a bare decimal number is
  most likely a raw Discord user id, which must never be stored.
- KazTron records joins and parts anonymously: their user hash is empty, and they are
  counted with no member, like member totals.
- Channels given by ``#name`` become our channels by name; a bare number (a channel
  KazTron could no longer resolve) is a channel id; an empty channel is server-wide.
- Periods must be whole hours; counts must fit in 64 bits.
- Re-importing: each file's SHA-256 is recorded with the import, in the same transaction;
  a file seen before is skipped, so its counts cannot double.
- Everything is imported in one transaction: a malformed row stops the import with the
  file and line named, and nothing is kept.
- Rows of a month whose member rows retention already deleted are discarded (its reports
  are final): the result counts them apart (`ImportResult.rows_discarded`) and says why.
- Message and join rows of hours the history backfill already counted are skipped
  (`ImportResult.rows_skipped`, with the hours), and the hours an import fills with
  messages and joins are recorded so a later backfill skips them (`guildmeter.store.overlap`);
  an import while a backfill of the guild is unfinished is refused.
- Every row of an hour the database already holds counts of (the bot counted it live —
  KazTron and guildmeter ran side by side — or an earlier import of another file did),
  and of an hour an earlier file of the same import filled, is skipped: an hour's counts
  come from one source (`ImportResult.rows_held`, with the hours).
"""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import io
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from guildmeter.collect.accumulator import CountKey
from guildmeter.errors import GuildmeterError
from guildmeter.events import NO_CHANNEL, NO_USER, EventKind
from guildmeter.privacy.anonymize import TOKEN_PREFIX
from guildmeter.privacy.keyring import PSEUDONYM_PREFIX
from guildmeter.reports.daterange import EARLIEST
from guildmeter.store import Store
from guildmeter.store.backfill import history_lock
from guildmeter.store.overlap import (
    OVERLAP_EVENTS,
    Cover,
    backfill_cover,
    held_hours,
    record_import_hours,
)
from guildmeter.store.retention import PastRetention
from guildmeter.store.snapshots import collecting_discards
from guildmeter.store.sql import ImportSession
from guildmeter.timeutil import add_months, utcnow
from guildmeter.zones import GuildCalendar

__all__ = ["ImportFormatError", "ImportResult", "expand_paths", "import_files"]

_CHUNK_ROWS = 50_000
_MAX_COUNT = 2**63 - 1
_MAX_CHANNEL_ID = 2**63 - 1
_HASH = re.compile(r"(?:h\$)?[0-9a-f]{32,128}")
_TOKEN = re.compile(r"u\d{6}\$[A-Za-z0-9_\-+/=]{4,64}")
_ANONYMOUS_EVENTS = (EventKind.JOIN, EventKind.PART, EventKind.TOTAL_USERS)


class ImportFormatError(GuildmeterError, ValueError):
    """A file that is not a KazTron stats file, or a malformed row (file and line named)."""


@dataclass
class ImportResult:
    files_imported: list[str] = field(default_factory=list)
    files_skipped: list[tuple[str, datetime]] = field(default_factory=list)
    #: Files of 0 bytes (KazTron stopped before writing): nothing read, nothing recorded.
    files_empty: list[str] = field(default_factory=list)
    #: Rows read from the files imported; ``rows_discarded`` of them were not kept.
    rows: int = 0
    #: The first and last hour read (None when nothing was).
    first: datetime | None = None
    last: datetime | None = None
    #: Rows of months past retention (``past_retention`` says which, and why): discarded.
    rows_discarded: int = 0
    past_retention: PastRetention | None = None
    #: Message and join rows of hours the history backfill had counted: skipped. The
    #: start of the first such hour and the end of the last (None when none was).
    rows_skipped: int = 0
    skipped: tuple[datetime, datetime] | None = None
    #: Rows of hours already counted (live, or by an earlier import or file): skipped.
    #: ``held_hours`` of them, from the start of the first to the end of the last.
    rows_held: int = 0
    held_hours: int = 0
    held: tuple[datetime, datetime] | None = None

    @property
    def rows_imported(self) -> int:
        """Rows whose counts were kept."""
        return self.rows - self.rows_discarded - self.rows_skipped - self.rows_held

    def _skipped(self, calendar: GuildCalendar, first_hour: int, last_hour: int) -> None:
        self.skipped = _widen(self.skipped, calendar, first_hour, last_hour)

    def _held(self, calendar: GuildCalendar, hours: set[int]) -> None:
        self.held_hours += len(hours)
        self.held = _widen(self.held, calendar, min(hours), max(hours))

    def _saw(self, calendar: GuildCalendar, first_hour: int, last_hour: int) -> None:
        first, last = calendar.bucket_start(first_hour), calendar.bucket_start(last_hour)
        self.first = first if self.first is None else min(self.first, first)
        self.last = last if self.last is None else max(self.last, last)


def _widen(
    span: tuple[datetime, datetime] | None, calendar: GuildCalendar, first: int, last: int
) -> tuple[datetime, datetime]:
    """``span`` widened to the start of bucket ``first`` and the end of bucket ``last``, in
    UTC (as they are said)."""
    start = calendar.bucket_start(first).astimezone(UTC)
    end = datetime.fromtimestamp(calendar.bucket_end_s(last), UTC)
    return (start, end) if span is None else (min(start, span[0]), max(end, span[1]))


class _HeldHours:
    """The hours an import must leave alone: held by the database when the import began
    (read a month at a time, on first sight, before the import writes into it), and
    filled by the import's earlier files (hours they kept a row of: not one whose rows
    the backfill had all counted, as if those files had been imported before)."""

    def __init__(self, session: ImportSession, cover: Cover) -> None:
        self._session = session
        self._cover = cover
        self._months: dict[int, set[int]] = {}
        self.earlier_files: set[int] = set()
        #: The hours skipped so far, by any file (each is said once).
        self.skipped: set[int] = set()

    def __contains__(self, hour: int) -> bool:
        if hour in self.earlier_files:
            return True
        calendar = self._session.calendar
        month = calendar.month_of_bucket(hour)
        held = self._months.get(month)
        if held is None:
            first = calendar.first_bucket(month)
            end = calendar.first_bucket(add_months(month, 1))
            conn, guild_id = self._session.connection, self._session.guild_id
            held = self._months[month] = held_hours(conn, guild_id, first, end, self._cover)
        return hour in held


@dataclass(frozen=True)
class _Row:
    hour: int
    event: EventKind
    label: str
    channel: str
    count: int
    line: int


def expand_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Files to import: folders become their ``*.csv.gz`` files in name (date) order."""
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.csv.gz") if p.is_file())
            if not found:
                raise ImportFormatError(f"{path}: no *.csv.gz files in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ImportFormatError(f"{path}: no such file or folder")
    unique = list(dict.fromkeys(files))
    return unique


def import_files(
    store: Store,
    guild_id: int,
    paths: Sequence[str | Path],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import ``paths`` into the guild; see the module docstring.

    ``progress(bytes_done, bytes_total)`` is called as the compressed files are read.
    """
    files = expand_paths(paths)
    total = sum(path.stat().st_size for path in files)
    done = 0
    result = ImportResult()
    rows_by_hour: Counter[int] = Counter()
    filled: dict[int, set[int]] = {event: set() for event in OVERLAP_EVENTS}
    with collecting_discards() as discarded, store.import_session(guild_id) as session:
        history_lock(store, session.connection, guild_id)  # no backfill claims meanwhile
        cover = backfill_cover(store, session.connection, guild_id)
        held = _HeldHours(session, cover)
        for path in files:
            if path.stat().st_size == 0:
                result.files_empty.append(str(path))
                continue
            fingerprint = _fingerprint(path)
            when = session.imported_at(fingerprint)
            if when is not None:
                result.files_skipped.append((str(path), when))
                done += path.stat().st_size
                continue
            rows = _import_one(
                session,
                path,
                functools.partial(_report, progress, done, total),
                result,
                rows_by_hour,
                cover,
                filled,
                held,
            )
            session.record(fingerprint, str(path), rows)
            result.files_imported.append(str(path))
            result.rows += rows
            done += path.stat().st_size
            _report(progress, done, total)
        record_import_hours(store, session.connection, guild_id, filled)
    result.past_retention = PastRetention.of(discarded, guild_id)
    if result.past_retention is not None:
        calendar = store.calendars.get(guild_id)
        gone = result.past_retention.months
        result.rows_discarded = sum(
            n for hour, n in rows_by_hour.items() if calendar.month_of_bucket(hour) in gone
        )
    if result.rows:
        store.analyze()
    return result


def _report(
    progress: Callable[[int, int], None] | None, done: int, total: int, within: int = 0
) -> None:
    if progress is not None:
        progress(done + within, total)


def _fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _import_one(
    session: ImportSession,
    path: Path,
    progress: Callable[[int], None],
    result: ImportResult,
    rows_by_hour: Counter[int],
    cover: Cover,
    filled: dict[int, set[int]],
    held: _HeldHours,
) -> int:
    """Import one file; returns the rows read (skipped ones included)."""
    guild_id = session.guild_id
    counts: dict[CountKey, int] = {}
    names: dict[tuple[int, int], str] = {}
    channel_ids: dict[str, int] = {}
    rows = 0
    first_hour, last_hour = None, None
    skip_first, skip_last = None, None
    covered = bool(cover.hours)
    checked: set[int] = set()  # hours of this file not held
    written: set[int] = set()  # hours of this file a row was kept of
    skipped_held: set[int] = set()
    for row, position in _read(path, session.calendar):
        code = int(row.event)
        if row.hour not in checked:
            if row.hour in skipped_held or row.hour in held:
                skipped_held.add(row.hour)
                result.rows_held += 1
                rows += 1
                continue
            checked.add(row.hour)
        if code in filled:
            if covered and cover.covers(code, row.hour):
                result.rows_skipped += 1
                skip_first = row.hour if skip_first is None else min(skip_first, row.hour)
                skip_last = row.hour if skip_last is None else max(skip_last, row.hour)
                rows += 1
                continue
            filled[code].add(row.hour)
        channel_id = channel_ids.get(row.channel)
        if channel_id is None:
            channel_id = channel_ids[row.channel] = _channel_id(session, row.channel, names)
        key = (guild_id, row.hour, int(row.event), row.label, channel_id)
        if row.event is EventKind.TOTAL_USERS:
            counts[key] = row.count  # a level: the file's latest value wins
        else:
            counts[key] = counts.get(key, 0) + row.count
            if counts[key] > _MAX_COUNT:
                raise ImportFormatError(
                    f"{path}, line {row.line}: counts of this hour, event, user and channel "
                    "add up beyond 64 bits"
                )
        first_hour = row.hour if first_hour is None else min(first_hour, row.hour)
        last_hour = row.hour if last_hour is None else max(last_hour, row.hour)
        rows += 1
        rows_by_hour[row.hour] += 1
        written.add(row.hour)
        if len(counts) >= _CHUNK_ROWS:
            session.add(counts, names)
            counts, names = {}, {}
            progress(position)
    session.add(counts, names)
    if first_hour is not None and last_hour is not None:
        result._saw(session.calendar, first_hour, last_hour)
    if skip_first is not None and skip_last is not None:
        result._skipped(session.calendar, skip_first, skip_last)
    if skipped_held - held.skipped:
        result._held(session.calendar, skipped_held - held.skipped)
        held.skipped |= skipped_held
    held.earlier_files |= written
    return rows


def _channel_id(session: ImportSession, text: str, names: dict[tuple[int, int], str]) -> int:
    if not text:
        return NO_CHANNEL
    if text.startswith("#"):
        channel_id = session.channel_id(text[1:])
        names[(session.guild_id, channel_id)] = text[1:]
        return channel_id
    return int(text)  # validated by the reader: digits, within 63 bits


def _read(path: Path, calendar: GuildCalendar) -> Iterator[tuple[_Row, int]]:
    """Parsed rows with the compressed bytes read so far; ImportFormatError on bad data."""
    hours: dict[str, int] = {}
    try:
        with path.open("rb") as raw, gzip.GzipFile(fileobj=raw) as unzipped:
            text = io.TextIOWrapper(unzipped, encoding="utf-8-sig", newline="")
            reader = csv.reader(text)
            for line, fields in enumerate(reader, start=1):
                if not fields:
                    continue
                if line == 1 and _is_header(fields):
                    continue
                yield _parse(fields, hours, path, line, calendar), raw.tell()
    except (OSError, EOFError, zlib.error) as exc:
        raise ImportFormatError(
            f"{path}: not a readable gzip file ({exc}); expected KazTron's "
            "userstats/YYYY-MM-DD.csv.gz or a .userstats dump"
        ) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportFormatError(f"{path}: not a UTF-8 CSV file ({exc})") from None


def _is_header(fields: list[str]) -> bool:
    return fields[0].strip().lower() == "period"


def _parse(
    fields: list[str], hours: dict[str, int], path: Path, line: int, calendar: GuildCalendar
) -> _Row:
    def bad(why: str, *, show_row: bool = True) -> ImportFormatError:
        row = f" (row: {','.join(fields)[:120]})" if show_row else ""
        return ImportFormatError(f"{path}, line {line}: {why}{row}")

    if len(fields) != 5:
        raise bad(
            f"expected 5 columns (period, event, user hash, channel, count), got {len(fields)}"
        )
    period, event_name, user, channel, count_text = (f.strip() for f in fields)
    hour = hours.get(period)
    if hour is None:
        try:
            when = datetime.fromisoformat(period)
        except ValueError:
            raise bad(f"period {period[:40]!r} is not an ISO date and time") from None
        if (when.minute, when.second, when.microsecond) != (0, 0, 0):
            raise bad(f"period {period!r} is not the start of an hour")
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # KazTron writes naive UTC times
        if when < EARLIEST:  # no report could ever reach it
            raise bad(f"period {period!r} is before Discord existed ({EARLIEST:%Y-%m-%d})")
        if when > utcnow():  # its month would keep a live pseudonym and key until then
            raise bad(f"period {period!r} is in the future")
        # Our dumps of non-UTC guilds carry the offset (2026-10-04 00:00:00+05:30).
        hour = hours[period] = calendar.bucket_of(when)
    try:
        event = EventKind.parse(event_name)
    except ValueError as exc:
        raise bad(str(exc)[:120]) from None
    if not (count_text.isascii() and count_text.isdigit()):
        if count_text.startswith("-") and count_text[1:].isdigit():
            raise bad(f"count {count_text[:30]} is negative")
        raise bad(f"count {count_text[:30]!r} is not a whole number")
    if len(count_text) > 19 or int(count_text) > _MAX_COUNT:
        raise bad(f"count {count_text[:30]} does not fit in 64 bits")
    count = int(count_text)
    label = _label(event, user, bad)
    if channel and not channel.startswith("#"):
        if not (channel.isascii() and channel.isdigit()):
            raise bad(f"channel {channel[:40]!r} is neither '#name', a channel id nor empty")
        if len(channel) > 19 or int(channel) > _MAX_CHANNEL_ID:
            raise bad(f"channel id {channel[:30]} does not fit in 63 bits")
    if event in _ANONYMOUS_EVENTS:
        channel = ""  # server-wide, whatever the file says
    return _Row(hour, event, label, channel, count, line)


def _label(event: EventKind, user: str, bad: Callable[..., ImportFormatError]) -> str:
    """The stored label of a user hash; see the module docstring for what is accepted."""
    if event is EventKind.TOTAL_USERS or (not user and event in _ANONYMOUS_EVENTS):
        return NO_USER
    if not user:
        raise bad(f"a {event.label} event needs a user hash")
    if _TOKEN.fullmatch(user):
        return user
    if _HASH.fullmatch(user):
        return user if user.startswith(PSEUDONYM_PREFIX) else PSEUDONYM_PREFIX + user
    if user.removeprefix(PSEUDONYM_PREFIX).isdigit():
        raise bad(  # the number itself is not repeated: it may be someone's id
            f"the user hash is a plain number of {len(user)} characters, most likely a raw "
            "Discord user id: refused, raw ids are never stored",
            show_row=False,
        )
    raise bad(
        f"user hash {user[:40]!r} is neither h$ and hex digits, KazTron's bare hex, "
        f"nor a {TOKEN_PREFIX}YYYYMM$ token"
    )
