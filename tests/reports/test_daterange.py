from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guildmeter.reports import parse_daterange
from guildmeter.reports.daterange import DateRangeError

from tests.reports.reference import utc

NOW = utc(2026, 11, 22, 15, 42)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2018-01-12", utc(2018, 1, 12), utc(2018, 1, 13)),
        ("12 Jan 2018", utc(2018, 1, 12), utc(2018, 1, 13)),
        ("January 12, 2018", utc(2018, 1, 12), utc(2018, 1, 13)),
        ("yesterday", utc(2026, 11, 21), utc(2026, 11, 22)),
        ("5 days ago", utc(2026, 11, 17), utc(2026, 11, 18)),
        ("2018-01-12 to 2018-01-14", utc(2018, 1, 12), utc(2018, 1, 14)),
        ("3 days ago to yesterday", utc(2026, 11, 19), utc(2026, 11, 21)),
        ("2018-01-01 to 7 days ago", utc(2018, 1, 1), utc(2026, 11, 15)),
        ("2018-01-14 to 2018-01-12", utc(2018, 1, 12), utc(2018, 1, 14)),  # reversed
        ("  2018-01-12   TO   2018-01-14 ", utc(2018, 1, 12), utc(2018, 1, 14)),
    ],
)
def test_seed_examples(text: str, start: object, end: object) -> None:
    parsed = parse_daterange(text, now=NOW)
    assert (parsed.start, parsed.end) == (start, end)


@pytest.mark.parametrize("text", [None, "", "   "])
def test_default_is_the_last_full_calendar_month(text: str | None) -> None:
    parsed = parse_daterange(text, now=NOW)
    assert (parsed.start, parsed.end) == (utc(2026, 10, 1), utc(2026, 11, 1))
    january = parse_daterange(text, now=utc(2027, 1, 3))
    assert (january.start, january.end) == (utc(2026, 12, 1), utc(2027, 1, 1))


def test_unparseable_text_is_quoted_with_examples() -> None:
    with pytest.raises(
        DateRangeError, match=r"'next blursday' in '2018-01-01 to next blursday'.*2018-01-12"
    ):
        parse_daterange("2018-01-01 to next blursday", now=NOW)


def test_empty_range_explains_the_excluded_end() -> None:
    with pytest.raises(DateRangeError, match="excluded"):
        parse_daterange("2018-01-12 to 2018-01-12", now=NOW)


@given(st.dates(min_value=utc(2000, 1, 1).date(), max_value=utc(2099, 12, 31).date()))
def test_every_iso_date_is_that_whole_utc_day(day: object) -> None:
    parsed = parse_daterange(str(day), now=NOW)
    assert parsed.start.date() == day and parsed.end - parsed.start == timedelta(days=1)
    assert parsed.start.hour == 0 and parsed.start.tzinfo is not None
    assert parsed.within_one_month
