"""Date ranges as moderators type them: ``2018-01-12``, ``October 2026``, ``last week``...

A day starts at midnight on the guild's clock (its timezone, `guildmeter.zones`; UTC by
default): ranges are parsed on the local wall clock, then each end is mapped to the
instant of that local midnight. Each side of ``a to b`` names a *period*: a day
(``2018-01-12``, ``yesterday``, ``5 days ago``), a month (``October 2026``, ``2026-10``,
``last month``, a bare ``October``: its most recent occurrence), a Monday-start week
(``last week``), an ISO week (``2026-W19``: Monday to Sunday, whole days), a year, or the
last N days (``last 7 days``, today included). A single period is the whole period. In
``a to b`` a period ``b`` is included, but a single day ``b`` is excluded, as KazTron's
``2018-01-12 to 2018-01-14`` always meant. A range given end first (``b to a``, empty
when read as given) is read as ``a to b``, and `DateRange.describe` says so. A bare time
of day (``00:00``, ``3pm``) is refused: ranges are whole days. Echoes of the input in
errors are cut to 60 characters.

Common forms are parsed here, without dateparser (it costs a tenth of a second to load);
dateparser reads the rest. Numeric dates whose day and month could be swapped are refused:
a wrong guess would give a plausible but wrong report. Ranges must start between Discord's
launch (2015) and today; the part of a period after today is cut off, so what a command
says it used is what it used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from guildmeter.errors import GuildmeterError
from guildmeter.timeutil import add_months, month_of, month_start, utcnow
from guildmeter.zones import UTC_CALENDAR, GuildCalendar

__all__ = [
    "EARLIEST",
    "EXAMPLES",
    "DateRange",
    "DateRangeError",
    "parse_daterange",
    "quote_input",
]

#: Discord launched in 2015: no statistics can be older.
EARLIEST = datetime(2015, 1, 1, tzinfo=UTC)
EXAMPLES = (
    "2018-01-12",
    "yesterday",
    "October 2026",
    "last month",
    "last 7 days",
    "2018-01-12 to 2018-01-14",
    "3 days ago to yesterday",
)
_MAX_INPUT = 200
_SEPARATOR = re.compile(r"\s+(?:to|until|through|-|\u2013|\u2014)\s+", re.IGNORECASE)
_DANGLING = re.compile(r"(?:^|\s)(?:to|until|through)$|^(?:to|until|through)(?:\s|$)", re.I)
_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4})"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        ("relative", r"(?P<which>last|this|previous|current)\s+(?P<unit>week|month|year)"),
        ("iso_week", r"(?P<year>\d{4})-?W(?P<week>\d{1,2})"),
        ("time", r"\d{1,2}(?::\d{2}){1,2}(?:\s*[ap]\.?m\.?)?|\d{1,2}\s*[ap]\.?m\.?|noon|midnight"),
        ("days", r"(?:the\s+)?(?:last|past|previous)\s+(?P<n>\d+)\s+(?P<unit>day|week)s?"),
        ("ago", r"(?P<n>\d+)\s+(?P<unit>day|week)s?\s+ago"),
        ("named_day", r"today|yesterday"),
        ("month", rf"{_MONTH},?\s+{_YEAR}"),
        ("month", rf"{_YEAR}\s+{_MONTH}"),
        ("month", r"(?P<year>\d{4})[-/.](?P<month>\d{1,2})"),
        ("month", r"(?P<month>\d{1,2})[/.](?P<year>\d{4})"),
        ("bare_month", _MONTH),
        ("year", _YEAR),
        ("day", rf"{_DAY}\s+{_MONTH},?\s+{_YEAR}"),
        ("day", rf"{_MONTH}\s+{_DAY},?\s+{_YEAR}"),
        ("day", r"(?P<year>\d{4})[/.](?P<month>\d{1,2})[/.](?P<day>\d{1,2})"),
        ("day_no_year", rf"{_DAY}\s+{_MONTH}"),
        ("day_no_year", rf"{_MONTH}\s+{_DAY}"),
        ("numeric", r"(?P<a>\d{1,2})[-/. ](?P<b>\d{1,2})[-/. ](?P<year>\d{4}|\d{2})"),
        ("numeric", r"(?P<a>\d{1,2})[/.](?P<b>\d{1,2})"),
    )
)
_DATEPARSER_SETTINGS = {
    "TIMEZONE": "UTC",
    "TO_TIMEZONE": "UTC",
    "RETURN_AS_TIMEZONE_AWARE": True,
    "PREFER_DATES_FROM": "past",
    "PREFER_DAY_OF_MONTH": "first",
    "DATE_ORDER": "YMD",
}


class DateRangeError(GuildmeterError, ValueError):
    """Text that is not a date or a range of dates, or a range outside what we keep."""


def quote_input(text: str, limit: int = 60) -> str:
    """``text`` quoted for an error message, cut to ``limit`` characters (bots echo it)."""
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


@dataclass(frozen=True)
class DateRange:
    """[start, end), both at local midnight on ``calendar`` (the guild's clock)."""

    start: datetime
    end: datetime
    calendar: GuildCalendar = field(default=UTC_CALENDAR, compare=False, repr=False)
    #: The text gave the later end first (``b to a``): read as ``a to b``, and said so.
    reversed_input: bool = field(default=False, compare=False)

    @property
    def start_hour(self) -> int:
        """The first bucket of the range (for a UTC guild, the UTC hour index)."""
        return self.calendar.bucket_of(self.start)

    @property
    def end_hour(self) -> int:
        return self.calendar.bucket_of(self.end)

    @property
    def first_day(self) -> date:
        """The first local day the range includes."""
        return self.calendar.local(self.start).date()

    @property
    def last_day(self) -> date:
        """The last local day the range includes."""
        return self.calendar.local(self.end - timedelta(microseconds=1)).date()

    @property
    def days(self) -> list[date]:
        """Every local day of the range."""
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=i) for i in range(count)]

    @property
    def months(self) -> list[int]:
        """Every statistics month (``YYYYMM``, the guild's local months) the range touches."""
        calendar = self.calendar
        first = calendar.month_of(self.start)
        last = calendar.month_of(self.end - timedelta(microseconds=1))
        months = [first]
        while months[-1] < last:
            months.append(add_months(months[-1], 1))
        return months

    @property
    def within_one_month(self) -> bool:
        return len(self.months) == 1

    @property
    def zone_label(self) -> str:
        """The zone the range's days are in: ``UTC``, ``Asia/Kolkata``..."""
        return self.calendar.zone_label(self.start_hour, self.end_hour)

    def describe(self) -> str:
        """The days covered, both ends included, e.g. ``2026-10-01 to 2026-10-31``."""
        zone = self.zone_label
        if self.reversed_input:
            zone += "; the ends were given in reverse order"
        if self.first_day == self.last_day:
            return f"{self.first_day:%Y-%m-%d} ({zone})"
        return f"{self.first_day:%Y-%m-%d} to {self.last_day:%Y-%m-%d} (inclusive, {zone})"

    @classmethod
    def last_full_month(
        cls, now: datetime | None = None, calendar: GuildCalendar = UTC_CALENDAR
    ) -> DateRange:
        current = calendar.month_of(now or utcnow())
        previous = add_months(current, -1)
        return cls(calendar.month_start(previous), calendar.month_start(current), calendar)

    @classmethod
    def month(cls, month: int, calendar: GuildCalendar = UTC_CALENDAR) -> DateRange:
        """One whole statistics month of the guild."""
        return cls(
            calendar.month_start(month), calendar.month_start(add_months(month, 1)), calendar
        )


@dataclass(frozen=True)
class _Period:
    start: datetime
    end: datetime
    is_day: bool


def parse_daterange(
    text: str | None, *, now: datetime | None = None, calendar: GuildCalendar = UTC_CALENDAR
) -> DateRange:
    """Parse a period or ``a to b`` (see the module docstring); empty means last month.

    Dates are the guild's local dates (``calendar``). A range given end first is read the
    right way round (``reversed_input``: `DateRange.describe` says so). Errors are
    DateRangeError, one line, quoting at most 60 characters of the input.
    """
    now = now or utcnow()
    if text is None or not text.strip():
        return DateRange.last_full_month(now, calendar)
    # Parsed on the local wall clock (written as UTC, where day arithmetic is exact),
    # then each end is mapped to the instant of its local midnight.
    wall = calendar.local(now).replace(tzinfo=UTC)
    found = _parse_wall(text, wall)
    return DateRange(
        calendar.midnight(found.start.date()),
        calendar.midnight(found.end.date()),
        calendar,
        reversed_input=found.reversed_input,
    )


def _parse_wall(text: str, now: datetime) -> DateRange:
    if len(text) > _MAX_INPUT:
        raise DateRangeError(f"a date range is at most {_MAX_INPUT} characters")
    whole = " ".join(text.split())
    if _DANGLING.search(whole):
        raise DateRangeError(
            f"{quote_input(whole)} is half a range: give both ends, as in "
            "`2018-01-12 to 2018-01-14`, or a single date"
        )
    parts = _SEPARATOR.split(whole, maxsplit=1)
    reversed_input = False
    if len(parts) == 1:
        period = _parse_period(parts[0], whole, now)
        start, end = period.start, period.end
    else:
        first, second = (_parse_period(part, whole, now) for part in parts)
        start, end = _span(first, second)
        if end <= start and second.start < first.start:
            # Reversed only when read as given it is empty: a period end that starts
            # earlier (``2026-11-15 to November 2026``) still ends after the start.
            (start, end), reversed_input = _span(second, first), True
        if end <= start:
            raise DateRangeError(
                f"the range {quote_input(whole)} is empty: the end date is excluded. "
                f"For that single day, give just {start:%Y-%m-%d}."
            )
    found = _within_supported_span(start, end, whole, now)
    return DateRange(found.start, found.end, reversed_input=reversed_input)


def _span(first: _Period, second: _Period) -> tuple[datetime, datetime]:
    """``first to second``: from the start of ``first``; a period ``second`` included
    whole, a single day ``second`` excluded (KazTron's rule)."""
    return first.start, second.start if second.is_day else second.end


def _within_supported_span(start: datetime, end: datetime, whole: str, now: datetime) -> DateRange:
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    supported = f"ranges must start between {EARLIEST:%Y-%m-%d} and today ({today:%Y-%m-%d})"
    if start < EARLIEST:
        raise DateRangeError(f"{quote_input(whole)} starts before Discord existed: {supported}")
    if start > today:
        raise DateRangeError(f"{quote_input(whole)} is in the future: {supported}")
    return DateRange(start, min(end, today + timedelta(days=1)))


def _parse_period(part: str, whole: str, now: datetime) -> _Period:
    part = part.strip()
    for kind, pattern in _PATTERNS:
        found = pattern.fullmatch(part)
        if found is not None:
            return _period(kind, found, part, now)
    try:
        return _day(datetime.fromisoformat(part))
    except ValueError:
        pass
    except OverflowError:
        raise _unsupported(part) from None
    return _day(_dateparser(part, whole, now))


def _period(kind: str, found: re.Match[str], part: str, now: datetime) -> _Period:
    groups = found.groupdict()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "time":
        raise DateRangeError(
            f"{quote_input(part)} is a time of day, not a date: statistics cover whole days. "
            "Give a day, as in `2018-01-12` or `yesterday`."
        )
    if kind == "iso_week":
        return _iso_week(int(groups["year"]), int(groups["week"]), part)
    if kind == "named_day":
        return _day(today - timedelta(days=0 if part.lower() == "today" else 1))
    if kind == "relative":
        back = groups["which"].lower() in ("last", "previous")
        unit = groups["unit"].lower()
        if unit == "week":
            monday = today - timedelta(days=today.weekday()) - timedelta(weeks=back)
            return _Period(monday, monday + timedelta(weeks=1), is_day=False)
        if unit == "month":
            month = add_months(month_of(now), -1 if back else 0)
            return _Period(month_start(month), month_start(add_months(month, 1)), is_day=False)
        return _year(now.year - back, part)
    if kind in ("days", "ago"):
        days = int(groups["n"]) * (7 if groups["unit"].lower() == "week" else 1)
        if days > 366 * 20:
            raise _unsupported(part)
        if kind == "ago":
            return _day(today - timedelta(days=days))
        if days == 0:
            raise DateRangeError(f"{quote_input(part)} covers no day at all")
        return _Period(today - timedelta(days=days - 1), today + timedelta(days=1), is_day=False)
    if kind == "year":
        return _year(int(groups["year"]), part)
    if kind == "numeric":
        return _numeric(groups, part, now)
    month = _month_number(groups["month"], part)
    if kind == "day_no_year":
        day = int(groups["day"])
        year = now.year if (month, day) <= (now.month, now.day) else now.year - 1
        return _calendar_day(year, month, day, part)
    if kind == "bare_month":
        year = now.year if month <= now.month else now.year - 1
        return _month(year, month, part)
    if kind == "month":
        return _month(int(groups["year"]), month, part)
    return _calendar_day(int(groups["year"]), month, int(groups["day"]), part)


def _numeric(groups: dict[str, str], part: str, now: datetime) -> _Period:
    """``dd/mm/yyyy`` or ``mm/dd/yyyy``: only when the numbers say which is which."""
    a, b = int(groups["a"]), int(groups["b"])
    year_text = groups.get("year")
    year_number = None if year_text is None else _full_year(year_text)
    if a <= 12 and b <= 12 and a != b:
        year = "YYYY" if year_number is None else str(year_number)
        raise DateRangeError(
            f"{quote_input(part)} is ambiguous: {year}-{b:02d}-{a:02d} or {year}-{a:02d}-{b:02d}? "
            "Write the date as YYYY-MM-DD, or with the month's name (12 Oct 2026)."
        )
    day, month = (a, b) if a > 12 else (b, a)
    if year_number is None:
        year_number = now.year if (month, day) <= (now.month, now.day) else now.year - 1
    return _calendar_day(year_number, month, day, part)


def _full_year(text: str) -> int:
    return int(text) + (2000 if len(text) == 2 else 0)


def _month_number(text: str, part: str) -> int:
    month = _MONTHS.get(text.lower().rstrip(".")) if not text.isdigit() else int(text)
    if month is None or not 1 <= month <= 12:
        raise DateRangeError(f"{quote_input(part)}: there is no month {text}")
    return month


def _calendar_day(year: int, month: int, day: int, part: str) -> _Period:
    try:
        return _day(datetime(year, month, day, tzinfo=UTC))
    except ValueError:
        raise DateRangeError(f"{quote_input(part)} is not a day of the calendar") from None


def _month(year: int, month: int, part: str) -> _Period:
    if not 1 <= month <= 12:
        raise DateRangeError(f"{quote_input(part)}: there is no month {month}")
    if not 2000 <= year <= 9998:
        raise _unsupported(part)
    first = year * 100 + month
    return _Period(month_start(first), month_start(add_months(first, 1)), is_day=False)


def _iso_week(year: int, week: int, part: str) -> _Period:
    """ISO week ``week`` of ``year``: Monday to Sunday, whole days."""
    if not 2000 <= year <= 9998:
        raise _unsupported(part)
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError:
        last = date(year, 12, 28).isocalendar().week
        raise DateRangeError(
            f"{quote_input(part)}: {year} has ISO weeks 1 to {last}, no week {week}"
        ) from None
    start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    return _Period(start, start + timedelta(weeks=1), is_day=False)


def _year(year: int, part: str) -> _Period:
    if not 2000 <= year <= 9998:
        raise _unsupported(part)
    return _Period(
        datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC), is_day=False
    )


def _day(when: datetime) -> _Period:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when.year > 9998:
        raise _unsupported(f"{when:%Y-%m-%d}")
    start = when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return _Period(start, start + timedelta(days=1), is_day=True)


def _unsupported(part: str) -> DateRangeError:
    return DateRangeError(
        f"{quote_input(part)} is outside the dates kept: from {EARLIEST:%Y-%m-%d} to today"
    )


def _dateparser(part: str, whole: str, now: datetime) -> datetime:
    import dateparser  # loaded only for the rare forms not parsed above

    settings = dict(_DATEPARSER_SETTINGS, RELATIVE_BASE=now.replace(tzinfo=None))
    try:
        parsed = dateparser.parse(part, languages=["en"], settings=settings)
    except (ValueError, OverflowError, TypeError):
        parsed = None
    if not isinstance(parsed, datetime):
        where = f" in {quote_input(whole)}" if part != whole else ""
        examples = ", ".join(f"`{e}`" for e in EXAMPLES)
        raise DateRangeError(
            f"could not understand the date {quote_input(part)}{where}. Try {examples}."
        )
    return parsed
