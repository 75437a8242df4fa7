"""Twelve months of the large server: a year's daily history from the day summaries.

The server is bench_reports' (about 1,000,000 activity rows a month: 20,000 posting users,
50 text and 5 voice channels), for the twelve months December 2025 to November 2026.
March 2026 is written through Store.write_batch (the flush's path, summaries kept as it
goes); the other months are copies of it made in SQL (same rhythm, each month's own
members, hourly rows and summaries shifted by whole days), so that filling a year takes
minutes, not the quarter of an hour twelve months of flushes would. The run checks that
the year's summaries equal the hourly rows.

``history_12m_s``: daily messages and active users per channel over the twelve months
(`guildmeter.reports.history.channel_days`), best of five. Baseline, same run: the same
answer computed from the hourly rows (`channel_days_live`), which must be equal.
SQLite; PostgreSQL (keys with ``_postgresql``) when reachable and GUILDMETER_BENCH_PG_YEAR
is set (filling twelve million rows there takes several minutes).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import text

import bench_reports
from bench_reports import GUILD, populate
from guildmeter.reports import DateRange
from guildmeter.reports.history import channel_days, channel_days_live
from guildmeter.store import Store
from guildmeter.timeutil import add_months

from _common import best_of, emit_year_figures

#: The written month (bench_reports.MONTH) and the year around it.
WRITTEN = 202603
MONTHS = [add_months(202512, i) for i in range(12)]
YEAR = DateRange.month(MONTHS[0])
YEAR = DateRange(YEAR.start, DateRange.month(MONTHS[-1]).end)


def populate_year(store: Store) -> int:
    """The twelve months (see the module docstring); returns the activity rows."""
    assert DateRange.month(WRITTEN) == bench_reports.MONTH
    rows = populate(store)
    calendar = store.calendars.get(GUILD)
    assert calendar.is_utc  # copies shift by whole days: same days, same day bits
    source = calendar.first_bucket(WRITTEN)
    length = calendar.first_bucket(add_months(WRITTEN, 1)) - source
    for month in MONTHS:
        if month == WRITTEN:
            continue
        start = calendar.first_bucket(month)
        hours = min(length, calendar.first_bucket(add_months(month, 1)) - start)
        params = {"g": GUILD, "m": month, "src": WRITTEN, "s": source, "n": hours,
                  "off": start - source, "doff": (start - source) // 24, "d0": source // 24,
                  "nd": hours // 24, "bits": (1 << (hours // 24)) - 1}  # fmt: skip
        with store.transaction() as conn:
            for sql in _COPY_SQL:
                result = conn.execute(text(sql), params)
                if sql.startswith("INSERT INTO activity"):
                    rows += int(result.rowcount or 0)
    return rows


#: One month copied into another: members, hourly rows, and their summaries as the
#: write path keeps them (shifted by whole days; the days past a shorter month dropped).
_COPY_SQL = (
    "INSERT INTO members (guild_id, month, label) SELECT guild_id, :m, label "
    "FROM members WHERE guild_id = :g AND month = :src",
    "INSERT INTO activity (guild_id, event, hour, channel_id, member_id, count) "
    "SELECT a.guild_id, a.event, a.hour + :off, a.channel_id, COALESCE(n.id, 0), a.count "
    "FROM activity a LEFT JOIN members o ON o.id = a.member_id "
    "LEFT JOIN members n ON n.guild_id = :g AND n.month = :m AND n.label = o.label "
    "WHERE a.guild_id = :g AND a.hour >= :s AND a.hour < :s + :n",
    "INSERT INTO hour_summaries SELECT guild_id, hour + :off, channel_id, messages, "
    "voice_seconds, joins, parts, member_total FROM hour_summaries "
    "WHERE guild_id = :g AND hour >= :s AND hour < :s + :n",
    "INSERT INTO day_summaries SELECT guild_id, day + :doff, channel_id, messages, "
    "voice_seconds, active_users, voice_users, joins, parts, member_total, "
    "member_total_hour + :off FROM day_summaries "
    "WHERE guild_id = :g AND day >= :d0 AND day < :d0 + :nd",
    "INSERT INTO member_days (guild_id, month, channel_id, member_id, msg_days, voice_days) "
    "SELECT d.guild_id, :m, d.channel_id, n.id, d.msg_days & :bits, d.voice_days & :bits "
    "FROM member_days d JOIN members o ON o.id = d.member_id "
    "JOIN members n ON n.guild_id = :g AND n.month = :m AND n.label = o.label "
    "WHERE d.guild_id = :g AND d.month = :src "
    "AND ((d.msg_days & :bits) <> 0 OR (d.voice_days & :bits) <> 0)",
    "INSERT INTO month_users (guild_id, month, channel_id, active_users, voice_users) "
    "SELECT guild_id, month, channel_id, SUM(CASE WHEN msg_days <> 0 THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN voice_days <> 0 THEN 1 ELSE 0 END) FROM member_days "
    "WHERE guild_id = :g AND month = :m GROUP BY guild_id, month, channel_id",
)


def measure(store: Store, suffix: str) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    start = time.perf_counter()
    figures[f"activity_rows{suffix}"] = populate_year(store)
    store.analyze()
    figures[f"populate_s{suffix}"] = time.perf_counter() - start
    summarised = channel_days(store, GUILD, YEAR)
    figures[f"history_12m_s{suffix}"] = best_of(5, lambda: channel_days(store, GUILD, YEAR))
    start = time.perf_counter()
    live = channel_days_live(store, GUILD, YEAR)  # the baseline, once: it reads 12M rows
    figures[f"history_12m_s{suffix}_baseline"] = time.perf_counter() - start
    assert summarised == live, "the day summaries differ from the hourly rows"
    figures[f"history_days{suffix}"] = len(summarised)
    return figures


def main() -> None:
    emit_year_figures(measure)


if __name__ == "__main__":
    main()
