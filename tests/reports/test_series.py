"""The charts' series, read from the day summaries, equal the hourly rows counted directly:
the whole server, one channel, and a name two channels share, on UTC and a local clock."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from guildmeter.activity import ActivityStats
from guildmeter.reports import DateRange
from guildmeter.reports.series import activity_series
from guildmeter.store import Store
from guildmeter.store.rights import collapse_if_aggregates_only
from guildmeter.store.settings import AGGREGATES_ONLY, SettingsStore

GUILD = 93
START = datetime(2026, 2, 20, tzinfo=UTC)


def _messages(seed: int) -> list[tuple[datetime, int, int]]:
    rng = random.Random(seed)
    return [
        (START + timedelta(minutes=rng.randrange(60 * 24 * 20)), rng.choice([11, 12, 13]),
         rng.randrange(15))
        for _ in range(600)
    ]  # fmt: skip


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_series_from_summaries_equal_the_hourly_rows(store: Store, zone: str) -> None:
    store.set_timezone(GUILD, zone, START - timedelta(days=40))  # no statistics yet: at once
    stats = ActivityStats(store)
    for channel_id, name in ((11, "general"), (12, "general"), (13, "art")):
        stats.collector.name_channel(GUILD, channel_id, name)  # 11 and 12 share a name
    messages = _messages(7)
    for when, channel_id, user in sorted(messages):
        stats.collector.message(GUILD, channel_id, 1_000 + user, when)
    stats.collector.add("voice", GUILD, 13, 2_000, datetime(2026, 3, 1, 12, tzinfo=UTC), 1_800)
    assert stats.flush(START + timedelta(days=21)).error is None
    tz = ZoneInfo(zone)
    calendar = store.calendars.get(GUILD)
    first = datetime(2026, 2, 22, tzinfo=tz)
    daterange = DateRange(first.astimezone(UTC), datetime(2026, 3, 8, tzinfo=tz), calendar)
    check_series(store, daterange, messages, tz)
    # February kept as aggregates only: its member rows are folded into one row for
    # nobody per hour and channel; the distinct users per day stay as they were.
    SettingsStore(store).set_single(GUILD, "anonymised_rows", AGGREGATES_ONLY)
    with store.transaction() as conn:
        collapse_if_aggregates_only(conn, GUILD, 202602, calendar, drop_day_bits=True)
    check_series(store, daterange, messages, tz, shared_channels=False)


def check_series(
    store: Store,
    daterange: DateRange,
    messages: list[tuple[datetime, int, int]],
    tz: ZoneInfo,
    *,
    shared_channels: bool = True,
) -> None:
    """The series equal the messages counted here (``shared_channels`` False: not the
    name two channels share, whose distinct users are counted from member rows)."""
    cases = [(None, {11, 12, 13}), ("art", {13})]
    if shared_channels:
        cases.append(("general", {11, 12}))
    for channel, ids in cases:
        series = activity_series(store, GUILD, daterange, channel)
        heat = [[0] * 24 for _ in range(7)]
        per_day: dict[date, int] = defaultdict(int)
        users: dict[date, set[int]] = defaultdict(set)
        for when, channel_id, user in messages:
            local = when.astimezone(tz)
            if channel_id in ids and daterange.start <= when < daterange.end:
                heat[local.weekday()][local.hour] += 1
                per_day[local.date()] += 1
                users[local.date()].add(user)
        assert series.heatmap == heat, channel
        assert [p.messages for p in series.daily] == [per_day[d] for d in daterange.days]
        assert [p.active_users for p in series.daily] == [len(users[d]) for d in daterange.days]
    voice = activity_series(store, GUILD, daterange, "art").daily
    assert sum(p.voice_hours for p in voice) == 0.5
