from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
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


@given(st.dates(min_value=utc(2015, 1, 1).date(), max_value=NOW.date()))
def test_every_iso_date_is_that_whole_utc_day(day: object) -> None:
    parsed = parse_daterange(str(day), now=NOW)
    assert parsed.start.date() == day and parsed.end - parsed.start == timedelta(days=1)
    assert parsed.start.hour == 0 and parsed.start.tzinfo is not None
    assert parsed.within_one_month


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("last month", utc(2026, 10, 1), utc(2026, 11, 1)),
        ("this month", utc(2026, 11, 1), utc(2026, 11, 23)),  # up to today, included
        ("October 2026", utc(2026, 10, 1), utc(2026, 11, 1)),
        ("Oct 2026", utc(2026, 10, 1), utc(2026, 11, 1)),
        ("oct. 2026", utc(2026, 10, 1), utc(2026, 11, 1)),
        ("2026-10", utc(2026, 10, 1), utc(2026, 11, 1)),
        ("10/2026", utc(2026, 10, 1), utc(2026, 11, 1)),
        ("October", utc(2026, 10, 1), utc(2026, 11, 1)),
        ("December", utc(2025, 12, 1), utc(2026, 1, 1)),  # its most recent occurrence
        ("last week", utc(2026, 11, 9), utc(2026, 11, 16)),  # NOW is a Sunday
        ("this week", utc(2026, 11, 16), utc(2026, 11, 23)),
        ("last 7 days", utc(2026, 11, 16), utc(2026, 11, 23)),
        ("past 30 days", utc(2026, 10, 24), utc(2026, 11, 23)),
        ("the last 2 weeks", utc(2026, 11, 9), utc(2026, 11, 23)),
        ("today", utc(2026, 11, 22), utc(2026, 11, 23)),
        ("2 weeks ago", utc(2026, 11, 8), utc(2026, 11, 9)),
        ("15 March", utc(2026, 3, 15), utc(2026, 3, 16)),
        ("25/12/2025", utc(2025, 12, 25), utc(2025, 12, 26)),
        ("12/25/2025", utc(2025, 12, 25), utc(2025, 12, 26)),
        ("2025/12/25", utc(2025, 12, 25), utc(2025, 12, 26)),
        ("2025", utc(2025, 1, 1), utc(2026, 1, 1)),
        ("September 2026 to October 2026", utc(2026, 9, 1), utc(2026, 11, 1)),
        ("last month to this month", utc(2026, 10, 1), utc(2026, 11, 23)),
        ("2026-10-05 to last week", utc(2026, 10, 5), utc(2026, 11, 16)),  # a period: included
        ("October to 2026-10-15", utc(2026, 10, 1), utc(2026, 10, 15)),  # a day: excluded
    ],
)
def test_whole_periods_mean_what_people_mean(text: str, start: object, end: object) -> None:
    parsed = parse_daterange(text, now=NOW)
    assert (parsed.start, parsed.end) == (start, end)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10/12/2026", r"ambiguous: 2026-12-10 or 2026-10-12\? Write the date as YYYY-MM-DD"),
        ("12/10/2026", "ambiguous"),
        ("tomorrow", r"in the future: ranges must start between 2015-01-01 and today"),
        ("next month", "in the future"),
        ("1999-01-01", "starts before Discord existed"),
        ("2014-12-31 to 2015-02-01", "starts before Discord existed"),
        ("9999-12-31", "outside the dates kept: from 2015-01-01 to today"),
        ("October 9999", "outside the dates kept"),
        ("last 99999999999999999999 days", "outside the dates kept"),
        ("31 Feb 2026", "not a day of the calendar"),
        ("2026-13", "there is no month 13"),
        ("last 0 days", "covers no day"),
        ("2018-01-01 to", "is half a range"),
        ("to yesterday", "is half a range"),
    ],
)
def test_impossible_or_ambiguous_dates_are_refused_in_one_line(text: str, message: str) -> None:
    with pytest.raises(DateRangeError, match=message) as caught:
        parse_daterange(text, now=NOW)
    assert "\n" not in str(caught.value)


def test_echoed_input_is_cut_short() -> None:
    with pytest.raises(DateRangeError) as caught:
        parse_daterange("blurb " * 30, now=NOW)
    assert len(str(caught.value)) < 300 and "…" in str(caught.value)


@given(st.text(max_size=60))
def test_any_text_is_a_range_within_the_supported_span_or_a_one_line_error(text: str) -> None:
    try:
        parsed = parse_daterange(text, now=NOW)
    except DateRangeError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
    else:
        assert utc(2015, 1, 1) <= parsed.start < parsed.end <= utc(2026, 11, 23)


def test_a_range_given_end_first_is_read_the_right_way_and_says_so() -> None:
    parsed = parse_daterange("2018-01-14 to 2018-01-12", now=NOW)
    assert (parsed.start, parsed.end) == (utc(2018, 1, 12), utc(2018, 1, 14))
    assert parsed.reversed_input
    assert parsed.describe() == (
        "2018-01-12 to 2018-01-13 (inclusive, UTC; the ends were given in reverse order)"
    )
    forward = parse_daterange("2018-01-12 to 2018-01-14", now=NOW)
    assert forward == parsed and not forward.reversed_input
    assert "reverse" not in forward.describe()


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026-W19", utc(2026, 5, 4), utc(2026, 5, 11)),  # Monday to Sunday
        ("2026w19", utc(2026, 5, 4), utc(2026, 5, 11)),
        ("2026-W01", utc(2025, 12, 29), utc(2026, 1, 5)),  # ISO years start on a Monday
        ("2020-W53", utc(2020, 12, 28), utc(2021, 1, 4)),
        ("2026-W19 to 2026-W20", utc(2026, 5, 4), utc(2026, 5, 18)),  # a period end: included
        ("2026-W47", utc(2026, 11, 16), utc(2026, 11, 23)),  # this week, up to today
        ("2026-05-06 to 2026-W20", utc(2026, 5, 6), utc(2026, 5, 18)),
    ],
)
def test_iso_weeks_are_that_week_whole_days(text: str, start: object, end: object) -> None:
    parsed = parse_daterange(text, now=NOW)
    assert (parsed.start, parsed.end) == (start, end)


def test_iso_weeks_on_a_guilds_clock_start_at_its_monday_midnight() -> None:
    from guildmeter.zones import GuildCalendar

    kolkata = GuildCalendar(((0, "Asia/Kolkata"),))
    parsed = parse_daterange("2026-W19", now=NOW, calendar=kolkata)
    assert parsed.start == utc(2026, 5, 3, 18, 30) and parsed.days[0].isoformat() == "2026-05-04"
    assert len(parsed.days) == 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2025-W53", "2025 has ISO weeks 1 to 52, no week 53"),
        ("2026-W00", "no week 0"),
        ("2026-W48", "is in the future"),
        ("1999-W10", "outside the dates kept"),
    ],
)
def test_impossible_iso_weeks_are_refused(text: str, message: str) -> None:
    with pytest.raises(DateRangeError, match=message):
        parse_daterange(text, now=NOW)


@pytest.mark.parametrize(
    "text", ["00:00", "23:59", "12:30:00", "3pm", "3 PM", "10:15am", "noon", "midnight",
             "2018-01-01 to 10:00"],
)  # fmt: skip
def test_a_bare_time_of_day_is_refused(text: str) -> None:
    with pytest.raises(DateRangeError, match="is a time of day, not a date: statistics cover"):
        parse_daterange(text, now=NOW)


def test_a_date_with_a_time_is_still_its_day() -> None:
    parsed = parse_daterange("2018-01-12 00:00", now=NOW)
    assert (parsed.start, parsed.end) == (utc(2018, 1, 12), utc(2018, 1, 13))


@pytest.mark.parametrize(
    "text",
    [
        "2018-01-01 to " + "z" * 180,
        "y" * 199,
        "2018-01-01 to " + "blursday " * 20,
        "31/" + "1" * 150,
    ],
)
def test_errors_echo_at_most_sixty_characters_of_the_input(text: str) -> None:
    with pytest.raises(DateRangeError) as raised:
        parse_daterange(text, now=NOW)
    message = str(raised.value)
    quoted = message.split("'")[1::2]
    assert quoted and all(len(q) <= 60 for q in quoted), message
    assert len(message) < 400


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=61, max_size=200))
def test_no_error_echoes_a_long_input_back(text: str) -> None:
    try:
        parse_daterange(text, now=NOW)
    except DateRangeError as exc:
        typed = " ".join(text.split())
        assert len(typed) <= 60 or typed[:61] not in str(exc)


@pytest.mark.parametrize(
    ("text", "start", "end", "reversed_input"),
    [
        # A day, then a period that starts earlier but ends later: the period is the end,
        # included whole; nothing is reversed.
        ("2026-11-15 to November 2026", utc(2026, 11, 15), utc(2026, 11, 23), False),
        ("2026-10-15 to October 2026", utc(2026, 10, 15), utc(2026, 11, 1), False),
        ("2026-05-06 to 2026-W19", utc(2026, 5, 6), utc(2026, 5, 11), False),
        ("2026-03-10 to 2026", utc(2026, 3, 10), utc(2026, 11, 23), False),
        # A period, then a day: from the period's start, the day excluded.
        ("October 2026 to 2026-10-15", utc(2026, 10, 1), utc(2026, 10, 15), False),
        ("2026-W19 to 2026-05-06", utc(2026, 5, 4), utc(2026, 5, 6), False),
        ("October 2026 to 2026-09-20", utc(2026, 9, 20), utc(2026, 11, 1), True),
        # Both periods; the same month on both sides is that month.
        ("September to October 2026", utc(2026, 9, 1), utc(2026, 11, 1), False),
        ("October 2026 to September 2026", utc(2026, 9, 1), utc(2026, 11, 1), True),
        ("October 2026 to October 2026", utc(2026, 10, 1), utc(2026, 11, 1), False),
        ("2026 to October 2026", utc(2026, 1, 1), utc(2026, 11, 1), False),
        ("2026-W20 to 2026-W19", utc(2026, 5, 4), utc(2026, 5, 18), True),
        ("2026-W19 to 2026-W19", utc(2026, 5, 4), utc(2026, 5, 11), False),
        # Two days given end first: the later day, now the end, stays excluded.
        ("2026-11-15 to 2026-11-10", utc(2026, 11, 10), utc(2026, 11, 15), True),
    ],
)
def test_a_period_end_is_included_whole_and_only_an_empty_range_is_reversed(
    text: str, start: object, end: object, reversed_input: bool
) -> None:
    parsed = parse_daterange(text, now=NOW)
    assert (parsed.start, parsed.end, parsed.reversed_input) == (start, end, reversed_input)
    assert ("reverse" in parsed.describe()) == reversed_input


def test_a_period_starting_on_the_excluded_end_day_is_still_empty() -> None:
    with pytest.raises(DateRangeError, match="excluded"):
        parse_daterange("October 2026 to 2026-10-01", now=NOW)
