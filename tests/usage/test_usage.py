"""Usage tracking through the real tracker and store, and the /stats summary, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import guildmeter
from guildmeter.activity import ActivityStats
from guildmeter.reports.usage import usage_summary
from guildmeter.store import Store
from guildmeter.store.usage import UsageStore, latency_bucket
from guildmeter.usage.api import activate

NOW = datetime(2026, 5, 20, 18, 0, tzinfo=UTC)
GUILD, OTHER = 7, 8


@pytest.fixture
def stats(store: Store) -> ActivityStats:
    stats = ActivityStats(store, clock=lambda: NOW, store_prompts=False)
    activate(stats.usage)
    yield stats  # type: ignore[misc]
    activate(None)


def _commands(stats: ActivityStats) -> None:
    """draw: 20 uses (10..200 ms), 2 failures; ping: 5 uses by another user, 3 days ago."""
    for i in range(20):
        stats.usage.command(
            "draw", guild_id=GUILD, channel_id=1, user_id=500 + i % 4, kind="slash",
            duration_ms=10.0 * (i + 1), ok=i % 10 != 0, error=None if i % 10 else "Timeout",
            at=NOW - timedelta(hours=i),
        )  # fmt: skip
    for _ in range(5):
        stats.usage.command(
            "ping", guild_id=GUILD, channel_id=1, user_id=900, kind="prefix",
            duration_ms=1.0, ok=True, at=NOW - timedelta(days=3),
        )  # fmt: skip
    stats.usage.command(
        "ping", guild_id=OTHER, channel_id=2, user_id=900, kind="prefix", duration_ms=1.0, ok=True
    )


def test_commands_generations_and_users_add_up(stats: ActivityStats) -> None:
    _commands(stats)
    guildmeter.track_generation(user_id=500, guild_id=GUILD, resolution=(1024, 1024), seconds=10,
                                prompt="a cat in a hat", loras=["ink"], upscale=2)  # fmt: skip
    guildmeter.track_generation(user_id=501, guild_id=GUILD, resolution="1024x1024", seconds=20)
    guildmeter.track_generation(user_id=501, guild_id=GUILD, resolution="512x768", seconds=30)
    guildmeter.track_generation(user_id=502, guild_id=GUILD, resolution="512x512", seconds=90,
                                is_video=True, generation_type="pulid")  # fmt: skip
    guildmeter.track_activity(user_id=777, guild_id=GUILD, action="button", details="retry")
    result = stats.flush(NOW)
    assert result.error is None and result.usage_records_written == 31

    summary = usage_summary(stats.store, GUILD, 7, now=NOW)
    assert (summary.commands_total, summary.commands_failed) == (25, 2)
    draw, ping = summary.commands
    assert (draw.command, draw.uses, draw.failures, draw.failure_rate) == ("draw", 20, 2, 0.1)
    assert draw.mean_ms == pytest.approx(105.0)
    # nearest-rank: the 10th of 20 durations is 100 ms, the 19th 190 ms; buckets are 5 % wide
    assert 100.0 <= draw.median_ms <= 105.0
    assert 190.0 <= draw.p95_ms <= 190.0 * 1.05
    assert (ping.uses, ping.failures) == (5, 0)
    assert (summary.images, summary.videos) == (3, 1)
    assert summary.image_seconds_mean == pytest.approx(20.0)
    assert summary.video_seconds_mean == pytest.approx(90.0)
    assert summary.resolutions[0] == ("1024x1024", 2)
    assert summary.total_users == 6  # 500..503, 900 and 777
    assert summary.active_users == 1  # only 503 was seen on two days (May 19 and 20)
    assert sum(d.commands for d in summary.daily) == 25
    assert sum(d.generations for d in summary.daily) == 4
    one_day = usage_summary(stats.store, GUILD, 1, now=NOW)
    assert one_day.commands_total == 19  # the draws from 00:00 to 18:00 of May 20
    everywhere = usage_summary(stats.store, None, 7, now=NOW)
    assert everywhere.commands_total == 26


def test_prompts_are_dropped_unless_enabled_and_no_raw_id_is_stored(stats: ActivityStats) -> None:
    guildmeter.track_generation(user_id=123456789012345678, guild_id=GUILD,
                                resolution="1x1", seconds=1, prompt="secret words")  # fmt: skip
    stats.flush(NOW)
    with stats.store.engine.connect() as conn:
        prompts = list(conn.exec_driver_sql("SELECT prompt FROM usage_generations").scalars())
        every_value = " ".join(
            str(v)
            for table in ("usage_generations", "usage_daily_users", "members")
            for row in conn.exec_driver_sql(f"SELECT * FROM {table}")
            for v in row
        )
    assert prompts == [None]
    assert "123456789012345678" not in every_value
    assert "secret" not in every_value


def test_prompts_are_kept_when_the_owner_enables_it(store: Store) -> None:
    stats = ActivityStats(store, clock=lambda: NOW, store_prompts=True)
    activate(stats.usage)
    try:
        guildmeter.track_generation(user_id=1, guild_id=GUILD, resolution="1x1", seconds=1,
                                    prompt="a lighthouse")  # fmt: skip
        stats.flush(NOW)
    finally:
        activate(None)
    with store.engine.connect() as conn:
        assert list(conn.exec_driver_sql("SELECT prompt FROM usage_generations").scalars()) == [
            "a lighthouse"
        ]


def test_a_failed_write_is_retried_without_double_counting(stats: ActivityStats) -> None:
    from tests.helpers import FlakyStore

    flaky = FlakyStore(stats.store)
    stats.store = flaky
    flaky.transaction_plan = ["before", "after"]
    _commands(stats)
    assert stats.flush(NOW).error is not None
    assert stats.flush(NOW).error is not None  # committed, but the reply was lost
    assert stats.flush(NOW).error is None
    assert usage_summary(flaky, GUILD, 7, now=NOW).commands_total == 25


def test_reset_deletes_one_guild_and_says_what(stats: ActivityStats) -> None:
    _commands(stats)
    guildmeter.track_generation(user_id=1, guild_id=GUILD, resolution="1x1", seconds=1)
    stats.flush(NOW)
    usage = UsageStore(stats.store)
    deleted = usage.reset(GUILD)
    assert deleted["usage_commands"] == 25 and deleted["usage_generations"] == 1
    assert usage.row_counts(GUILD) == dict.fromkeys(deleted, 0)
    assert usage.row_counts(OTHER)["usage_commands"] == 1
    # The roll-ups go with the rows: /stats of the other guild stays, this one's is empty.
    assert deleted["usage_latency_rollups"] > 0 and deleted["usage_monthly_users"] == 6
    assert usage.row_counts(OTHER)["usage_monthly_users"] == 1
    assert usage_summary(stats.store, GUILD, 30, now=NOW).total_users == 0
    assert usage_summary(stats.store, OTHER, 30, now=NOW).total_users == 1


def test_latency_buckets_are_five_percent_wide() -> None:
    for ms in (0.05, 0.1, 0.2, 1.0, 33.3, 1000.0, 3_600_000.0):
        upper = 0.1 * 1.05 ** latency_bucket(ms)
        assert ms <= upper + 1e-9 and (ms <= 0.1 or upper <= ms * 1.05 + 1e-9)
