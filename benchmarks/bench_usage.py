"""Usage tracking on the event path, and /stats over a large history (SQLite).

track: command uses recorded through the real tracker (what every command costs the
host), beside the floor of appending a tuple to a list.

stats: 1,000,000 command rows and 200,000 generation rows over 30 days (5,000 users, 40
commands, one guild), written through the real write path (raw rows plus daily
summaries and their roll-ups); then the /stats summary for 7 and 30 days from the roll-ups
(``stats_*_s``), beside two baselines of the same run: the same summary from the day rows
only, as /stats read them before the roll-ups (``*_day_rows``), and a raw-query baseline
that computes the same counts, means and distinct users from the raw tables (without
percentiles, which it would have to sort for). ``*_worst_end_s``: of the windows of that
length inside the data, the one that reads the most roll-up pieces. ``rollup_backfill_s``:
migration 0015's backfill of the roll-ups from this data's day rows.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import delete, text

from guildmeter.activity import ActivityStats
from guildmeter.privacy import Keyring
from guildmeter.reports.usage import usage_summary
from guildmeter.store import Store, rollups
from guildmeter.store.migrations.m0015_usage_rollups import backfill
from guildmeter.usage.tracker import Generation, UsageTracker

from _common import best_of, emit, peak_rss_mb

NOW = datetime(2026, 5, 30, 20, 0, tzinfo=UTC)
GUILD = 42
COMMANDS, GENERATIONS, USERS, DAYS = 1_000_000, 200_000, 5_000, 30
TRACK_EVENTS = 300_000
CHUNK = 100_000

RAW_QUERIES = (
    "SELECT command, count(*), sum(CASE WHEN ok THEN 0 ELSE 1 END), avg(duration_ms) "
    "FROM usage_commands WHERE guild_id = :g AND day >= :d GROUP BY command",
    "SELECT is_video, count(*), avg(seconds) FROM usage_generations "
    "WHERE guild_id = :g AND day >= :d GROUP BY is_video",
    "SELECT resolution, count(*) FROM usage_generations WHERE guild_id = :g AND day >= :d "
    "GROUP BY resolution ORDER BY 2 DESC LIMIT 5",
    "SELECT count(*) FROM (SELECT member_id FROM usage_commands WHERE guild_id = :g "
    "AND day >= :d UNION SELECT member_id FROM usage_generations WHERE guild_id = :g "
    "AND day >= :d) AS users",
)


def track_rate() -> dict[str, float]:
    tracker = UsageTracker(Keyring(), clock=lambda: NOW)  # memory only: no store needed
    start = time.perf_counter()
    for i in range(TRACK_EVENTS):
        tracker.command("draw", guild_id=GUILD, channel_id=7, user_id=i % USERS,
                        kind="slash", duration_ms=12.5, ok=True)  # fmt: skip
    tracked = TRACK_EVENTS / (time.perf_counter() - start)
    floor: list[tuple[object, ...]] = []
    start = time.perf_counter()
    for i in range(TRACK_EVENTS):
        floor.append(("draw", GUILD, 7, i % USERS, "slash", NOW, 12.5, True, None))
    baseline = TRACK_EVENTS / (time.perf_counter() - start)
    return {"track_events_per_s": tracked, "track_events_per_s_baseline": baseline}


def populate(stats: ActivityStats) -> float:
    rng = random.Random(5)
    names = [f"command{i}" for i in range(40)]
    weights = [1 / (i + 1) for i in range(40)]
    resolutions = ["1024x1024", "832x1216", "1216x832", "512x512", "1536x1536"]
    start = time.perf_counter()
    written = 0
    for offset in range(0, COMMANDS, CHUNK):
        for name in rng.choices(names, weights, k=CHUNK):
            at = NOW - timedelta(seconds=rng.randrange(DAYS * 86400))
            stats.usage.command(name, guild_id=GUILD, channel_id=7, user_id=rng.randrange(USERS),
                                kind="slash", duration_ms=rng.lognormvariate(4, 1),
                                ok=rng.random() > 0.03, at=at)  # fmt: skip
        if offset < GENERATIONS:
            for _ in range(min(CHUNK, GENERATIONS - offset)):
                at = NOW - timedelta(seconds=rng.randrange(DAYS * 86400))
                stats.usage.generation(Generation(
                    GUILD, rng.randrange(USERS), at, None, rng.choice(resolutions), ("ink",),
                    1.0, rng.uniform(5, 40), rng.random() < 0.1, "standard"))  # fmt: skip
        stats.load_keys()  # labelling (take) needs the month's keys in memory
        stats.usage.take()
        written += stats.usage.write(stats.store)
    return written / (time.perf_counter() - start)


def backfill_time(store: Store) -> float:
    """Migration 0015's backfill of the roll-ups from the day rows of this data."""
    with store.transaction() as conn:
        for table in rollups.rollup_tables:
            conn.execute(delete(table))
        start = time.perf_counter()
        backfill(conn)
        return time.perf_counter() - start


def main() -> None:
    figures: dict[str, float | int] = dict(track_rate())
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(str(Path(tmp) / "usage.db"))
        stats = ActivityStats(store, clock=lambda: NOW)
        figures["write_records_per_s"] = populate(stats)
        with store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
        last_day = int(NOW.timestamp() // 86400)
        for days in (7, 30):
            summary = usage_summary(store, GUILD, days, now=NOW)
            assert summary == usage_summary(store, GUILD, days, now=NOW, use_rollups=False)
            figures[f"stats_{days}d_s"] = best_of(
                5, lambda d=days: usage_summary(store, GUILD, d, now=NOW)
            )
            figures[f"stats_{days}d_s_day_rows"] = best_of(
                5, lambda d=days: usage_summary(store, GUILD, d, now=NOW, use_rollups=False)
            )

            def raw(d: int = days) -> None:
                with store.engine.connect() as conn:
                    for query in RAW_QUERIES:
                        conn.execute(text(query), {"g": GUILD, "d": last_day - d + 1}).all()

            figures[f"stats_{days}d_s_baseline"] = best_of(3, raw)
            figures[f"stats_{days}d_commands"] = summary.commands_total

            # The costliest window of this length inside the data: the one whose roll-up
            # plan has the most pieces (where its edges fall in their months).
            def pieces(back: int, d: int = days) -> int:
                last = last_day - back
                return len(rollups.plan(last - d + 1, last))

            worst_now = NOW - timedelta(days=max(range(DAYS - days + 1), key=pieces))
            worst = best_of(5, lambda d=days, n=worst_now: usage_summary(store, GUILD, d, now=n))
            figures[f"stats_{days}d_worst_end_pieces"] = pieces((NOW - worst_now).days)
            figures[f"stats_{days}d_worst_end_s"] = worst
            figures[f"stats_{days}d_worst_end_s_day_rows"] = best_of(
                5,
                lambda d=days, n=worst_now: usage_summary(
                    store, GUILD, d, now=n, use_rollups=False
                ),
            )
        figures["rollup_backfill_s"] = backfill_time(store)
        store.close()
    figures["peak_rss_mb"] = peak_rss_mb()
    for key, value in figures.items():
        print(f"{key:>30}: {value:,.4f}" if isinstance(value, float) else f"{key:>30}: {value:,}")
    emit(figures)


if __name__ == "__main__":
    main()
