"""The flush's worker-thread steps against listeners adding counts at the same time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from guildmeter.activity import ActivityStats
from guildmeter.store import Store
from guildmeter.timeutil import hour_index

GUILD = 1
MAY = datetime(2026, 5, 31, 22, 0, tzinfo=UTC)
JUNE = datetime(2026, 6, 1, 0, 5, tzinfo=UTC)


def test_the_write_step_never_iterates_what_the_listeners_change(store: Store) -> None:
    """Regression: the month-end check iterated the live counters from the flush thread
    ("dictionary changed size during iteration"), and the flush loop died for good."""
    stats = ActivityStats(store)
    stats.load_keys([(GUILD, 202605), (GUILD, 202606)])
    may_hour = hour_index(MAY)
    for user in range(50_000):  # a large live dictionary: iterating it takes a while
        stats.collector.message_at_hour(GUILD, 10, user, may_hour)
    errors: list[BaseException] = []
    stop = threading.Event()

    def flush_thread() -> None:
        while not stop.is_set():
            try:
                stats.write(JUNE)  # the month-end job is due: May is over
            except BaseException as exc:
                errors.append(exc)
                return

    worker = threading.Thread(target=flush_thread)
    worker.start()
    try:
        user = 50_000
        deadline = datetime.now(UTC) + timedelta(seconds=1.5)
        while datetime.now(UTC) < deadline and not errors:
            for _ in range(2_000):  # the listeners keep adding new counters
                stats.collector.message_at_hour(GUILD, 10, user, may_hour)
                user += 1
    finally:
        stop.set()
        worker.join()
    assert errors == []


def test_the_month_is_not_anonymised_while_its_counts_are_in_memory(store: Store) -> None:
    stats = ActivityStats(store)
    stats.collector.message(GUILD, 10, 500, MAY)  # no key yet: the count waits, pending
    stats.take_batch(JUNE)  # the flush could not load the key (say, the store was down)
    assert stats.write(JUNE).anonymised == []
    stats.flush(JUNE)  # the key is loaded, the count written, then May is anonymised
    assert [done.month for done in stats.flush(JUNE).anonymised] in ([], [202605])
    assert store.anonymised_at(GUILD, 202605) is not None
    assert sum(store.activity_totals(GUILD).values()) == 1


def test_the_write_step_leaves_the_pseudonym_caches_to_the_loop(store: Store) -> None:
    """An opt-out recorded by another process reaches the caches only in `finish`, on the
    loop: the flush thread never changes what the listeners read."""
    stats = ActivityStats(store)
    other = ActivityStats(store)  # a second process on the same database
    stats.load_keys([(GUILD, 202606)])
    stats.collector.message(GUILD, 10, 500, JUNE)
    assert stats.keyring.caches[(GUILD, 202606)]
    other.opt_out(GUILD, 500)
    stats.take_batch(JUNE)
    result = stats.write(JUNE)  # the flush thread's step
    assert result.optouts_changed == {GUILD}
    assert 500 in stats.keyring.caches[(GUILD, 202606)]  # untouched until the loop's turn
    stats.finish(result, JUNE)
    assert (GUILD, 202606) not in stats.keyring.caches
    stats.collector.message(GUILD, 10, 500, JUNE)  # counted no more
    stats.flush(JUNE)
    assert sum(store.activity_totals(GUILD).values()) == 1
