"""Charts: an empty range says "no data in this range" instead of drawing empty axes."""

from __future__ import annotations

import struct
from datetime import date

from guildmeter.charts import render_activity_png, render_usage_png
from guildmeter.reports import DateRange
from guildmeter.reports.series import ActivitySeries, DailyPoint
from guildmeter.reports.usage import DailyUsage, UsageSummary

from tests.reports.reference import utc

NOVEMBER = DateRange(utc(2026, 11, 1), utc(2026, 12, 1))


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def series(messages: int) -> ActivitySeries:
    heatmap = [[0] * 24 for _ in range(7)]
    heatmap[2][20] = messages
    daily = [DailyPoint(date(2026, 11, d), messages if d == 4 else 0, 1, 0.0) for d in (3, 4)]
    return ActivitySeries(1, "all", NOVEMBER, heatmap, daily)


def test_an_empty_range_is_one_small_no_data_image_not_three_empty_panels() -> None:
    assert png_size(render_activity_png(series(0))) == (800, 300)
    assert png_size(render_activity_png(series(5))) == (1100, 1200)


def test_usage_chart_of_an_empty_window_says_no_data() -> None:
    def summary(commands: int) -> UsageSummary:
        return UsageSummary(
            guild_id=None, days=1, start=date(2026, 11, 3), end=date(2026, 11, 3), images=0,
            image_seconds_mean=0.0, videos=0, video_seconds_mean=0.0, commands_total=commands,
            commands_failed=0, commands=[], total_users=0, active_users=0, months_spanned=1,
            resolutions=[], daily=[DailyUsage(date(2026, 11, 3), commands, 0)],
        )  # fmt: skip

    assert png_size(render_usage_png(summary(0))) == (800, 300)
    assert png_size(render_usage_png(summary(3))) == (1000, 450)
