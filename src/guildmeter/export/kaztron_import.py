"""Import KazTron UserStats files: hourly ``userstats/YYYY-MM-DD.csv.gz`` and dumps.

Hourly files have no header and rows ``period,event,user_hash,channel,count``; KazTron
appends a gzip member per hour to the day's file. Dumps (``.userstats``) have a header
line. Both are read the same way.

- A user hash keeps its identity within its month: ``h$…`` (or KazTron's older bare hex)
  stays a pseudonym of that month, ``uYYYYMM$…`` tokens stay tokens. Months that are over
  are anonymised by the caller afterwards, as for our own data.
- Channels given by ``#name`` become our channels by name; a bare number is a channel id;
  an empty channel is a server-wide event.
- Re-importing: each file's SHA-256 is recorded with the import, in the same transaction;
  a file seen before is skipped, so its counts cannot double.
- Everything is imported in one transaction: a malformed row stops the import with the
  file and line named, and nothing is kept.
"""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import io
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from guildmeter.collect.accumulator import CountKey
from guildmeter.errors import GuildmeterError
from guildmeter.events import NO_CHANNEL, NO_USER, EventKind
from guildmeter.privacy.anonymize import TOKEN_PREFIX
from guildmeter.privacy.keyring import PSEUDONYM_PREFIX
from guildmeter.store import Store
from guildmeter.store.sql import ImportSession

__all__ = ["ImportFormatError", "ImportResult", "import_files"]

_CHUNK_ROWS = 50_000
_MAX_LABEL = 128


class ImportFormatError(GuildmeterError, ValueError):
    """A file that is not a KazTron stats file, or a malformed row (file and line named)."""


@dataclass
class ImportResult:
    files_imported: list[str] = field(default_factory=list)
    files_skipped: list[tuple[str, datetime]] = field(default_factory=list)
    rows: int = 0


@dataclass(frozen=True)
class _Row:
    hour: int
    event: EventKind
    label: str
    channel: str
    count: int


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
    files = [Path(p) for p in paths]
    for path in files:
        if not path.is_file():
            raise ImportFormatError(f"{path}: no such file")
    total = sum(path.stat().st_size for path in files)
    done = 0
    result = ImportResult()
    with store.import_session(guild_id) as session:
        for path in files:
            fingerprint = _fingerprint(path)
            when = session.imported_at(fingerprint)
            if when is not None:
                result.files_skipped.append((str(path), when))
                done += path.stat().st_size
                continue
            rows = _import_one(session, path, functools.partial(_report, progress, done, total))
            session.record(fingerprint, str(path), rows)
            result.files_imported.append(str(path))
            result.rows += rows
            done += path.stat().st_size
            _report(progress, done, total)
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


def _import_one(session: ImportSession, path: Path, progress: Callable[[int], None]) -> int:
    guild_id = session.guild_id
    counts: dict[CountKey, int] = {}
    names: dict[tuple[int, int], str] = {}
    channel_ids: dict[str, int] = {}
    rows = 0
    for row, position in _read(path):
        channel_id = channel_ids.get(row.channel)
        if channel_id is None:
            channel_id = channel_ids[row.channel] = _channel_id(session, row.channel, names)
        key = (guild_id, row.hour, int(row.event), row.label, channel_id)
        if row.event is EventKind.TOTAL_USERS:
            counts[key] = row.count  # a level: the file's latest value wins
        else:
            counts[key] = counts.get(key, 0) + row.count
        rows += 1
        if len(counts) >= _CHUNK_ROWS:
            session.add(counts, names)
            counts, names = {}, {}
            progress(position)
    session.add(counts, names)
    return rows


def _channel_id(session: ImportSession, text: str, names: dict[tuple[int, int], str]) -> int:
    if not text:
        return NO_CHANNEL
    if text.startswith("#"):
        channel_id = session.channel_id(text[1:])
        names[(session.guild_id, channel_id)] = text[1:]
        return channel_id
    return int(text)  # validated as digits by the reader


def _read(path: Path) -> Iterator[tuple[_Row, int]]:
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
                yield _parse(fields, hours, path, line), raw.tell()
    except (OSError, EOFError, zlib.error) as exc:
        raise ImportFormatError(
            f"{path}: not a readable gzip file ({exc}); expected KazTron's "
            "userstats/YYYY-MM-DD.csv.gz or a .userstats dump"
        ) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportFormatError(f"{path}: not a UTF-8 CSV file ({exc})") from None


def _is_header(fields: list[str]) -> bool:
    return fields[0].strip().lower() == "period"


def _parse(fields: list[str], hours: dict[str, int], path: Path, line: int) -> _Row:
    def bad(why: str) -> ImportFormatError:
        return ImportFormatError(f"{path}, line {line}: {why} (row: {','.join(fields)[:120]})")

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
            raise bad(f"period {period!r} is not an ISO date and time") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # KazTron writes naive UTC times
        hour = hours[period] = int(when.timestamp() // 3600)
    try:
        event = EventKind.parse(event_name)
    except ValueError as exc:
        raise bad(str(exc)) from None
    try:
        count = int(count_text)
    except ValueError:
        raise bad(f"count {count_text!r} is not a whole number") from None
    if count < 0:
        raise bad(f"count {count} is negative")
    if event is EventKind.TOTAL_USERS:
        label = NO_USER
    elif not user:
        raise bad(f"a {event.label} event needs a user hash")
    elif user.startswith((PSEUDONYM_PREFIX, TOKEN_PREFIX)):
        label = user
    else:
        label = PSEUDONYM_PREFIX + user  # KazTron's older bare-hex hashes
    if len(label) > _MAX_LABEL:
        raise bad(f"user hash longer than {_MAX_LABEL} characters")
    if channel and not channel.startswith("#") and not channel.isdigit():
        raise bad(f"channel {channel!r} is neither '#name', a channel id nor empty")
    if event in (EventKind.JOIN, EventKind.PART, EventKind.TOTAL_USERS):
        channel = ""  # server-wide, whatever the file says
    return _Row(hour, event, label, channel, count)
