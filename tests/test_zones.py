"""Buckets partition time on local hour marks, in every zone, across DST and zone changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guildmeter.timeutil import hour_index, month_of
from guildmeter.zones import (
    UTC_CALENDAR,
    GuildCalendar,
    TimezoneError,
    check_zone,
    zone_choices,
)

ZONES = [
    "UTC",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/New_York",
    "America/St_Johns",
    "Australia/Adelaide",
    "Europe/Berlin",
    "Pacific/Chatham",
    "America/Santiago",
]
CALENDARS = [GuildCalendar(((0, z),)) for z in ZONES] + [
    GuildCalendar(((0, "Australia/Lord_Howe"),)),  # a 30-minute DST: partition only
    GuildCalendar(((0, "UTC"), (202611, "Asia/Kolkata"), (202703, "America/St_Johns"))),
    GuildCalendar(((0, "Asia/Kathmandu"), (202610, "UTC"), (202612, "Pacific/Chatham"))),
]
instants = st.integers(
    int(datetime(2015, 1, 1, tzinfo=UTC).timestamp()),
    int(datetime(2030, 12, 31, tzinfo=UTC).timestamp()),
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(CALENDARS), instants)
def test_every_instant_is_in_exactly_its_bucket(calendar: GuildCalendar, t: int) -> None:
    bucket = calendar.bucket_of_s(t)
    start, end = calendar.bucket_start_s(bucket), calendar.bucket_end_s(bucket)
    assert start <= t < end
    # Neighbours touch: no gap, no overlap.
    assert calendar.bucket_end_s(bucket - 1) == start
    assert calendar.bucket_start_s(bucket + 1) == end
    assert calendar.bucket_of_s(start) == bucket
    assert calendar.bucket_of_s(end - 1) == bucket
    assert calendar.bucket_of_s(end) == bucket + 1
    assert 0 < end - start <= 2 * 3600


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CALENDARS[: len(ZONES)]), instants)
def test_buckets_start_on_local_hour_marks(calendar: GuildCalendar, t: int) -> None:
    bucket = calendar.bucket_of_s(t)
    start = calendar.bucket_start(bucket)
    assert (start.minute, start.second) == (0, 0)
    assert calendar.bucket_end_s(bucket) - calendar.bucket_start_s(bucket) == 3600
    local = datetime.fromtimestamp(t, calendar.zone_for_month(1))
    assert calendar.month_of_s(t) == local.year * 100 + local.month
    assert calendar.month_of_bucket(bucket) == calendar.month_of_s(t)
    # The local wall-clock hour of the bucket is the local hour of the instant.
    wall = start.replace(tzinfo=UTC).timestamp() // 3600
    assert calendar.local_hours(bucket) == wall == local.replace(tzinfo=UTC).timestamp() // 3600


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CALENDARS), instants, st.integers(0, 3 * 86400))
def test_a_session_split_at_bucket_ends_sums_to_its_length(
    calendar: GuildCalendar, t: int, length: int
) -> None:
    pieces = []
    start, end = t, t + length
    while start < end:
        bucket = calendar.bucket_of_s(start)
        stop = min(end, calendar.bucket_end_s(bucket))
        pieces.append((bucket, stop - start))
        start = stop
    assert sum(seconds for _, seconds in pieces) == length
    assert len({bucket for bucket, _ in pieces}) == len(pieces)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(CALENDARS), instants, st.integers(1, 24 * 70))
def test_segments_give_local_hours(calendar: GuildCalendar, t: int, length: int) -> None:
    first = calendar.bucket_of_s(t)
    runs = calendar.local_segments(first, first + length)
    assert runs[0][0] == first and runs[-1][1] == first + length
    for lo, hi, delta in runs:
        for bucket in {lo, hi - 1, (lo + hi) // 2}:
            assert calendar.local_hours(bucket) == bucket + delta


def test_utc_calendar_is_the_utc_hour_index() -> None:
    when = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)
    assert UTC_CALENDAR.bucket_of(when) == hour_index(when)
    assert UTC_CALENDAR.month_of(when) == month_of(when) == 202610
    assert UTC_CALENDAR.month_start(202611) == datetime(2026, 11, 1, tzinfo=UTC)


def test_fall_back_repeats_an_hour_as_two_buckets_and_spring_forward_skips_one() -> None:
    ny = GuildCalendar(((0, "America/New_York"),))
    zone = ZoneInfo("America/New_York")
    first = datetime(2026, 11, 1, 1, 30, tzinfo=zone)  # EDT
    second = first.replace(fold=1)  # EST, an hour later
    assert ny.bucket_of(second) == ny.bucket_of(first) + 1
    assert ny.local_hours(ny.bucket_of(first)) == ny.local_hours(ny.bucket_of(second))
    day = ny.bucket_of(datetime(2026, 11, 1, tzinfo=zone))
    assert ny.bucket_of(datetime(2026, 11, 2, tzinfo=zone)) - day == 25
    day = ny.bucket_of(datetime(2026, 3, 8, tzinfo=zone))
    assert ny.bucket_of(datetime(2026, 3, 9, tzinfo=zone)) - day == 23


def test_half_and_quarter_hour_zones_start_buckets_on_their_hour_marks() -> None:
    for name, minute in (("Asia/Kolkata", 30), ("Asia/Kathmandu", 15)):
        cal = GuildCalendar(((0, name),))
        bucket = cal.bucket_of(datetime(2026, 10, 4, 0, 10, tzinfo=ZoneInfo(name)))
        start = datetime.fromtimestamp(cal.bucket_start_s(bucket), UTC)
        assert start.minute == minute
        assert cal.bucket_start(bucket) == datetime(2026, 10, 4, tzinfo=ZoneInfo(name))


def test_month_is_the_local_month() -> None:
    kolkata = GuildCalendar(((0, "Asia/Kolkata"),))
    assert kolkata.month_of(datetime(2026, 10, 31, 18, 30, tzinfo=UTC)) == 202611
    assert kolkata.month_of(datetime(2026, 10, 31, 18, 29, 59, tzinfo=UTC)) == 202610
    assert kolkata.month_start(202611) == datetime(2026, 10, 31, 18, 30, tzinfo=UTC)


def test_zone_names_are_checked_with_suggestions() -> None:
    assert check_zone("asia/kolkata") == "Asia/Kolkata"
    assert check_zone("UTC") == "UTC"
    with pytest.raises(TimezoneError, match=r"did you mean.*Asia/Kolkata"):
        check_zone("Asia/Kolkatta")
    with pytest.raises(TimezoneError):
        check_zone("../../etc/passwd")
    assert zone_choices("kolk") == ["Asia/Kolkata"]
    assert len(zone_choices("a")) == 25
    assert zone_choices("America/New_Y")[0] == "America/New_York"


def test_a_zone_change_leaves_earlier_months_alone() -> None:
    changed = GuildCalendar(((0, "UTC"), (202611, "Asia/Kolkata")))
    for month in (202609, 202610):
        assert changed.month_start_s(month) == UTC_CALENDAR.month_start_s(month)
    october = datetime(2026, 10, 15, 12, 34, tzinfo=UTC)
    assert changed.bucket_of(october) == hour_index(october)
    # October ends at Kolkata's midnight of 1 November, in a bucket of its own grid.
    end = changed.month_start_s(202611)
    assert end == int(datetime(2026, 10, 31, 18, 30, tzinfo=UTC).timestamp())
    last = changed.bucket_of_s(end - 1)
    assert changed.bucket_end_s(last) == end
    assert changed.month_of_bucket(last) == 202610
    assert changed.month_of_bucket(last + 1) == 202611
    assert changed.bucket_start_s(last + 1) - changed.bucket_start_s(last) == 1800
    assert timedelta(seconds=1800) == timedelta(seconds=end - changed.bucket_start_s(last))


def test_calendars_read_again_unchanged_are_the_same_objects() -> None:
    from guildmeter.zones import Calendars

    first = Calendars({1: [(0, "UTC")], 2: [(0, "Asia/Kolkata")]})
    kolkata = first.get(2)
    changed = first.updated({1: ((0, "UTC"), (202701, "Europe/Berlin")), 2: ((0, "Asia/Kolkata"),)})
    assert changed.get(2) is kolkata  # its memoised months survive
    assert changed.get(1).zone_name_for_month(202701) == "Europe/Berlin"
    assert first.schedules() == {1: ((0, "UTC"),), 2: ((0, "Asia/Kolkata"),)}
