"""A guild's statistics clock: its IANA timezone per month, its hour buckets, its months.

Counts are stored per integer *bucket*. Bucket ``b`` of a month ``m`` starts at UTC epoch
second ``b * 3600 - shift(m)``, where ``shift(m)`` is the zone's UTC offset modulo one
hour at the month's start (0 for UTC, New York or Berlin; 1800 for India; 2700 for
Nepal). So for a UTC guild a bucket is exactly the UTC hour index stored before timezones
existed, every bucket starts on a local hour mark (also at +5:30 and +5:45), and a DST
change only changes which local hour a bucket is labelled with: a fall-back's repeated
hour is two buckets, a spring-forward's missing hour is no bucket, nothing is lost or
counted twice. Buckets are indexed in one sequence per guild, without gaps or overlaps:
the last bucket of a month ends where the next month (whose zone may differ) starts.

A guild's statistics month is its local calendar month: month ``m`` starts at local
midnight of the 1st in the zone governing ``m``. A zone applies from a month on (the
guild's *schedule*); a change takes effect at the start of the next local month.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from guildmeter.errors import GuildmeterError

__all__ = [
    "UTC_CALENDAR",
    "UTC_NAME",
    "Calendars",
    "GuildCalendar",
    "TimezoneError",
    "check_zone",
    "format_offset",
    "zone_choices",
]

UTC_NAME = "UTC"
_HOUR = 3600


class TimezoneError(GuildmeterError):
    """An unknown timezone name; the message suggests close matches."""


@lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    """Lower-cased name -> canonical name of every IANA zone this machine knows."""
    names = {name.lower(): name for name in available_timezones()}
    names.setdefault("utc", UTC_NAME)
    return names


def check_zone(name: str) -> str:
    """The canonical IANA name for ``name`` (any case), or `TimezoneError` with suggestions."""
    cleaned = name.strip().replace(" ", "_")
    found = _zone_names().get(cleaned.lower())
    if found is not None:
        try:
            ZoneInfo(found)
        except (ZoneInfoNotFoundError, ValueError):  # pragma: no cover - broken tzdata
            found = None
    if found is None:
        close = difflib.get_close_matches(cleaned, sorted(_zone_names().values()), n=3)
        hint = f" — did you mean {', '.join(close)}?" if close else ""
        shown = name if len(name) <= 60 else name[:60] + "…"
        raise TimezoneError(f"unknown timezone {shown!r}{hint} (IANA names like Asia/Kolkata)")
    return found


def zone_choices(typed: str, limit: int = 25) -> list[str]:
    """Zone names for autocompletion: those starting with ``typed``, then containing it."""
    needle = typed.strip().replace(" ", "_").lower()
    names = sorted(_zone_names().values())
    starts = [n for n in names if n.lower().startswith(needle)]
    inner = [n for n in names if needle in n.lower() and not n.lower().startswith(needle)]
    if not starts and not inner:
        inner = difflib.get_close_matches(typed, names, n=limit)
    return (starts + inner)[:limit]


def format_offset(offset: timedelta) -> str:
    """``+05:30`` style, as ISO 8601 writes it."""
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def _tz(name: str) -> tzinfo:
    """The zone; the stdlib's own UTC for UTC, so UTC guilds' times stay exactly as before."""
    return UTC if name == UTC_NAME else ZoneInfo(name)


def _add_month(month: int, delta: int) -> int:
    zero_based = (month // 100) * 12 + (month % 100 - 1) + delta
    return (zero_based // 12) * 100 + zero_based % 12 + 1


class GuildCalendar:
    """One guild's zones, months and buckets (see the module docstring). Immutable."""

    def __init__(self, schedule: Sequence[tuple[int, str]] = ((0, UTC_NAME),)) -> None:
        """``schedule``: ``(first month YYYYMM, zone)`` pairs; the earliest covers all before."""
        if not schedule:
            schedule = ((0, UTC_NAME),)
        ordered = sorted(schedule)
        self.schedule: tuple[tuple[int, str], ...] = ((0, ordered[0][1]), *ordered[1:])
        self._zones = [(first, _tz(name)) for first, name in self.schedule]
        self.is_utc = all(name == UTC_NAME for _, name in self.schedule)
        self._month_start: dict[int, int] = {}
        self._month_of_bucket: dict[int, int] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GuildCalendar) and other.schedule == self.schedule

    def __hash__(self) -> int:
        return hash(self.schedule)

    def __repr__(self) -> str:
        return f"GuildCalendar({self.schedule!r})"

    # -- zones and months -----------------------------------------------------------------

    def zone_name_for_month(self, month: int) -> str:
        name = self.schedule[0][1]
        for first, zone_name in self.schedule:
            if first <= month:
                name = zone_name
        return name

    def zone_for_month(self, month: int) -> tzinfo:
        zone = self._zones[0][1]
        for first, candidate in self._zones:
            if first <= month:
                zone = candidate
        return zone

    def month_start_s(self, month: int) -> int:
        """UTC epoch second of local midnight on the 1st of ``month``."""
        found = self._month_start.get(month)
        if found is None:
            midnight = datetime(month // 100, month % 100, 1, tzinfo=self.zone_for_month(month))
            found = self._month_start[month] = int(midnight.timestamp())
        return found

    def month_start(self, month: int) -> datetime:
        """The first instant of ``month``, in the month's zone."""
        zone = self.zone_for_month(month)
        return datetime.fromtimestamp(self.month_start_s(month), zone)

    def month_bounds(self, month: int) -> tuple[datetime, datetime]:
        return self.month_start(month), self.month_start(_add_month(month, 1))

    def month_of_s(self, seconds: int) -> int:
        """The statistics month containing UTC epoch second ``seconds``."""
        utc = datetime.fromtimestamp(seconds, UTC)
        month = utc.year * 100 + utc.month
        while seconds < self.month_start_s(month):
            month = _add_month(month, -1)
        while seconds >= self.month_start_s(_add_month(month, 1)):
            month = _add_month(month, 1)
        return month

    def month_of(self, when: datetime) -> int:
        return self.month_of_s(_seconds(when))

    def shift(self, month: int) -> int:
        """Seconds between the UTC hour marks and the local hour marks of ``month``."""
        start = self.month_start_s(month)
        offset = datetime.fromtimestamp(start, self.zone_for_month(month)).utcoffset()
        assert offset is not None
        return int(offset.total_seconds()) % _HOUR

    # -- buckets ----------------------------------------------------------------------------

    def first_bucket(self, month: int) -> int:
        return (self.month_start_s(month) + self.shift(month)) // _HOUR

    def bucket_of_s(self, seconds: int) -> int:
        """The bucket holding UTC epoch second ``seconds``."""
        if self.is_utc:
            return seconds // _HOUR
        month = self.month_of_s(seconds)
        bucket = (seconds + self.shift(month)) // _HOUR
        return min(bucket, self.first_bucket(_add_month(month, 1)) - 1)

    def bucket_of(self, when: datetime) -> int:
        return self.bucket_of_s(_seconds(when))

    def month_of_bucket(self, bucket: int) -> int:
        """The statistics month bucket ``bucket`` belongs to (memoised: hot in flushes)."""
        found = self._month_of_bucket.get(bucket)
        if found is None:
            month = self.month_of_s(bucket * _HOUR)
            while bucket < self.first_bucket(month):
                month = _add_month(month, -1)
            while bucket >= self.first_bucket(_add_month(month, 1)):
                month = _add_month(month, 1)
            found = self._month_of_bucket[bucket] = month
        return found

    def bucket_start_s(self, bucket: int) -> int:
        if self.is_utc:
            return bucket * _HOUR
        return bucket * _HOUR - self.shift(self.month_of_bucket(bucket))

    def bucket_end_s(self, bucket: int) -> int:
        if self.is_utc:
            return (bucket + 1) * _HOUR
        month = self.month_of_bucket(bucket)
        following = _add_month(month, 1)
        if bucket == self.first_bucket(following) - 1:
            return self.month_start_s(following)
        return (bucket + 1) * _HOUR - self.shift(month)

    def bucket_start(self, bucket: int) -> datetime:
        """The bucket's first instant, in its month's zone."""
        zone = self.zone_for_month(self.month_of_bucket(bucket))
        return datetime.fromtimestamp(self.bucket_start_s(bucket), zone)

    def local_hours(self, bucket: int) -> int:
        """Local wall-clock hours since 1970-01-01 00:00 of the bucket's start."""
        if self.is_utc:
            return bucket
        start = self.bucket_start(bucket)
        offset = start.utcoffset()
        assert offset is not None
        return (self.bucket_start_s(bucket) + int(offset.total_seconds())) // _HOUR

    def local_segments(self, first: int, end: int) -> list[tuple[int, int, int]]:
        """``(first bucket, end bucket, shift)`` runs of [first, end) where local wall-clock
        hours = bucket + shift: lets SQL compute local hours of day and weekdays."""
        if first >= end:
            return []
        if self.is_utc:
            return [(first, end, 0)]
        runs: list[tuple[int, int, int]] = []
        bucket = first
        while bucket < end:
            delta = self.local_hours(bucket) - bucket
            stop = self._run_end(bucket, end, delta)
            runs.append((bucket, stop, delta))
            bucket = stop
        return runs

    def _run_end(self, bucket: int, end: int, delta: int) -> int:
        """First bucket after ``bucket`` (at most ``end``) whose shift differs (galloping)."""
        step, good = 1, bucket
        while good + step < end and self.local_hours(good + step) - (good + step) == delta:
            good += step
            step *= 2
        step = max(step // 2, 1)
        while step >= 1:
            probe = good + step
            if probe < end and self.local_hours(probe) - probe == delta:
                good = probe
            else:
                step //= 2
        return good + 1

    # -- dates ------------------------------------------------------------------------------

    def zone_at(self, when: datetime) -> tzinfo:
        return self.zone_for_month(self.month_of(when))

    def local(self, when: datetime) -> datetime:
        """``when`` on the guild's clock."""
        return when.astimezone(self.zone_at(when))

    def midnight(self, day: date) -> datetime:
        """The first instant of local ``day`` (in the zone of the day's month)."""
        zone = self.zone_for_month(day.year * 100 + day.month)
        first = datetime.combine(day, time(0), tzinfo=zone)
        return datetime.fromtimestamp(int(first.timestamp()), zone)

    def zone_label(self, first: int, end: int) -> str:
        """The zone names of the buckets [first, end), for chart and table captions."""
        months = {self.month_of_bucket(first), self.month_of_bucket(max(first, end - 1))}
        names = sorted({self.zone_name_for_month(m) for m in months})
        return " / ".join(names)


UTC_CALENDAR = GuildCalendar()


class Calendars:
    """Every guild's calendar, with a default for guilds that never set a zone. Immutable."""

    def __init__(
        self,
        schedules: Mapping[int, Iterable[tuple[int, str]]] | None = None,
        *,
        default_zone: str = UTC_NAME,
    ) -> None:
        self.default_zone = default_zone
        self.default = (
            UTC_CALENDAR if default_zone == UTC_NAME else GuildCalendar(((0, default_zone),))
        )
        self._by_guild = {g: GuildCalendar(tuple(s)) for g, s in (schedules or {}).items()}

    def get(self, guild_id: int) -> GuildCalendar:
        return self._by_guild.get(guild_id, self.default)

    def all(self) -> list[GuildCalendar]:
        """Every distinct calendar in use (the default included)."""
        return list({self.default, *self._by_guild.values()})

    def schedules(self) -> dict[int, tuple[tuple[int, str], ...]]:
        """Each guild's schedule, as `GuildCalendar.schedule` holds it."""
        return {guild: calendar.schedule for guild, calendar in self._by_guild.items()}

    def updated(self, schedules: Mapping[int, Sequence[tuple[int, str]]]) -> Calendars:
        """A copy with ``schedules``, keeping the calendars (and their memos) that did not
        change."""
        copy = Calendars(default_zone=self.default_zone)
        for guild, schedule in schedules.items():
            kept = self._by_guild.get(guild)
            same = kept is not None and kept.schedule == tuple(schedule)
            copy._by_guild[guild] = kept if same and kept is not None else GuildCalendar(schedule)
        return copy

    @property
    def known(self) -> frozenset[int]:
        """Guilds with a schedule of their own."""
        return frozenset(self._by_guild)

    def pinned(self, guild_ids: Iterable[int]) -> Calendars:
        """A copy where ``guild_ids`` (without a schedule) hold the default explicitly."""
        copy = Calendars(default_zone=self.default_zone)
        copy._by_guild = dict(self._by_guild)
        for guild_id in guild_ids:
            copy._by_guild.setdefault(guild_id, self.default)
        return copy


def _seconds(when: datetime) -> int:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when.isoformat()} — a timezone-aware time is required")
    return int(when.timestamp() // 1)
