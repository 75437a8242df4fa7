from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guildmeter.timeutil import (
    add_months,
    ensure_aware,
    hour_index,
    hour_start,
    month_bounds,
    month_of,
    month_of_hour,
)

aware = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(aware)
def test_hour_index_round_trips_to_the_hour_start(when: datetime) -> None:
    start = hour_start(hour_index(when))
    assert start <= when < start + timedelta(hours=1)
    assert month_of_hour(hour_index(when)) == month_of(when)


def test_other_timezones_are_converted_to_utc() -> None:
    tokyo = datetime(2026, 3, 1, 8, 30, tzinfo=timezone(timedelta(hours=9)))
    assert month_of(tokyo) == 202602
    assert hour_start(hour_index(tokyo)) == datetime(2026, 2, 28, 23, tzinfo=UTC)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        ensure_aware(datetime(2026, 1, 1))


@given(st.integers(200001, 209912).filter(lambda m: 1 <= m % 100 <= 12), st.integers(-400, 400))
def test_add_months_matches_calendar(month: int, delta: int) -> None:
    shifted = add_months(month, delta)
    assert 1 <= shifted % 100 <= 12
    assert (shifted // 100 * 12 + shifted % 100) - (month // 100 * 12 + month % 100) == delta


def test_month_bounds_cross_the_year() -> None:
    assert month_bounds(202612) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
