"""The dashboard's figures agree with the reports, on every backend; public ones hide
small cells by the suppress module's rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from guildmeter.activity import ActivityStats
from guildmeter.demo import simulate
from guildmeter.reports.compute import compute_report
from guildmeter.reports.dashboard import (
    MONTHS_DIFFER,
    PARTLY_BEFORE_DATA,
    DashboardError,
    channel_table,
    dashboard_period,
    heatmap,
    live_figures,
    series,
    tiles,
)
from guildmeter.reports.series import activity_series
from guildmeter.store import Store

GUILD = 77
NOW = datetime(2026, 5, 20, 15, 30, tzinfo=UTC)


@pytest.fixture
def seeded(store: Store) -> Store:
    stats = ActivityStats(store)
    simulate(stats, start=datetime(2026, 4, 28, tzinfo=UTC), end=datetime(2026, 5, 6, tzinfo=UTC),
             guild_id=GUILD, users=30, messages_per_day=300, text_channels=4, voice_channels=2,
             seed=3, flush_every_hours=24)  # fmt: skip
    return store


def _tile_values(store: Store, period: object, channel: int | None = None) -> dict[str, object]:
    return {t.key: t.value for t in tiles(store, GUILD, period, channel)}  # type: ignore[arg-type]


def test_tiles_equal_the_full_report(seeded: Store) -> None:
    period = dashboard_period("custom", start="2026-05-01", end="2026-05-05", now=NOW)
    row = compute_report(seeded, GUILD, "full", period.range).rows[0]
    values = _tile_values(seeded, period)
    assert row.messages > 0 and row.active_users > 0
    assert values == {
        "messages": row.messages,
        "active_users": row.active_users,
        "new_members": row.joins - row.parts,  # type: ignore[operator]
        "voice_hours": pytest.approx(row.voice_man_hours),
        "member_total": row.total_users,
    }
    assert not period.users_per_month
    for channel_id in {c.channel_id for c in channel_table(seeded, GUILD, period)}:
        name = next(c.name for c in channel_table(seeded, GUILD, period)
                    if c.channel_id == channel_id)  # fmt: skip
        one = compute_report(seeded, GUILD, "full", period.range, name).rows[0]
        got = _tile_values(seeded, period, channel_id)
        assert (got["messages"], got["active_users"]) == (one.messages, one.active_users)
        assert got["voice_hours"] == pytest.approx(one.voice_man_hours)


def test_previous_period_and_change(seeded: Store) -> None:
    period = dashboard_period("custom", start="2026-05-02", end="2026-05-03", now=NOW)
    assert period.previous.start == datetime(2026, 4, 30, tzinfo=UTC)
    messages = next(t for t in tiles(seeded, GUILD, period) if t.key == "messages")
    earlier = series(seeded, GUILD, dashboard_period(
        "custom", start="2026-04-30", end="2026-05-01", now=NOW))  # fmt: skip
    assert messages.previous == sum(p.figures.messages for p in earlier)
    assert not messages.previous_empty
    first = tiles(seeded, GUILD, dashboard_period("custom", start="2026-04-28", end="2026-04-29",
                                                 now=NOW))  # fmt: skip
    assert all(t.previous_empty for t in first)  # nothing before the data starts
    assert messages.change == pytest.approx((messages.value - messages.previous)  # type: ignore[operator]
                                            / messages.previous)  # fmt: skip


def test_series_heatmap_and_channels_add_up(seeded: Store) -> None:
    period = dashboard_period("custom", start="2026-04-28", end="2026-05-05", now=NOW)
    points = series(seeded, GUILD, period)
    assert [p.start.day for p in points] == [28, 29, 30, 1, 2, 3, 4, 5]
    total = next(t.value for t in tiles(seeded, GUILD, period) if t.key == "messages")
    assert sum(p.figures.messages for p in points) == total
    assert sum(v for row in heatmap(seeded, GUILD, period) for v in row) == total  # type: ignore[misc]
    assert heatmap(seeded, GUILD, period) == activity_series(seeded, GUILD, period.range).heatmap
    rows = channel_table(seeded, GUILD, period)
    assert sum(r.messages for r in rows) == total
    text = [r for r in rows if r.messages]
    assert sum(r.share for r in text) == pytest.approx(1.0)
    assert period.users_per_month  # April and May: pseudonyms differ


def test_weeks_for_twelve_months_and_hours_for_today(seeded: Store) -> None:
    year = dashboard_period("12m", now=NOW)
    points = series(seeded, GUILD, year)
    assert year.granularity == "week" and 52 <= len(points) <= 54
    assert all(p.start.weekday() == 0 for p in points[1:])
    assert points[0].start == year.range.start
    today = dashboard_period("today", now=NOW)  # 15:30: the hours still to come are not drawn
    assert today.granularity == "hour" and len(series(seeded, GUILD, today)) == 16
    past = dashboard_period("today", now=datetime(2026, 5, 2, 23, 59, tzinfo=UTC))
    assert len(series(seeded, GUILD, past)) == 24


def test_today_so_far_is_compared_with_yesterday_until_the_same_hour(seeded: Store) -> None:
    yesterday = series(seeded, GUILD, dashboard_period("today", now=datetime(
        2026, 5, 2, 23, 59, tzinfo=UTC)))  # fmt: skip
    today = dashboard_period("today", now=datetime(2026, 5, 3, 12, 30, tzinfo=UTC))
    messages = next(t for t in tiles(seeded, GUILD, today) if t.key == "messages")
    assert messages.previous == sum(p.figures.messages for p in yesterday[:13])  # 00-12 h
    assert messages.previous < sum(p.figures.messages for p in yesterday)
    assert messages.value == sum(p.figures.messages for p in series(seeded, GUILD, today))
    assert messages.incomparable is None and messages.change is not None


def test_changes_are_not_shown_between_periods_that_cannot_be_compared(seeded: Store) -> None:
    partly = dashboard_period("custom", start="2026-04-29", end="2026-04-30", now=NOW)
    found = tiles(seeded, GUILD, partly)  # the previous period: 27-28 April, data from the 28th
    assert all(t.incomparable == PARTLY_BEFORE_DATA.format(first=date(2026, 4, 28))
               for t in found)  # fmt: skip
    assert all(t.change is None and t.to_json()["change"] is None for t in found)
    months = tiles(seeded, GUILD, dashboard_period(
        "custom", start="2026-05-02", end="2026-05-03", now=NOW))  # fmt: skip
    by_key = {t.key: t for t in months}  # 2-3 May (one month) against 30 April-1 May (two)
    assert by_key["active_users"].incomparable == MONTHS_DIFFER
    assert by_key["active_users"].change is None
    assert by_key["messages"].incomparable is None and by_key["messages"].change is not None


def test_public_figures_hide_small_cells(seeded: Store) -> None:
    period = dashboard_period("custom", start="2026-05-01", end="2026-05-05", now=NOW)
    exact = heatmap(seeded, GUILD, period)
    shown = heatmap(seeded, GUILD, period, min_cell_users=5)
    hidden = [(d, h) for d in range(7) for h in range(24) if shown[d][h] is None]
    assert len(hidden) >= 2, "the quiet night hours of 30 members must be hidden"
    assert all(shown[d][h] == exact[d][h] for d in range(7) for h in range(24)
               if shown[d][h] is not None)  # fmt: skip
    for min_users in (5, 12, 1000):
        points = series(seeded, GUILD, dashboard_period("today", now=datetime(
            2026, 5, 3, 12, tzinfo=UTC)), min_cell_users=min_users)  # fmt: skip
        small = [p for p in points if 0 < p.figures.active_users < min_users]
        assert all("messages" in p.hidden and "active_users" in p.hidden for p in small)
        hidden_count = sum("messages" in p.hidden for p in points)
        assert hidden_count == 0 or hidden_count >= 2
        for p in points:
            data = p.to_json()
            assert ("messages" in p.hidden) == (data["messages"] is None)
    rows = channel_table(seeded, GUILD, period, min_cell_users=1000)
    assert rows and all(r.to_json()["messages"] is None for r in rows if r.messages)
    public = tiles(seeded, GUILD, period, min_cell_users=1000)
    assert {t.key for t in public if t.hidden} == {"messages", "active_users", "voice_hours"}


def test_periods() -> None:
    assert dashboard_period("7d", now=NOW).range.start == datetime(2026, 5, 14, tzinfo=UTC)
    month = dashboard_period("month", month="2026-02", now=NOW)
    assert (month.range.start, month.range.end) == (
        datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))  # fmt: skip
    assert month.previous.start == datetime(2026, 1, 4, tzinfo=UTC)  # 28 days before
    this_month = dashboard_period("month", now=NOW)
    assert this_month.range.end == datetime(2026, 5, 21, tzinfo=UTC)  # cut at today
    swapped = dashboard_period("custom", start="2026-05-03", end="2026-05-01", now=NOW)
    assert swapped.range.start.day == 1 and swapped.range.last_day.day == 3
    for bad in (
        {"name": "forever"},
        {"name": "month", "month": "2026-13"},
        {"name": "custom", "start": "2026-05-01"},
        {"name": "custom", "start": "2026-02-30", "end": "2026-03-01"},
        {"name": "custom", "start": "2010-01-01", "end": "2010-02-01"},
        {"name": "custom", "start": "2027-01-01", "end": "2027-01-02"},
        {"name": "custom", "start": "2016-01-01", "end": "2026-05-01"},
    ):
        with pytest.raises(DashboardError):
            dashboard_period(**bad, now=NOW)  # type: ignore[arg-type]


def test_periods_in_words_and_their_days() -> None:
    def period(name: str, now: datetime = NOW, **query: str) -> tuple[str, int]:
        found = dashboard_period(name, now=now, **query)  # type: ignore[arg-type]
        return found.in_words, found.days

    assert period("today") == ("today", 1)
    assert period("7d") == ("the last 7 days", 7)
    assert period("30d") == ("the last 30 days", 30)
    assert period("month") == ("May 2026 so far", 20)
    assert period("month", month="2026-02") == ("February 2026", 28)
    assert period("12m") == ("the last 12 months (this one so far)", 354)  # 2025-06-01 on
    december = datetime(2026, 12, 1, 9, tzinfo=UTC)  # never "the last 335 day(s)"
    assert period("12m", december) == ("the last 12 months (this one so far)", 335)
    assert period("custom", start="2026-05-03", end="2026-05-03") == ("1 day", 1)
    assert period("custom", start="2026-05-01", end="2026-05-03") == ("3 days", 3)


def test_summary_figures_equal_the_hourly_rows_on_a_local_clock(store: Store) -> None:
    """New York's clock, across a month boundary and the end of DST (1 November 2026):
    every bucket's messages and distinct users equal a count over the hourly rows."""
    guild = 78
    store.set_timezone(guild, "America/New_York", NOW)
    stats = ActivityStats(store)
    simulate(stats, start=datetime(2026, 10, 27, tzinfo=UTC), end=datetime(2026, 11, 5, tzinfo=UTC),
             guild_id=guild, users=25, messages_per_day=200, text_channels=3, voice_channels=1,
             seed=5, flush_every_hours=24)  # fmt: skip
    calendar = store.calendars.get(guild)
    rows = store.activity_totals(guild)

    messages_at = [
        (calendar.bucket_start(hour).date(), channel_id, (calendar.month_of_bucket(hour), label), n)
        for (hour, event, channel_id, label), n in rows.items()
        if event == 1
    ]

    def live(first: date, end: date, channel: int | None) -> tuple[int, int]:
        messages, users = 0, set()
        for day, channel_id, member, count in messages_at:
            if first <= day < end and channel in (None, channel_id):
                messages += count
                users.add(member)
        return messages, len(users)

    now = datetime(2026, 11, 20, tzinfo=UTC)
    for period in (
        dashboard_period(
            "custom", start="2026-10-28", end="2026-11-03", now=now, calendar=calendar
        ),
        dashboard_period("30d", now=now, calendar=calendar),
        dashboard_period("month", month="2026-10", now=now, calendar=calendar),
        dashboard_period("12m", now=now, calendar=calendar),
    ):
        for channel in (None, *{c for (_, _, c, _) in rows if c}):
            values = {t.key: t.value for t in tiles(store, guild, period, channel)}
            first, last = period.range.first_day, period.range.last_day
            whole = live_figures(store, guild, period.range, channel, None)[0]
            assert values["member_total"] == whole.member_total
            assert values["new_members"] == whole.new_members
            assert values["voice_hours"] == pytest.approx(whole.voice_hours)
            assert (values["messages"], values["active_users"]) == live(
                first, last + timedelta(days=1), channel)  # fmt: skip
            points = series(store, guild, period, channel)
            for point, following in zip(points, [*points[1:], None], strict=True):
                day = calendar.local(point.start).date()
                end = last + timedelta(days=1) if following is None else calendar.local(
                    following.start).date()  # fmt: skip
                got = (point.figures.messages, point.figures.active_users)
                assert got == live(day, end, channel)
        by_channel = {r.channel_id: (r.messages, r.active_users)
                      for r in channel_table(store, guild, period) if r.messages}  # fmt: skip
        end = period.range.last_day + timedelta(days=1)
        assert by_channel == {c: live(period.range.first_day, end, c) for c in by_channel}
