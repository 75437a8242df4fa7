"""Collector throughput and flush throughput (SQLite, PostgreSQL), each beside a baseline.

collect: messages from 10,000 users in 200 channels through the real Accumulator, keyed
pseudonyms included (each user's first message of the month computes it, the rest hit the
cache). Baselines, same run: a bare dict counter keyed by raw ids (the floor any collector
pays), and KazTron's approach of a PBKDF2-HMAC-SHA256 hash on every message.

flush: one batch of 200,000 distinct counters written by Store.write_batch (new rows, then
the same keys again as additive updates), beside a raw driver executemany of a plain INSERT
into the same table — what the database itself costs without our upsert.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from guildmeter.collect import Accumulator, Batch
from guildmeter.privacy import Keyring
from guildmeter.privacy.optout import OptOuts
from guildmeter.store import Store
from guildmeter.zones import Calendars

from _common import PG_URL, best_of, emit, peak_rss_mb, pg_schema, postgresql_available

USERS, CHANNELS, EVENTS = 10_000, 200, 1_000_000
GUILD = 1
START = datetime(2026, 3, 9, 0, 0, tzinfo=UTC)


class _Keys:
    def get_or_create_key(self, guild_id: int, month: int, candidate: bytes) -> bytes:
        return candidate


class _OptOutSource:
    """Opt-outs kept in memory: the benchmark measures the event path, not the store."""

    def load_optouts(self) -> dict[int, tuple[bytes, frozenset[bytes]]]:
        return {}

    def get_or_create_optout_key(self, guild_id: int, candidate: bytes) -> bytes:
        return candidate

    def add_optout(self, guild_id: int, digest: bytes) -> bool:
        return True

    def remove_optout(self, guild_id: int, digest: bytes) -> bool:
        return True


def _events() -> list[tuple[int, int, datetime]]:
    rng = random.Random(1)
    times = [START + timedelta(seconds=i * 2) for i in range(EVENTS)]
    return [(rng.randrange(USERS), rng.randrange(CHANNELS), t) for t in times]


def bench_collect() -> dict[str, float]:
    events = _events()

    def ours() -> None:
        keyring = Keyring()
        keyring.load(_Keys(), [(GUILD, 202603)])
        acc = Accumulator(keyring)
        message = acc.message
        for user, channel, when in events:
            message(GUILD, 1000 + channel, 10**17 + user, when)

    def with_optouts() -> None:
        # One member of the guild opted out: every event pays the in-memory lookup.
        optouts = OptOuts()
        optouts.opt_out(_OptOutSource(), GUILD, 10**17 + USERS + 1)
        keyring = Keyring(optouts)
        keyring.load(_Keys(), [(GUILD, 202603)])
        acc = Accumulator(keyring)
        message = acc.message
        for user, channel, when in events:
            message(GUILD, 1000 + channel, 10**17 + user, when)

    def local_zone() -> None:
        # The guild follows Asia/Kolkata (+5:30): buckets on its local hour marks.
        keyring = Keyring()
        calendars = Calendars({GUILD: [(0, "Asia/Kolkata")]})
        month = calendars.get(GUILD).month_of(events[0][2])
        keyring.load(_Keys(), [(GUILD, month), (GUILD, month + 1)])
        acc = Accumulator(keyring, calendars=calendars)
        message = acc.message
        for user, channel, when in events:
            message(GUILD, 1000 + channel, 10**17 + user, when)

    def bare_dict() -> None:
        counts: dict[tuple[int, int, int, int], int] = {}
        for user, channel, when in events:
            key = (GUILD, int(when.timestamp() // 3600), user, channel)
            counts[key] = counts.get(key, 0) + 1

    sample = events[:40]

    def kaztron_pbkdf2() -> None:
        salt = b"0" * 16
        counts: dict[tuple[str, int], int] = {}
        for user, channel, _when in sample:
            digest = hashlib.pbkdf2_hmac("sha256", str(user).encode(), salt, 200_000).hex()
            counts[(digest, channel)] = counts.get((digest, channel), 0) + 1

    return {
        "collect_events_per_s": EVENTS / best_of(3, ours),
        "collect_events_per_s_with_optouts": EVENTS / best_of(3, with_optouts),
        "collect_events_per_s_local_zone": EVENTS / best_of(3, local_zone),
        "collect_events_per_s_baseline": EVENTS / best_of(3, bare_dict),
        "collect_events_per_s_kaztron_pbkdf2": len(sample) / best_of(1, kaztron_pbkdf2),
    }


def _batch(rows: int) -> Batch:
    counts = {}
    hour = int(START.timestamp() // 3600)
    for i in range(rows):
        label = f"h${i % USERS:032x}"
        counts[(GUILD, hour + i // (USERS * 5), 1, label, 1000 + (i // USERS) % 5)] = 3
    return Batch(counts=counts, channels={})


def _flush_figures(store: Store, rows: int) -> tuple[float, float]:
    first, again = _batch(rows), _batch(rows)
    store.write_batch(_batch(USERS))  # members created, as after a first flush
    start = time.perf_counter()
    store.write_batch(first)
    insert_s = time.perf_counter() - start
    start = time.perf_counter()
    store.write_batch(again)
    update_s = time.perf_counter() - start
    return rows / insert_s, rows / update_s


def bench_sqlite(rows: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(str(Path(tmp) / "bench.db"))
        inserted, updated = _flush_figures(store, rows)
        store.close()
        raw = sqlite3.connect(Path(tmp) / "raw.db")
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute(
            "CREATE TABLE t (g INT, e INT, h INT, c INT, m INT, n INT,"
            " PRIMARY KEY (g, e, h, c, m)) WITHOUT ROWID"
        )
        data = [(GUILD, 1, i // 1000, i % 7, i, 3) for i in range(rows)]
        start = time.perf_counter()
        with raw:
            raw.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", data)
        baseline = rows / (time.perf_counter() - start)
        raw.close()
    return {
        "flush_sqlite_rows_per_s": inserted,
        "flush_sqlite_update_rows_per_s": updated,
        "flush_sqlite_rows_per_s_baseline": baseline,
    }


def bench_postgresql(rows: int) -> dict[str, float]:
    if not postgresql_available():
        print(f"PostgreSQL at {PG_URL} not reachable: skipped", file=sys.stderr)
        return {}
    with pg_schema() as kwargs:
        store = Store.open(PG_URL, **kwargs)
        inserted, updated = _flush_figures(store, rows)
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE t (g BIGINT, e SMALLINT, h INT, c BIGINT, m BIGINT, n BIGINT,"
                " PRIMARY KEY (g, e, h, c, m))"
            )
            data = [(GUILD, 1, i // 1000, i % 7, i, 3) for i in range(rows)]
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            start = time.perf_counter()
            cursor.executemany("INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s)", data)
            baseline = rows / (time.perf_counter() - start)
        store.close()
    return {
        "flush_postgresql_rows_per_s": inserted,
        "flush_postgresql_update_rows_per_s": updated,
        "flush_postgresql_rows_per_s_baseline": baseline,
    }


def main() -> None:
    figures: dict[str, float] = {}
    figures.update(bench_collect())
    figures.update(bench_sqlite(200_000))
    figures.update(bench_postgresql(200_000))
    figures["peak_rss_mb"] = peak_rss_mb()
    emit(figures)


if __name__ == "__main__":
    main()
