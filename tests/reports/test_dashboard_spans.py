"""The dashboard's weekly distinct users: the stored weeks of closed months equal the
hourly rows, a late write drops them, and a month whose day bits a fold or retention
deleted shows exact weeks (kept at the deletion) or says "not available" — never a wrong 0.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from guildmeter.activity import ActivityStats
from guildmeter.demo import simulate
from guildmeter.reports.dashboard import (
    UNAVAILABLE,
    Period,
    channel_table,
    dashboard_period,
    live_figures,
    series,
    tiles,
)
from guildmeter.reports.snapshots import build_month_snapshots
from guildmeter.store import Store, spans, summaries
from guildmeter.store.retention import delete_member_rows
from guildmeter.store.rights import collapse_if_aggregates_only
from guildmeter.store.settings import AGGREGATES_ONLY, SettingsStore
from guildmeter.store.spans import build_missing, missing_held, span_users

GUILD = 91
MARCH = 202603
START, END = datetime(2026, 2, 24, tzinfo=UTC), datetime(2026, 4, 3, tzinfo=UTC)
NOW = datetime(2026, 4, 20, tzinfo=UTC)
IN_MARCH = datetime(2026, 3, 18, 12, tzinfo=UTC)  # a Wednesday


def _simulated(store: Store, guild: int = GUILD) -> ActivityStats:
    stats = ActivityStats(store)
    simulate(stats, start=START, end=END, guild_id=guild, users=20, messages_per_day=120,
             text_channels=3, voice_channels=1, seed=7, flush_every_hours=24)  # fmt: skip
    return stats


def _year() -> Period:
    return dashboard_period("12m", now=NOW)


def _weekly(store: Store, guild: int, channel: int | None = None) -> list[int | None]:
    return [p.figures.active_users for p in series(store, guild, _year(), channel)]


def _live_weekly(store: Store, guild: int, channel: int | None = None) -> list[int]:
    """Distinct members per week counted over the hourly rows (pseudonyms differ per month:
    a week across two months counts a member once in each, as the dashboard says)."""
    year = _year()
    found = live_figures(store, guild, year.range, channel, "week")
    first = ((year.range.first_day - date(1970, 1, 1)).days + 3) // 7  # its Monday week
    points = len(series(store, guild, year, channel))
    return [int(found[w].active_users or 0) if w in found else 0
            for w in range(first, first + points)]  # fmt: skip


def _held_rows(store: Store, guild: int, month: int) -> int:
    table = span_users
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    table.c.guild_id == guild, table.c.month == month, table.c.source == 0
                )
            ).scalar()
            or 0
        )


def test_stored_weeks_equal_the_hourly_rows_and_a_late_write_drops_them(store: Store) -> None:
    _simulated(store)  # the simulation ends as the monthly job does: closed months stored
    assert _held_rows(store, GUILD, MARCH) > 0 and _held_rows(store, GUILD, 202602) > 0
    assert _held_rows(store, GUILD, 202604) == 0  # the month in progress is never stored
    channels = [None, *{r.channel_id for r in channel_table(store, GUILD, _year())}]
    for channel in channels:
        assert _weekly(store, GUILD, channel) == _live_weekly(store, GUILD, channel)
    late = ActivityStats(store)  # a late shard's flush into March (a new member)
    late.keyring.retire(GUILD, MARCH)
    late.collector.message(GUILD, 10, 99_999, IN_MARCH)
    assert late.flush(NOW).error is None
    assert _held_rows(store, GUILD, MARCH) == 0  # dropped in the write's transaction
    with store.engine.connect() as conn:
        assert (GUILD, MARCH) in missing_held(conn, store.calendars, NOW)
    assert _weekly(store, GUILD) == _live_weekly(store, GUILD)  # counted live meanwhile
    assert (GUILD, MARCH) in build_missing(store, NOW)
    assert _weekly(store, GUILD) == _live_weekly(store, GUILD)


def test_a_build_that_races_a_late_write_stores_nothing_and_the_next_one_is_exact(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build counts without the writers' turn: a write landing meanwhile drops its
    claim, so what it counted (the bits before that write) is never stored."""
    stats = ActivityStats(store)
    for user in range(5):
        stats.collector.message(GUILD, 10 + user % 2, 500 + user, IN_MARCH + timedelta(days=user))
    assert stats.flush(IN_MARCH + timedelta(days=8)).error is None
    assert stats.flush(NOW).error is None  # March closes (anonymised)
    count = spans._month_rows

    def a_late_write_lands_while_counting(*args: object) -> object:
        found = count(*args)  # type: ignore[arg-type]
        late = ActivityStats(store)  # another process's flush into March (a new member)
        late.keyring.retire(GUILD, MARCH)
        late.collector.message(GUILD, 10, 99_999, IN_MARCH)
        assert late.flush(NOW).error is None
        return found

    monkeypatch.setattr(spans, "_month_rows", a_late_write_lands_while_counting)
    assert build_missing(store, NOW) == []  # counted, then discarded
    assert _held_rows(store, GUILD, MARCH) == 0
    with store.engine.connect() as conn:
        assert (GUILD, MARCH) in missing_held(conn, store.calendars, NOW)
        claims = select(func.count()).where(span_users.c.source == spans.BUILDING)
        assert conn.execute(claims).scalar() == 0
    monkeypatch.setattr(spans, "_month_rows", count)
    assert (GUILD, MARCH) in build_missing(store, NOW)
    assert _weekly(store, GUILD) == _live_weekly(store, GUILD)  # the late member counted


def test_a_database_lost_while_counting_postpones_the_build_and_its_claim_hides_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count runs in a transaction of its own: a lost connection there is "postponed"
    (`StoreUnavailableError`), as in the claim and the store, not an error out of
    `build_missing` (the monthly job then skipped retention). The claim left behind is
    never read as counts, and the next build replaces it; deleting the guild removes it."""
    from sqlalchemy.exc import OperationalError

    stats = ActivityStats(store)
    for user in range(5):
        stats.collector.message(GUILD, 10 + user % 2, 500 + user, IN_MARCH + timedelta(days=user))
    assert stats.flush(NOW).error is None  # March closes (anonymised)
    count = spans._month_rows

    def the_connection_is_lost(*args: object) -> object:
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(spans, "_month_rows", the_connection_is_lost)
    assert build_missing(store, NOW) == []
    claims = select(func.count()).where(span_users.c.source == spans.BUILDING)
    with store.engine.connect() as conn:
        assert conn.execute(claims).scalar() == 1  # left behind, harmless:
        assert (GUILD, MARCH) in missing_held(conn, store.calendars, NOW)
    assert _weekly(store, GUILD) == _live_weekly(store, GUILD)
    monkeypatch.setattr(spans, "_month_rows", count)
    assert (GUILD, MARCH) in build_missing(store, NOW)
    with store.engine.connect() as conn:
        assert conn.execute(claims).scalar() == 0
    assert _weekly(store, GUILD) == _live_weekly(store, GUILD)
    with store.transaction() as conn:  # the cache gone (a change of bits): built again
        spans.forget_held(conn, [(GUILD, MARCH)])
    monkeypatch.setattr(spans, "_month_rows", the_connection_is_lost)
    assert build_missing(store, NOW) == []
    store.delete_guild(GUILD)
    with store.engine.connect() as conn:
        assert conn.execute(claims).scalar() == 0


@pytest.mark.parametrize("deletion", ["fold", "retention"])
def test_weeks_of_a_month_whose_day_bits_were_deleted(store: Store, deletion: str) -> None:
    _simulated(store)
    before = _weekly(store, GUILD)
    march = dashboard_period("month", month="2026-03", now=NOW)
    inside = dashboard_period("custom", start="2026-03-05", end="2026-03-12", now=NOW)
    month_users = {t.key: t.value for t in tiles(store, GUILD, march)}["active_users"]
    days = [p.figures.active_users for p in series(store, GUILD, inside)]
    # A rolling period: a suffix of March and a prefix of April (stored spans).
    rolling = dashboard_period("30d", now=datetime(2026, 4, 2, tzinfo=UTC))
    rolling_users = {t.key: t.value for t in tiles(store, GUILD, rolling)}["active_users"]
    by_channel = {r.channel_id: r.active_users for r in channel_table(store, GUILD, rolling)}
    if deletion == "fold":
        SettingsStore(store).set_single(GUILD, "anonymised_rows", AGGREGATES_ONLY)
        with store.transaction() as conn:
            collapse_if_aggregates_only(
                conn, GUILD, MARCH, store.calendars.get(GUILD), drop_day_bits=True
            )
    else:
        store.anonymise_month(GUILD, MARCH)
        assert build_month_snapshots(store, GUILD, MARCH)
        assert delete_member_rows(store, GUILD, MARCH, retention_months=1) is not None
    assert _weekly(store, GUILD) == before  # the weeks were kept when the bits went
    assert {t.key: t.value for t in tiles(store, GUILD, march)}["active_users"] == month_users
    assert [p.figures.active_users for p in series(store, GUILD, inside)] == days  # days
    assert {t.key: t.value for t in tiles(store, GUILD, rolling)}["active_users"] == rolling_users
    assert {r.channel_id: r.active_users for r in channel_table(store, GUILD, rolling)} == (
        by_channel
    )
    # A span inside the month that is not whole weeks: honestly not available.
    shown = {t.key: t for t in tiles(store, GUILD, inside)}["active_users"]
    assert shown.value is None and shown.note == UNAVAILABLE
    assert shown.to_json()["note"] == UNAVAILABLE
    public = {t.key: t for t in tiles(store, GUILD, inside, min_cell_users=3)}
    assert not public["messages"].hidden  # every day had more than 3: safe to show
    rows = [r for r in channel_table(store, GUILD, inside) if r.messages]
    assert rows and all(r.active_users is None for r in rows)  # a voice channel: 0, exact
    assert all(r.to_json()["unavailable"] == ["active_users"] for r in rows)
    if deletion == "fold":  # a late token of the folded month: one more on its week
        late = ActivityStats(store)
        late.keyring.retire(GUILD, MARCH)
        late.collector.message(GUILD, 10, 99_999, IN_MARCH)
        assert late.flush(NOW).error is None
        starts = [p.start for p in series(store, GUILD, _year())]
        week = starts.index(datetime(2026, 3, 16, tzinfo=UTC))  # IN_MARCH's Monday
        after = _weekly(store, GUILD)
        assert after[week] == before[week] + 1  # type: ignore[operator]
        assert [a for i, a in enumerate(after) if i != week] == [
            b for i, b in enumerate(before) if i != week
        ]


def test_weeks_of_bits_deleted_before_they_were_kept_are_not_available(store: Store) -> None:
    _simulated(store)
    before = _weekly(store, GUILD)
    with store.transaction() as conn:  # what a fold did before weekly counts were kept
        summaries.drop_member_days(conn, GUILD, MARCH)
        conn.execute(span_users.delete().where(span_users.c.month == MARCH))
    march = dashboard_period("month", month="2026-03", now=NOW)
    assert {t.key: t.value for t in tiles(store, GUILD, march)}["active_users"] > 0
    points = series(store, GUILD, _year())
    weekly = [p.figures.active_users for p in points]
    touches_march = [
        i for i, p in enumerate(points)
        if datetime(2026, 2, 23, tzinfo=UTC) <= p.start < datetime(2026, 4, 1, tzinfo=UTC)
    ]  # fmt: skip
    assert touches_march and all(weekly[i] is None for i in touches_march)
    assert all(points[i].to_json()["unavailable"] == ["active_users"] for i in touches_march)
    assert [w for i, w in enumerate(weekly) if i not in touches_march] == [
        b for i, b in enumerate(before) if i not in touches_march
    ]
    year = {t.key: t for t in tiles(store, GUILD, _year())}["active_users"]
    assert year.value is not None  # whole months: March's own count


def test_the_33rd_day_of_a_month_whose_zone_goes_from_plus_14_to_minus_12(store: Store) -> None:
    """July on Kiritimati's clock (+14:00) ends at midnight of 1 August on -12:00: 33 local
    days. A member active only on the 33rd is in its last days, never in its first 32."""
    guild, july = 95, 202607
    store.set_timezone(guild, "Pacific/Kiritimati", datetime(2026, 6, 1, tzinfo=UTC))
    stats = ActivityStats(store)
    stats.collector.message(guild, 10, 1, datetime(2026, 7, 10, tzinfo=UTC))
    assert stats.flush(datetime(2026, 7, 10, 1, tzinfo=UTC)).error is None
    store.set_timezone(guild, "Etc/GMT+12", datetime(2026, 7, 10, 2, tzinfo=UTC))  # August on
    calendar = store.calendars.get(guild)
    first, end = spans.month_span(calendar, july)
    assert end - first == 33
    late = datetime(2026, 8, 1, 11, tzinfo=UTC)  # 2 August 01:00 on +14, still July
    assert calendar.month_of_bucket(calendar.bucket_of_s(int(late.timestamp()))) == july
    stats.collector.message(guild, 10, 2, late)
    assert stats.flush(late).error is None
    now = datetime(2026, 9, 20, tzinfo=UTC)
    assert stats.flush(now).error is None  # July and August close
    assert (guild, july) in build_missing(store, now)
    wanted = sorted(spans.stored_spans(calendar, july))
    with store.engine.connect() as conn:
        stored = spans.read_spans(conn, guild, [july], wanted, None)
        counted = spans.count_spans(conn, guild, calendar, july, wanted, "1 = 1", {})
    held = {(c, span): n for (_m, source, c, span), n in stored.items() if source == spans.HELD}
    assert held == counted
    assert held[(10, (first, first + 32))] == (1, 0)  # the first 32 days: member 1 only
    assert held[(10, (first + 32, end))] == (1, 0)  # the 33rd: member 2 only
