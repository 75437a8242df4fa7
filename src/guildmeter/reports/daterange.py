"""Date ranges as moderators type them: ``2018-01-12``, ``12 Jan 2018 to yesterday``...

A day starts at midnight UTC: every date names that day's midnight, a single date means
that whole day, and ``a to b`` runs up to and excluding ``b``. Parsing of English and
relative dates is dateparser's; what a date *means* is decided here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dateparser

from guildmeter.errors import GuildmeterError
from guildmeter.timeutil import add_months, month_of, month_start, utcnow

__all__ = ["EXAMPLES", "DateRange", "DateRangeError", "parse_daterange"]

EXAMPLES = (
    "2018-01-12",
    "yesterday",
    "12 Jan 2018",
    "2018-01-12 to 2018-01-14",
    "3 days ago to yesterday",
    "2018-01-01 to 7 days ago",
)
_SEPARATOR = re.compile(r"\s+(?:to|until|-|\u2013|\u2014)\s+", re.IGNORECASE)
_SETTINGS = {
    "TIMEZONE": "UTC",
    "TO_TIMEZONE": "UTC",
    "RETURN_AS_TIMEZONE_AWARE": True,
    "PREFER_DATES_FROM": "past",
    "PREFER_DAY_OF_MONTH": "first",
    "DATE_ORDER": "YMD",
}


class DateRangeError(GuildmeterError, ValueError):
    """Text that is not a date or a range of dates."""


@dataclass(frozen=True)
class DateRange:
    """[start, end) in UTC, both at midnight."""

    start: datetime
    end: datetime

    @property
    def start_hour(self) -> int:
        return int(self.start.timestamp() // 3600)

    @property
    def end_hour(self) -> int:
        return int(self.end.timestamp() // 3600)

    @property
    def months(self) -> list[int]:
        """Every ``YYYYMM`` the range touches."""
        first, last = month_of(self.start), month_of(self.end - timedelta(microseconds=1))
        months = [first]
        while months[-1] < last:
            months.append(add_months(months[-1], 1))
        return months

    @property
    def within_one_month(self) -> bool:
        return len(self.months) == 1

    def describe(self) -> str:
        last_day = self.end - timedelta(days=1)
        if self.end - self.start == timedelta(days=1):
            return f"{self.start:%Y-%m-%d}"
        return f"{self.start:%Y-%m-%d} to {last_day:%Y-%m-%d} (inclusive, UTC)"

    @classmethod
    def last_full_month(cls, now: datetime | None = None) -> DateRange:
        current = month_of(now or utcnow())
        return cls(month_start(add_months(current, -1)), month_start(current))


def parse_daterange(text: str | None, *, now: datetime | None = None) -> DateRange:
    """Parse a single date or ``date1 to date2``; empty text means last full month.

    Reversed ranges are swapped. Unparseable text raises DateRangeError quoting it.
    """
    now = now or utcnow()
    if text is None or not text.strip():
        return DateRange.last_full_month(now)
    parts = _SEPARATOR.split(text.strip(), maxsplit=1)
    if len(parts) == 1:
        day = _parse_day(parts[0], text, now)
        return DateRange(day, day + timedelta(days=1))
    first, second = (_parse_day(part, text, now) for part in parts)
    if second < first:
        first, second = second, first
    if first == second:
        raise DateRangeError(
            f"the range {text!r} is empty: it ends where it starts, and the end date is "
            f"excluded. For that single day, give just {first:%Y-%m-%d}."
        )
    return DateRange(first, second)


def _parse_day(part: str, whole: str, now: datetime) -> datetime:
    part = part.strip()
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(part)
    except ValueError:
        settings = dict(_SETTINGS, RELATIVE_BASE=now.astimezone(UTC).replace(tzinfo=None))
        parsed = dateparser.parse(part, languages=["en"], settings=settings)
    if parsed is None:
        examples = ", ".join(f"`{e}`" for e in EXAMPLES)
        where = f" in {whole!r}" if part != whole.strip() else ""
        raise DateRangeError(
            f"could not understand the date {part!r}{where}. Give a date or `date1 to date2` "
            f"(the second date is excluded), for example {examples}."
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    return parsed.replace(hour=0, minute=0, second=0, microsecond=0)
