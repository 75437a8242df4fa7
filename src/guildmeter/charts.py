"""Charts of a guild's activity as one PNG (matplotlib, no pyplot: safe off the loop).

Three panels: a weekday × hour heatmap of messages, daily messages with active users, and
voice hours per day. Every time axis names the guild's timezone; counts start at zero. A
range with nothing to draw says so in words rather than showing empty axes, which read as
"zero activity".
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from guildmeter.reports.compute import WEEKDAYS
from guildmeter.reports.series import ActivitySeries
from guildmeter.reports.usage import UsageSummary

__all__ = ["NO_DATA", "render_activity_png", "render_usage_png"]

NO_DATA = "no data in this range"


def _no_data_png(title: str) -> bytes:
    fig = Figure(figsize=(8, 3), dpi=100, layout="constrained")
    fig.suptitle(title, fontsize=13, fontweight="bold")
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.5, NO_DATA, ha="center", va="center", fontsize=16, color="#555555")
    return _png(fig)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def render_activity_png(series: ActivitySeries, target: str | Path | None = None) -> bytes:
    """Render the three panels; write them to ``target`` if given; return the PNG bytes."""
    where = "all channels" if series.channel == "all" else f"#{series.channel}"
    title = f"Server activity, {where} — {series.range.describe()}"
    empty = not any(map(any, series.heatmap)) and not any(
        p.messages or p.voice_hours for p in series.daily
    )
    if empty:
        data = _no_data_png(title)
        if target is not None:
            Path(target).write_bytes(data)
        return data
    fig = Figure(figsize=(11, 12), dpi=100, layout="constrained")
    heat_ax, daily_ax, voice_ax = fig.subplots(3, 1, height_ratios=[1.1, 1, 0.8])
    fig.suptitle(title, fontsize=14, fontweight="bold")

    image = heat_ax.imshow(series.heatmap, aspect="auto", cmap="viridis", vmin=0)
    zone = series.range.zone_label
    heat_ax.set_title(f"Messages by weekday and hour of day ({zone}), totals over the range")
    heat_ax.set_yticks(range(7), [d[:3] for d in WEEKDAYS])
    heat_ax.set_xticks(range(24), [f"{h:02d}" for h in range(24)])
    heat_ax.set_xlabel(f"Hour of day ({zone})")
    fig.colorbar(image, ax=heat_ax, label="messages", pad=0.01)

    days = [point.day for point in series.daily]
    daily_ax.bar(days, [p.messages for p in series.daily], color="#4c72b0", label="messages")
    daily_ax.set_title(f"Messages and active users per day ({zone} days)")
    daily_ax.set_ylabel("messages", color="#4c72b0")
    daily_ax.set_ylim(bottom=0)
    daily_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    users_ax = daily_ax.twinx()
    users_ax.plot(days, [p.active_users for p in series.daily], color="#dd8452", marker="o",
                  markersize=3, label="active users")  # fmt: skip
    users_ax.set_ylabel("active users", color="#dd8452")
    users_ax.set_ylim(bottom=0)
    users_ax.yaxis.set_major_locator(MaxNLocator(integer=True))

    voice_ax.bar(days, [p.voice_hours for p in series.daily], color="#55a868")
    voice_ax.set_title(f"Voice hours per day ({zone} days)")
    voice_ax.set_ylabel("hours in voice")
    voice_ax.set_ylim(bottom=0)
    for axis in (daily_ax, voice_ax):
        axis.tick_params(axis="x", labelrotation=45)
        axis.set_xlabel(f"date ({zone})")
        axis.grid(axis="y", alpha=0.3)

    data = _png(fig)
    if target is not None:
        Path(target).write_bytes(data)
    return data


def render_usage_png(summary: UsageSummary) -> bytes:
    """Daily commands and generation jobs of a usage summary, as one bar chart."""
    title = f"Bot usage per day, {summary.start} to {summary.end}"
    if not any(d.commands or d.generations for d in summary.daily):
        return _no_data_png(title)
    fig = Figure(figsize=(10, 4.5), dpi=100, layout="constrained")
    ax = fig.subplots()
    days = [d.day for d in summary.daily]
    width = 0.4
    positions = range(len(days))
    ax.bar([p - width / 2 for p in positions], [d.commands for d in summary.daily], width,
           label="commands", color="#3b82f6")  # fmt: skip
    ax.bar([p + width / 2 for p in positions], [d.generations for d in summary.daily], width,
           label="generations", color="#f59e0b")  # fmt: skip
    step = max(1, len(days) // 10)
    ax.set_xticks(list(positions)[::step], [f"{d:%m-%d}" for d in days][::step])
    ax.set_xlabel(f"day ({summary.zone})")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper left")
    ax.set_title(title)
    return _png(fig)
