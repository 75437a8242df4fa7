"""Reports against an independent computation, and the invariants between report types."""

from __future__ import annotations

import gzip
import hashlib
import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guildmeter.activity import ActivityStats
from guildmeter.export import import_files
from guildmeter.reports import DateRange, compute_report, parse_daterange
from guildmeter.reports.compute import ReportError
from guildmeter.store import Store

from tests.reports.reference import Fed, reference_report, utc

MARCH = DateRange(utc(2026, 3, 1), utc(2026, 4, 1))
CHANNELS = {"general": 11, "art": 12, "Lounge 🎵": 21}
_guilds = itertools.count(50_000)

fed_events = st.lists(
    st.builds(
        Fed,
        when=st.integers(0, 31 * 24 * 3600 - 1).map(
            lambda s: utc(2026, 3, 1) + timedelta(seconds=s)
        ),
        event=st.sampled_from(["msg", "msg", "msg", "voice", "join", "part", "total_users"]),
        user=st.sampled_from([str(u) for u in range(900, 912)]),
        channel=st.sampled_from(list(CHANNELS)),
        count=st.integers(1, 4000),
    ),
    max_size=80,
)


def _normalise(e: Fed) -> Fed:
    if e.event == "msg":
        return Fed(e.when, e.event, e.user, e.channel, 1)
    if e.event in ("join", "part"):
        return Fed(e.when, e.event, e.user, "", 1)
    if e.event == "total_users":
        return Fed(e.when, e.event, "", "", e.count)
    return e


def feed(store: Store, guild: int, events: list[Fed]) -> None:
    stats = ActivityStats(store)
    for name, cid in CHANNELS.items():
        stats.collector.name_channel(guild, cid, name)
    for e in events:
        if e.event == "msg":
            stats.collector.message(guild, CHANNELS[e.channel], int(e.user), e.when)
        elif e.event == "voice":
            stats.collector.add("voice", guild, CHANNELS[e.channel], int(e.user), e.when, e.count)
        elif e.event == "join":
            stats.collector.join(guild, int(e.user), e.when)
        elif e.event == "part":
            stats.collector.part(guild, int(e.user), e.when)
        else:
            stats.collector.member_total(guild, e.count, e.when)
    assert stats.flush(utc(2026, 3, 15)).error is None


def write_kaztron_file(path: Path, events: list[Fed]) -> None:
    """KazTron's hourly file: no header, one gzip member appended per hour."""
    by_hour: dict[str, list[str]] = {}
    for e in events:
        period = e.when.replace(minute=0, second=0, microsecond=0, tzinfo=None).isoformat(" ")
        user = "h$" + hashlib.sha256(e.user.encode()).hexdigest() if e.user else ""
        channel = f"#{e.channel}" if e.channel else ""
        by_hour.setdefault(period, []).append(f"{period},{e.event},{user},{channel},{e.count}\r\n")
    with path.open("wb") as handle:
        for lines in by_hour.values():
            handle.write(gzip.compress("".join(lines).encode()))


def assert_matches(report_rows: list[object], expected: list[dict[str, object]]) -> None:
    assert len(report_rows) == len(expected)
    for row, want in zip(report_rows, expected, strict=True):
        for key, value in want.items():
            got = getattr(row, key)
            if isinstance(value, str):
                assert got == value
            else:
                assert got == pytest.approx(value, rel=1e-9, abs=1e-9), (want["case"], key)


KINDS = ["full", "weekday", "hourly"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=fed_events)
def test_reports_match_an_independent_computation(store: Store, events: list[Fed]) -> None:
    events = [_normalise(e) for e in events]
    guild = next(_guilds)
    feed(store, guild, events)
    for kind, channel in itertools.product(KINDS, [None, "general", "Lounge 🎵"]):
        report = compute_report(store, guild, kind, MARCH, channel)  # type: ignore[arg-type]
        assert_matches(report.rows, reference_report(events, kind, MARCH.start, MARCH.end, channel))


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=fed_events)
def test_reports_of_imported_kaztron_files_match(
    store: Store, tmp_path_factory: pytest.TempPathFactory, events: list[Fed]
) -> None:
    events = [_normalise(e) for e in events]
    path = tmp_path_factory.mktemp("kaztron") / "2026-03-01.csv.gz"
    write_kaztron_file(path, events)
    guild = next(_guilds)
    import_files(store, guild, [path])
    named = [None] + (["art"] if any(e.channel == "art" for e in events) else [])
    for kind, channel in itertools.product(KINDS, named):
        report = compute_report(store, guild, kind, MARCH, channel)  # type: ignore[arg-type]
        assert_matches(report.rows, reference_report(events, kind, MARCH.start, MARCH.end, channel))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=fed_events, channel=st.sampled_from([None, "general", "Lounge 🎵"]))
def test_weekday_and_hourly_rows_add_up_to_the_full_report(
    store: Store, events: list[Fed], channel: str | None
) -> None:
    guild = next(_guilds)
    feed(store, guild, [_normalise(e) for e in events])
    full = compute_report(store, guild, "full", MARCH, channel).rows[0]
    for kind in ("weekday", "hourly"):
        rows = compute_report(store, guild, kind, MARCH, channel).rows  # type: ignore[arg-type]
        for column in ("messages", "joins", "parts"):
            assert sum(getattr(r, column) for r in rows) == getattr(full, column)
        assert sum(r.voice_man_hours for r in rows) == pytest.approx(full.voice_man_hours)
        assert all(r.active_users <= full.active_users for r in rows)
        assert all(r.voice_users <= full.voice_users for r in rows)


def test_a_range_crossing_months_is_refused_with_the_reason(store: Store) -> None:
    with pytest.raises(ReportError, match=r"crosses a month boundary.*pseudonyms"):
        compute_report(store, 1, "full", parse_daterange("2026-03-25 to 2026-04-03"))


def test_unknown_channel_and_type_are_clear_errors(store: Store) -> None:
    feed(store, 7, [Fed(utc(2026, 3, 2, 10), "msg", "900", "general", 1)])
    with pytest.raises(ReportError, match=r"no channel named #nope.*#general"):
        compute_report(store, 7, "full", MARCH, "nope")
    with pytest.raises(ReportError, match="unknown report type 'daily'"):
        compute_report(store, 7, "daily", MARCH)  # type: ignore[arg-type]


def test_channel_names_match_with_or_without_hash_and_survive_renames(store: Store) -> None:
    feed(store, 8, [Fed(utc(2026, 3, 2, 10), "msg", "900", "general", 1)])
    stats = ActivityStats(store)
    stats.collector.name_channel(8, CHANNELS["general"], "chat")  # renamed
    stats.flush(utc(2026, 3, 15))
    assert compute_report(store, 8, "full", MARCH, "#chat").rows[0].messages == 1
    assert compute_report(store, 8, "full", MARCH, "CHAT").rows[0].messages == 1


def test_json_has_the_documented_shape(store: Store) -> None:
    feed(store, 9, [Fed(utc(2026, 3, 2, 10), "msg", "900", "general", 1)])
    data = compute_report(store, 9, "weekday", MARCH).to_json()
    assert data["report"] == "weekday" and data["guild_id"] == "9" and data["channel"] == "all"
    assert (
        data["start"] == "2026-03-01T00:00:00+00:00" and data["end"] == "2026-04-01T00:00:00+00:00"
    )
    assert [r["case"] for r in data["rows"]] == [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ]
    assert list(data["rows"][0]) == [
        "case", "total_users", "active_users", "voice_users", "joins", "parts", "messages",
        "messages_per_user", "messages_per_user_stdev", "voice_man_hours",
        "voice_hours_per_user", "voice_hours_per_user_stdev",
    ]  # fmt: skip
