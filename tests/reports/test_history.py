"""A history from the day summaries equals the same history from the hourly rows."""

from __future__ import annotations

from datetime import UTC, datetime

from guildmeter.activity import ActivityStats
from guildmeter.demo import simulate
from guildmeter.reports.daterange import DateRange
from guildmeter.reports.history import channel_days, channel_days_live
from guildmeter.store import Store


def test_channel_days_equal_the_hourly_rows_on_a_half_hour_clock(store: Store) -> None:
    guild = 91
    store.set_timezone(guild, "Asia/Kolkata", datetime(2026, 1, 1, tzinfo=UTC))
    stats = ActivityStats(store)
    simulate(stats, start=datetime(2026, 2, 25, tzinfo=UTC), end=datetime(2026, 3, 4, tzinfo=UTC),
             guild_id=guild, users=20, messages_per_day=150, text_channels=3, voice_channels=1,
             seed=9, flush_every_hours=24)  # fmt: skip
    calendar = store.calendars.get(guild)
    span = DateRange(calendar.month_start(202602), calendar.month_start(202604), calendar)
    found = channel_days(store, guild, span)
    assert found == channel_days_live(store, guild, span)
    assert len({d.day for d in found}) >= 7 and all(d.messages > 0 for d in found)
    assert any(d.active_users > 1 for d in found)
