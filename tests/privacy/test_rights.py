"""Opt-out and forget-me on every backend: what is counted, what is deleted, what is at rest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from guildmeter.activity import ActivityStats
from guildmeter.events import EventKind
from guildmeter.privacy.keyring import pseudonym_of
from guildmeter.privacy.rights import forget_in_store, plan_forget
from guildmeter.reports import DateRange, compute_report
from guildmeter.store import Store
from guildmeter.store.rights import RightsStore, member_optouts
from guildmeter.store.usage import UsageStore
from guildmeter.usage.tracker import Generation

from tests.helpers import database_bytes

GUILD, OTHER = 7, 8
ANN, BOB = 345_678_901_234_567_890, 456_789_012_345_678_901  # realistic snowflakes
T0 = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
MAY = DateRange(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))


def _full(store: Store, guild: int = GUILD) -> tuple[int, int, float, int, int]:
    row = compute_report(store, guild, "full", MAY).rows[0]
    return row.messages, row.active_users, row.voice_man_hours, row.joins, row.parts


def test_an_opted_out_member_is_not_counted_until_they_opt_in(store: Store) -> None:
    stats = ActivityStats(store, clock=lambda: T0)
    stats.collector.message(GUILD, 1, BOB, T0)
    stats.voice.update(GUILD, BOB, 50, T0)
    stats.flush(T0 + timedelta(minutes=10))  # ten minutes in voice, counted
    assert stats.opt_out(GUILD, BOB)
    stats.voice.update(GUILD, BOB, None, T0 + timedelta(minutes=10))  # the cog closes it
    for minute in range(3):
        stats.collector.message(GUILD, 1, BOB, T0 + timedelta(minutes=11 + minute))
        stats.collector.message_at_hour(GUILD, 1, BOB, int(T0.timestamp()) // 3600)
    stats.voice.update(GUILD, BOB, 50, T0 + timedelta(minutes=12))  # no session opens
    stats.collector.part(GUILD, BOB, T0 + timedelta(minutes=13))
    stats.collector.join(GUILD, BOB, T0 + timedelta(minutes=14))
    stats.usage.command(
        "draw", guild_id=GUILD, channel_id=1, user_id=BOB, kind="slash", duration_ms=5, ok=True
    )
    stats.collector.message(OTHER, 1, BOB, T0)  # another guild: still counted there
    stats.collector.message(GUILD, 1, ANN, T0)
    stats.flush(T0 + timedelta(minutes=40))
    messages, users, voice, joins, parts = _full(store)
    assert (messages, users, joins, parts) == (2, 2, 1, 1)
    assert voice * 60 == 10
    # The join and part count for nobody: no member row is made for them.
    totals = store.activity_totals(GUILD)
    server_wide = {k: v for k, v in totals.items() if k[1] in (EventKind.JOIN, EventKind.PART)}
    assert server_wide and all(label == "" for (_h, _e, _c, label) in server_wide)
    assert UsageStore(store).row_counts(GUILD)["usage_commands"] == 0
    assert _full(store, OTHER)[0] == 1

    assert stats.opt_in(GUILD, BOB)
    stats.collector.message(GUILD, 1, BOB, T0 + timedelta(minutes=50))
    stats.flush(T0 + timedelta(minutes=51))
    assert _full(store)[:2] == (3, 2)


def test_the_opt_out_list_holds_no_raw_id_and_no_pseudonym(store: Store, tmp_path: Path) -> None:
    stats = ActivityStats(store, clock=lambda: T0)
    stats.collector.message(GUILD, 1, BOB, T0)
    stats.flush(T0)
    stats.opt_out(GUILD, BOB)
    with store.engine.connect() as conn:
        (digest,) = conn.execute(select(member_optouts.c.digest)).scalars()
    (_g, _m, key) = RightsStore(store).live_keys(GUILD)[0]
    assert bytes(digest) != bytes.fromhex(pseudonym_of(key, BOB)[2:])
    assert BOB.to_bytes(8, "big") not in bytes(digest)
    if store.dialect == "sqlite":
        data = database_bytes(tmp_path / "stats.db")
        for needle in (str(BOB).encode(), BOB.to_bytes(8, "big"), BOB.to_bytes(8, "little")):
            assert needle not in data


def test_a_second_process_honours_an_opt_out_within_one_flush(
    store_factory: Callable[..., Store],
) -> None:
    first = ActivityStats(store_factory(), clock=lambda: T0)
    second = ActivityStats(store_factory(), clock=lambda: T0)
    second.collector.message(GUILD, 1, BOB, T0)
    second.flush(T0)  # BOB known to the second process: a decision is cached there
    first.opt_out(GUILD, BOB)
    second.flush(T0)  # its next flush reloads the list
    second.collector.message(GUILD, 1, BOB, T0)
    second.voice.update(GUILD, BOB, 50, T0)
    second.flush(T0 + timedelta(minutes=5))
    assert _full(second.store)[:3] == (1, 1, 0)
    first.opt_in(GUILD, BOB)
    second.flush(T0 + timedelta(minutes=5))
    second.collector.message(GUILD, 1, BOB, T0 + timedelta(minutes=6))
    second.flush(T0 + timedelta(minutes=7))
    assert _full(second.store)[0] == 2


def _feed(stats: ActivityStats) -> None:
    for minute in range(4):
        stats.collector.message(GUILD, 1, ANN, T0 + timedelta(minutes=minute))
    for channel in (1, 2):
        stats.collector.message(GUILD, channel, BOB, T0)
    stats.collector.message(OTHER, 1, BOB, T0)
    stats.voice.update(GUILD, BOB, 50, T0)
    stats.voice.update(GUILD, BOB, None, T0 + timedelta(minutes=30))
    stats.collector.join(GUILD, BOB, T0)
    stats.usage.generation(
        Generation(GUILD, BOB, T0, None, "512x512", (), 1.0, 9.0, False, "standard")
    )
    for user in (ANN, BOB):
        stats.usage.command(
            "draw", guild_id=GUILD, channel_id=1, user_id=user, kind="slash",
            duration_ms=40.0, ok=user == ANN, at=T0,
        )  # fmt: skip
    stats.flush(T0 + timedelta(hours=1))


def test_forget_deletes_exactly_the_members_rows_and_scrubs_them(
    store: Store, tmp_path: Path
) -> None:
    stats = ActivityStats(store, clock=lambda: T0)
    _feed(stats)
    (_g, _m, key) = RightsStore(store).live_keys(GUILD)[0]
    label = pseudonym_of(key, BOB).encode()
    if store.dialect == "sqlite":
        assert label in database_bytes(tmp_path / "stats.db")
    before = _full(store)
    assert before[:2] == (6, 2)

    plan = plan_forget(store, BOB, GUILD)
    assert not plan.done and (plan.messages, plan.voice_seconds, plan.usage_records) == (
        2, 1800, 2,
    )  # fmt: skip
    assert _full(store) == before  # a plan changes nothing

    done = forget_in_store(store, BOB, GUILD)
    assert done.done and done.messages == 2 and done.months[0].joins == 1
    messages, users, voice, joins, parts = _full(store)
    assert (messages, users, voice, joins, parts) == (4, 1, 0.0, 0, 0)
    assert _full(store, OTHER)[0] == 1  # only this guild was asked
    usage = UsageStore(store)
    counts = usage.row_counts(GUILD)
    assert counts["usage_commands"] == 1 and counts["usage_generations"] == 0
    from guildmeter.reports.usage import usage_summary

    summary = usage_summary(store, GUILD, days=7, now=T0 + timedelta(hours=1))
    assert (summary.commands_total, summary.commands_failed) == (1, 0)
    assert summary.total_users == 1 and summary.images == 0
    if store.dialect == "sqlite":
        data = database_bytes(tmp_path / "stats.db")
        assert label not in data
        assert str(BOB).encode() not in data
    assert forget_in_store(store, BOB, GUILD).months == []  # nothing left: idempotent


def test_forget_everywhere_and_anonymised_months_are_untouched(store: Store) -> None:
    stats = ActivityStats(store, clock=lambda: T0)
    _feed(stats)
    stats.flush(datetime(2026, 6, 1, 0, 5, tzinfo=UTC))  # May anonymised
    assert forget_in_store(store, BOB).months == []
    assert plan_forget(store, BOB).anonymised_months == 2
    assert _full(store)[:2] == (6, 2)  # nothing of May can be found as BOB's

    june = datetime(2026, 6, 2, tzinfo=UTC)
    stats.collector.message(GUILD, 1, BOB, june)
    stats.collector.message(OTHER, 1, BOB, june)
    stats.flush(june)
    report = forget_in_store(store, BOB)
    assert sorted(m.guild_id for m in report.months) == [GUILD, OTHER]
    assert report.messages == 2


def test_forget_in_memory_drops_what_is_not_yet_written(store: Store) -> None:
    stats = ActivityStats(store, clock=lambda: T0)
    stats.collector.message(GUILD, 1, ANN, T0)
    stats.flush(T0)  # the month's key exists now
    stats.collector.message(GUILD, 1, BOB, T0)
    stats.voice.update(GUILD, BOB, 50, T0)
    stats.usage.command(
        "draw", guild_id=GUILD, channel_id=1, user_id=BOB, kind="slash", duration_ms=5, ok=True
    )
    labels = [label for _g, _m, label in _labels(store)]
    assert stats.forget_in_memory(GUILD, BOB, labels) == 3
    stats.flush(T0 + timedelta(minutes=5))
    assert _full(store)[:3] == (1, 1, 0.0)


def _labels(store: Store) -> list[tuple[int, int, str]]:
    from guildmeter.privacy.rights import member_labels

    return member_labels(RightsStore(store), BOB, GUILD)


def test_a_database_outage_while_reloading_opt_outs_fails_the_flush_cleanly() -> None:
    from guildmeter.store.engine import make_engine

    stats = ActivityStats(Store(make_engine("postgresql://nobody@127.0.0.1:1/none")))
    stats.collector.message(GUILD, 1, ANN, T0)
    result = stats.flush(T0)
    assert result.error is not None and "unavailable" in result.error
    assert len(stats.collector) == 1  # still waiting for its key, nothing lost
