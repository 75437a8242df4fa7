"""Month snapshots equal the live computation: when built, after late events, after retention."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guildmeter import jobs
from guildmeter.activity import ActivityStats
from guildmeter.reports import DateRange
from guildmeter.reports.compute import Report, ReportError, compute_live_report, compute_report
from guildmeter.reports.snapshots import build_month_snapshots, closed_month_of
from guildmeter.store import Store
from guildmeter.store.retention import delete_member_rows, retention_due
from guildmeter.store.settings import SettingsStore
from guildmeter.store.snapshots import begin_build, finish_build, markers, missing_snapshots

from tests.reports.reference import Fed, utc

#: Channel ids and names; two channels share the name "general" (a re-created channel).
CHANNELS = {11: "general", 12: "art", 13: "general", 21: "Lounge 🎵"}
MONTH = 202603
KINDS = ("full", "weekday", "hourly")
_guilds = itertools.count(70_000)

fed_events = st.lists(
    st.builds(
        Fed,
        when=st.integers(0, 31 * 24 * 3600 - 1).map(
            lambda s: utc(2026, 3, 1) + timedelta(seconds=s)
        ),
        event=st.sampled_from(["msg", "msg", "msg", "voice", "join", "part", "total_users"]),
        user=st.sampled_from([str(u) for u in range(900, 910)]),
        channel=st.sampled_from([str(c) for c in CHANNELS]),
        count=st.integers(1, 4000),
    ),
    max_size=60,
)


def feed(store: Store, guild: int, events: list[Fed], now_day: int = 15) -> None:
    """Count ``events`` through the real collector and flush, as of 2026-03-``now_day``
    (or, past 31, that many days after March 1st)."""
    stats = ActivityStats(store)
    for cid, name in CHANNELS.items():
        stats.collector.name_channel(guild, cid, name)
    for e in events:
        if e.event == "msg":
            stats.collector.message(guild, int(e.channel), int(e.user), e.when)
        elif e.event == "voice":
            stats.collector.add("voice", guild, int(e.channel), int(e.user), e.when, e.count)
        elif e.event == "join":
            stats.collector.join(guild, int(e.user), e.when)
        elif e.event == "part":
            stats.collector.part(guild, int(e.user), e.when)
        else:
            stats.collector.member_total(guild, e.count, e.when)
    now = utc(2026, 3, 1) + timedelta(days=now_day - 1)
    assert stats.flush(now).error is None


def month_of(store: Store, guild: int) -> DateRange:
    return DateRange.month(MONTH, store.calendars.get(guild))


def every_report(store: Store, guild: int, *, live: bool) -> dict[tuple[str, str], Report]:
    compute = compute_live_report if live else compute_report
    span = month_of(store, guild)
    return {
        (kind, channel): compute(store, guild, kind, span, channel)  # type: ignore[operator]
        for kind, channel in itertools.product(KINDS, ["all", "general", "art", "Lounge 🎵"])
    }


def close_month(store: Store, guild: int) -> None:
    store.anonymise_month(guild, MONTH)
    assert build_month_snapshots(store, guild, MONTH)
    assert markers(store, guild)[MONTH].ready_at is not None


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    events=fed_events,
    late=fed_events,
    zone=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]),
)
def test_snapshots_equal_the_live_reports_also_after_late_events_and_retention(
    store: Store, events: list[Fed], late: list[Fed], zone: str
) -> None:
    guild = next(_guilds)
    store.set_timezone(guild, zone, utc(2026, 2, 1))  # no statistics yet: at once
    feed(store, guild, events)
    close_month(store, guild)
    assert every_report(store, guild, live=False) == every_report(store, guild, live=True)

    feed(store, guild, late, now_day=45)  # a late shard, an import: after anonymisation
    calendar = store.calendars.get(guild)
    if any(calendar.month_of(e.when) == MONTH for e in late):
        assert MONTH not in markers(store, guild)  # the stale snapshot is gone...
    live = every_report(store, guild, live=True)
    assert every_report(store, guild, live=False) == live  # ...so reports are live
    assert build_month_snapshots(store, guild, MONTH)
    assert every_report(store, guild, live=False) == live

    assert delete_member_rows(store, guild, MONTH, retention_months=3) is not None
    assert every_report(store, guild, live=False) == live  # from the snapshot alone
    feed(store, guild, late, now_day=200)  # past retention: discarded
    assert every_report(store, guild, live=False) == live


def test_a_snapshot_is_read_only_for_exactly_the_closed_month(store: Store) -> None:
    guild = next(_guilds)
    feed(store, guild, [Fed(utc(2026, 3, 2, 10), "msg", "900", "11", 1)])
    close_month(store, guild)
    span = month_of(store, guild)
    assert closed_month_of(span) == MONTH
    assert closed_month_of(DateRange(span.start, span.end - timedelta(days=1))) is None
    # Proof that the whole month reads the snapshot: rows deleted behind its back.
    with store.transaction() as conn:
        conn.exec_driver_sql(f"DELETE FROM activity WHERE guild_id = {guild}")
    assert compute_report(store, guild, "full", span).rows[0].messages == 1
    assert compute_live_report(store, guild, "full", span).rows[0].messages == 0


def test_a_build_overtaken_by_a_late_write_is_discarded(store: Store) -> None:
    guild = next(_guilds)
    feed(store, guild, [Fed(utc(2026, 3, 2, 10), "msg", "900", "11", 1)])
    store.anonymise_month(guild, MONTH)
    assert missing_snapshots(store) == [(guild, MONTH)]
    token = begin_build(store, guild, MONTH)
    assert token is not None
    feed(store, guild, [Fed(utc(2026, 3, 3, 10), "msg", "901", "11", 1)], now_day=40)
    assert not finish_build(store, guild, MONTH, token, {("full", "server"): "{}"})
    assert missing_snapshots(store) == [(guild, MONTH)]
    assert jobs.build_snapshots(store, missing_snapshots(store)) == [(guild, MONTH)]
    assert missing_snapshots(store) == []
    report = compute_report(store, guild, "full", month_of(store, guild))
    assert report.rows[0].messages == 2


def test_retention_waits_for_the_setting_and_refuses_ranges_inside_the_month(
    store: Store,
) -> None:
    guild = next(_guilds)
    feed(store, guild, [Fed(utc(2026, 3, 2, 10), "msg", "900", "11", 3)])
    close_month(store, guild)
    april = utc(2026, 4, 2)
    assert retention_due(store, april, default_months=0) == []  # the default keeps all
    assert retention_due(store, april, default_months=2) == []  # not yet two months after
    june = utc(2026, 6, 1)
    assert retention_due(store, june, default_months=2) == [(guild, MONTH, 2)]
    SettingsStore(store).set_single(guild, "retention_months", 0)  # this guild keeps all
    assert retention_due(store, june, default_months=2) == []
    SettingsStore(store).set_single(guild, "retention_months", 1)
    due = retention_due(store, utc(2026, 5, 1), default_months=0)
    assert due == [(guild, MONTH, 1)]
    assert jobs.retention(store, due) == [(guild, MONTH)]
    assert retention_due(store, june, default_months=2) == []
    # No member row, token or usage record of the month is left; the totals are.
    with store.engine.connect() as conn:
        members = conn.exec_driver_sql(
            f"SELECT count(*) FROM members WHERE guild_id = {guild}"
        ).scalar()
        member_rows = conn.exec_driver_sql(
            f"SELECT count(*) FROM activity WHERE guild_id = {guild} AND member_id <> 0"
        ).scalar()
    assert (members, member_rows) == (0, 0)
    span = month_of(store, guild)
    assert compute_report(store, guild, "full", span).rows[0].active_users == 1
    with pytest.raises(ReportError, match=r"retention_months = 1.*2026-04 on, the first month"):
        compute_report(store, guild, "hourly", DateRange(span.start, span.start + timedelta(7)))


def test_deleting_a_guild_deletes_its_snapshots(store: Store) -> None:
    guild = next(_guilds)
    feed(store, guild, [Fed(utc(2026, 3, 2, 10), "msg", "900", "11", 1)])
    close_month(store, guild)
    store.delete_guild(guild)
    assert markers(store, guild) == {}
    assert compute_report(store, guild, "full", month_of(store, guild)).rows[0].messages == 0


def test_an_interrupted_retention_is_listed_again_and_resumes(store: Store) -> None:
    from guildmeter.store.snapshots import month_snapshots

    guild = next(_guilds)
    feed(store, guild, [Fed(utc(2026, 3, 2, 10), "msg", "900", "11", 3)])
    close_month(store, guild)
    before = every_report(store, guild, live=True)
    with store.transaction() as conn:  # marked, as the first step does, then stopped
        conn.execute(
            month_snapshots.update()
            .where(month_snapshots.c.guild_id == guild)
            .values(members_deleted_at=utc(2026, 6, 1), retention_months=2)
        )
    assert retention_due(store, utc(2026, 6, 2), default_months=0) == [(guild, MONTH, 2)]
    result = delete_member_rows(store, guild, MONTH, retention_months=5)
    assert result is not None and result.retention_months == 2 and result.members_deleted == 1
    assert retention_due(store, utc(2026, 6, 2), default_months=0) == []
    assert every_report(store, guild, live=False) == before
