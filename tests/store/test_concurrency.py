"""Several writers on one database: shards on PostgreSQL, a lock-holder on SQLite."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from guildmeter.activity import ActivityStats
from guildmeter.collect import Batch
from guildmeter.store import Store
from guildmeter.store.summaries import _lock_key, writers_turn

from tests.conftest import PgSchema, require_postgresql
from tests.helpers import distinct_users_per_month

GUILD = 77
HOUR = datetime(2026, 8, 14, 18, 0, tzinfo=UTC)


def _shard(url: str, engine_kwargs: dict[str, Any], seed: int, messages: int) -> None:
    store = Store.open(url, **engine_kwargs)
    stats = ActivityStats(store)
    for i in range(messages):
        # Both shards post as the same 50 users in the same two channels and hour.
        when = HOUR + timedelta(seconds=(i * 7 + seed) % 3600)
        stats.collector.message(GUILD, 10 + i % 2, 1_000 + (i * 13 + seed) % 50, when)
        if i % 500 == 499:
            result = stats.flush(when)
            assert result.error is None, result.error
    stats.close(HOUR + timedelta(minutes=59))
    store.close()


def test_two_processes_writing_the_same_guild_hour_give_exact_totals() -> None:
    require_postgresql()
    schema = PgSchema()
    try:
        ctx = multiprocessing.get_context("spawn")
        workers = [
            ctx.Process(target=_shard, args=(schema.url, schema.engine_kwargs, seed, 4_000))
            for seed in (1, 2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
            assert worker.exitcode == 0
        store = Store.open(schema.url, **schema.engine_kwargs)
        totals = store.activity_totals(GUILD)
        assert sum(totals.values()) == 8_000
        assert distinct_users_per_month(totals) == {202608: 50}
        assert {k[2] for k in totals} == {10, 11}
        store.close()
    finally:
        schema.drop()


def test_a_locked_sqlite_database_delays_the_flush_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = Store.open(str(path), busy_timeout_s=0.2)
    stats = ActivityStats(store)
    stats.collector.message(GUILD, 10, 1_000, HOUR)
    assert stats.flush(HOUR).error is None
    other = sqlite3.connect(path)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    for minute in range(3):
        stats.collector.message(GUILD, 10, 1_000, HOUR + timedelta(minutes=minute))
        result = stats.flush(HOUR + timedelta(minutes=minute))
        assert result.error is not None and "locked" in result.error
    other.rollback()
    other.close()
    assert stats.flush(HOUR + timedelta(minutes=5)).error is None
    assert list(store.activity_totals(GUILD).values()) == [4]
    store.close()


def test_postgresql_connections_cannot_hang_forever() -> None:
    """Statement and lock timeouts and keepalives on every connection; a URL's own
    ``options`` (here: the test schema's search_path) still apply."""
    from urllib.parse import quote

    from tests.conftest import PgSchema, require_postgresql

    require_postgresql()
    schema = PgSchema()
    try:
        url = f"{schema.url}?options={quote(f'-csearch_path={schema.name}')}"
        store = Store.open(url)
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "5min"
            assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "30s"
            assert conn.exec_driver_sql("SHOW search_path").scalar() == schema.name
        store.close()
    finally:
        schema.drop()


def _waiting_on_a_lock(store: Store) -> int:
    """Sessions of the test database that wait for a lock."""
    with store.engine.connect() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            ).scalar_one()
        )


def test_writers_create_members_of_several_months_in_one_order() -> None:
    """An import holding new members of August, then adding September's, and a flush of
    both months whose counts name September first: if the flush created September's
    members first, each would wait for the other (PostgreSQL: "deadlock detected")."""
    require_postgresql()
    schema = PgSchema()
    importer = Store.open(schema.url, **schema.engine_kwargs)
    flusher = Store.open(schema.url, **schema.engine_kwargs)
    try:
        calendar = flusher.calendars.get(GUILD)
        august, september = (calendar.bucket_of(HOUR + timedelta(days=d)) for d in (0, 31))
        msg = 0  # EventKind.MSG
        pinned = {(GUILD, august, msg, "h$" + "0" * 64, 10): 1}
        flusher.write_batch(Batch(counts=pinned, channels={}, batch_id="pin"))
        a, s = "h$" + "a" * 64, "h$" + "b" * 64
        errors: list[BaseException] = []

        def flush() -> None:
            counts = {(GUILD, september, msg, s, 10): 1, (GUILD, august, msg, a, 10): 1}
            try:
                flusher.write_batch(Batch(counts=counts, channels={}, batch_id="flush"))
            except BaseException as exc:  # reported below
                errors.append(exc)

        with importer.import_session(GUILD) as session:
            session.add({(GUILD, august, msg, a, 11): 1}, {})
            thread = threading.Thread(target=flush)
            thread.start()
            deadline = time.monotonic() + 30
            while _waiting_on_a_lock(importer) == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            session.add({(GUILD, september, msg, s, 11): 1}, {})
        thread.join(60)
        assert not errors, errors
        totals = flusher.activity_totals(GUILD)
        assert sum(totals.values()) == 5
    finally:
        importer.close()
        flusher.close()
        schema.drop()


def test_a_flush_takes_its_guilds_writers_turns_once_in_one_round_trip() -> None:
    """A sharded bot's flush touches hundreds of guilds: one statement takes all their
    turns (in sorted order), and the summaries' write does not take them again."""
    from sqlalchemy import event

    require_postgresql()
    schema = PgSchema()
    store = Store.open(schema.url, **schema.engine_kwargs)
    locks: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "pg_advisory_xact_lock" in statement:
            locks.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        stats = ActivityStats(store)
        for guild in (GUILD, GUILD + 1, GUILD + 2):
            stats.collector.message(guild, 10, 1_000, HOUR)
        assert stats.flush(HOUR + timedelta(minutes=1)).error is None
        assert len(locks) == 1
        for guild in (GUILD, GUILD + 1, GUILD + 2):
            assert sum(store.activity_totals(guild).values()) == 1
    finally:
        store.close()
        schema.drop()


def test_every_transaction_on_a_pooled_connection_takes_the_writers_turn_again() -> None:
    """The turns taken are remembered on the pooled connection, which outlives each
    transaction: one rolled back, then a new one, takes the turn again; so does a
    connection whose first statement is the turn (begun by it), each time."""
    require_postgresql()
    schema = PgSchema()
    store = Store.open(schema.url, **schema.engine_kwargs, pool_size=1, max_overflow=0)
    other = Store.open(schema.url, **schema.engine_kwargs)

    def held_elsewhere() -> bool:
        with other.engine.connect() as conn:
            free = conn.execute(
                text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _lock_key(GUILD)}
            ).scalar()
            conn.rollback()
        return not free

    def turn_is_held(conn: Connection) -> bool:
        writers_turn(conn, [GUILD])
        return held_elsewhere()

    try:
        with pytest.raises(RuntimeError), store.engine.begin() as conn:
            assert turn_is_held(conn)
            raise RuntimeError("rolled back")
        assert not held_elsewhere()
        with store.engine.begin() as conn:
            assert turn_is_held(conn)
        for _ in range(2):
            with store.engine.connect() as conn:  # no transaction yet: the turn begins one
                assert turn_is_held(conn)
                conn.commit()
            assert not held_elsewhere()
    finally:
        store.close()
        other.close()
        schema.drop()
