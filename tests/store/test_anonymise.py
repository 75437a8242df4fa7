"""Month-end anonymisation: counts and unique users kept, pseudonyms and key gone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from guildmeter.activity import ActivityStats
from guildmeter.store import Store, schema
from guildmeter.store.monthend import MonthEndMixin

from tests.helpers import database_bytes, distinct_users_per_month, shape

GUILD = 4242
USERS = [987_654_321_012_345_000 + i for i in range(25)]
MAY = datetime(2026, 5, 25, 10, 0, tzinfo=UTC)


def _feed_may_and_june(stats: ActivityStats) -> None:
    """Ten days of traffic from 2026-05-25 to 2026-06-03, flushed daily."""
    for day in range(10):
        for i, user in enumerate(USERS):
            when = MAY + timedelta(days=day, minutes=i)
            stats.collector.message(GUILD, 10 + i % 3, user, when)
            if i % 5 == 0:
                stats.voice.update(GUILD, user, 20, when)
                stats.voice.update(GUILD, user, None, when + timedelta(minutes=50))
        stats.collector.member_total(GUILD, 100 + day, MAY + timedelta(days=day))
        stats.flush(MAY + timedelta(days=day, hours=1))


def _key_bytes(store: Store) -> list[bytes]:
    with store.engine.connect() as conn:
        return [bytes(k) for k in conn.scalars(select(schema.guild_keys.c.key)) if k is not None]


def test_anonymisation_keeps_counts_and_users_and_removes_pseudonyms(store: Store) -> None:
    stats = ActivityStats(store)
    _feed_may_and_june(stats)  # runs past the end of May: the first June flush anonymises
    after = store.activity_totals(GUILD)
    assert any(_is_may(k[0]) for k in after), "May data expected"
    labels_may = {k[3] for k in after if k[3] and k[3].startswith("u202605$")}
    assert len(labels_may) == len(USERS)
    assert not any(k[3].startswith("h$") for k in after if _is_may(k[0]))
    assert any(k[3].startswith("h$") for k in after if not _is_may(k[0]))  # June in progress
    months = {m["month"]: m for m in store.month_summary(GUILD)}
    assert months[202605] == {
        "month": 202605,
        "users": 25,
        "pseudonyms": 0,
        "tokens": 25,
        "key_present": False,
    }
    assert months[202606]["key_present"]


def _is_may(hour: int) -> bool:
    return hour < int(datetime(2026, 6, 1, tzinfo=UTC).timestamp() // 3600)


def test_anonymisation_changes_no_count_and_no_unique_user(store: Store) -> None:
    stats = ActivityStats(store)
    t = datetime(2026, 5, 31, 20, 0, tzinfo=UTC)
    for i, user in enumerate(USERS):
        for _ in range(i + 1):
            stats.collector.message(GUILD, 10, user, t)
    stats.flush(t)
    before = store.activity_totals(GUILD)
    result = stats.flush(datetime(2026, 6, 1, 0, 5, tzinfo=UTC))
    assert [(a.month, a.pseudonyms_replaced, a.key_destroyed) for a in result.anonymised] == [
        (202605, 25, True)
    ]
    after = store.activity_totals(GUILD)
    assert shape(after) == shape(before)
    assert distinct_users_per_month(after) == distinct_users_per_month(before)
    assert set(before).isdisjoint(after)  # every label changed
    assert len({k[3] for k in after}) == 25  # one token per pseudonym
    assert store.months_to_anonymise(202606) == []


def test_anonymisation_is_idempotent(store: Store) -> None:
    stats = ActivityStats(store)
    stats.collector.message(GUILD, 10, USERS[0], MAY)
    stats.flush(MAY)
    first = store.anonymise_month(GUILD, 202605)
    labels = store.activity_totals(GUILD)
    second = store.anonymise_month(GUILD, 202605)
    assert (first.pseudonyms_replaced, first.key_destroyed) == (1, True)
    assert (second.pseudonyms_replaced, second.key_destroyed) == (0, False)
    assert store.activity_totals(GUILD) == labels


def test_interrupted_anonymisation_resumes_with_nothing_lost(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    stats = ActivityStats(store)
    for user in USERS:
        stats.collector.message(GUILD, 10, user, MAY)
    stats.flush(MAY)
    before = store.activity_totals(GUILD)
    real = MonthEndMixin._replace_labels

    def dies_after_the_labels(self: Store, conn: object, labels: list[tuple[int, str]]) -> None:
        real(self, conn, labels)  # type: ignore[arg-type]
        raise KeyboardInterrupt("power cut")  # the labels replaced, the key not yet destroyed

    monkeypatch.setattr(MonthEndMixin, "_replace_labels", dies_after_the_labels)
    with pytest.raises(KeyboardInterrupt):
        store.anonymise_month(GUILD, 202605)
    assert store.activity_totals(GUILD) == before  # all or nothing
    assert len(_key_bytes(store)) == 1
    monkeypatch.setattr(MonthEndMixin, "_replace_labels", real)
    result = stats.flush(datetime(2026, 6, 1, 0, 1, tzinfo=UTC))
    assert result.anonymised[0].pseudonyms_replaced == 25
    assert shape(store.activity_totals(GUILD)) == shape(before)
    assert _key_bytes(store) == []


def test_late_events_for_an_anonymised_month_get_tokens(store: Store) -> None:
    stats = ActivityStats(store)
    stats.collector.message(GUILD, 10, USERS[0], MAY)
    stats.flush(datetime(2026, 6, 1, 0, 1, tzinfo=UTC))  # anonymises May
    stats.collector.message(GUILD, 10, USERS[1], MAY)  # a late, skewed timestamp
    stats.flush(datetime(2026, 6, 1, 0, 2, tzinfo=UTC))
    labels = {k[3] for k in store.activity_totals(GUILD)}
    assert len(labels) == 2 and all(label.startswith("u202605$") for label in labels)


def test_a_lagging_shard_never_writes_a_pseudonym_into_an_anonymised_month(
    store_factory: object,
) -> None:
    shard_a = ActivityStats(store_factory())  # type: ignore[operator]
    shard_b = ActivityStats(store_factory())  # type: ignore[operator]
    shard_b.collector.message(GUILD, 10, USERS[1], MAY)
    shard_b.load_keys()  # B holds May's key in memory, its counts not yet written
    shard_a.collector.message(GUILD, 10, USERS[0], MAY)
    shard_a.flush(datetime(2026, 6, 1, 0, 1, tzinfo=UTC))  # A anonymises May
    shard_b.take_batch(datetime(2026, 5, 31, 23, 59, tzinfo=UTC))
    shard_b.write(datetime(2026, 5, 31, 23, 59, tzinfo=UTC))
    labels = {k[3] for k in shard_a.store.activity_totals(GUILD)}
    assert len(labels) == 2 and all(label.startswith("u202605$") for label in labels)


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "scan.db"


def test_no_raw_id_and_no_destroyed_key_in_the_sqlite_files(sqlite_path: Path) -> None:
    store = Store.open(str(sqlite_path))
    stats = ActivityStats(store)
    stats.collector.message(GUILD, 10, USERS[0], MAY)
    stats.flush(MAY)
    may_keys = _key_bytes(store)
    assert len(may_keys) == 1
    _feed_may_and_june(stats)  # May anonymised at the first June flush
    june = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
    store.close()
    raw = database_bytes(sqlite_path)
    assert b"h$" in raw  # June is still in progress: its pseudonyms are there, as they should
    for user in USERS:
        for encoding in (str(user).encode(), user.to_bytes(8, "big"), user.to_bytes(8, "little")):
            assert encoding not in raw, f"raw user id {user} found in the database files"
    assert may_keys[0] not in raw, "destroyed key found in the database files"

    store = Store.open(str(sqlite_path))
    stats = ActivityStats(store)
    june_keys = _key_bytes(store)
    june_pseudonyms = {k[3].encode() for k in store.activity_totals(GUILD) if k[3].startswith("h$")}
    assert len(june_keys) == 1 and june_pseudonyms
    stats.flush(june.replace(month=7, day=1))  # and now June ends too
    raw = database_bytes(sqlite_path)  # scanned while the store is open, as in a running bot
    store.close()
    assert june_keys[0] not in raw, "destroyed key found in the database files"
    assert b"h$" not in raw, "a pseudonym of an anonymised month is still in the files"
    for pseudonym in june_pseudonyms:
        assert pseudonym[2:] not in raw
