"""Joins and parts of hours run without Server Members: not collected, never a false 0."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from guildmeter.activity import ActivityStats
from guildmeter.export.csv_gz import write_report_csv
from guildmeter.export.json_out import report_json
from guildmeter.reports import DateRange, compute_report
from guildmeter.store import Store
from guildmeter.store.coverage import mark_uncollected
from guildmeter.timeutil import hour_index

GUILD = 77
MARCH = DateRange(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
MONDAY = datetime(2026, 3, 2, 10, tzinfo=UTC)  # with Server Members: joins counted
TUESDAY = datetime(2026, 3, 3, 10, tzinfo=UTC)  # without: an hour marked not collected


def _feed(store: Store) -> None:
    stats = ActivityStats(store)
    stats.collector.join(GUILD, 501, MONDAY)
    stats.collector.join(GUILD, 502, MONDAY)
    stats.collector.part(GUILD, 503, MONDAY)
    stats.collector.message(GUILD, 11, 501, TUESDAY)
    stats.collector.member_total(GUILD, 40, TUESDAY)
    assert stats.flush(TUESDAY + timedelta(hours=1)).error is None
    hours = [(GUILD, hour_index(TUESDAY)), (GUILD, hour_index(TUESDAY) + 1)]
    assert mark_uncollected(store, hours) == 2
    assert mark_uncollected(store, hours[:1]) == 1  # again: idempotent
    mark_uncollected(store, [(GUILD + 1, hour_index(MONDAY))])  # another guild's hour


def test_a_period_holding_an_uncollected_hour_has_no_joins_or_parts(store: Store) -> None:
    _feed(store)
    full = compute_report(store, GUILD, "full", MARCH).rows[0]
    assert (full.joins, full.parts) == (None, None)
    assert (full.messages, full.total_users) == (1, 40)  # the rest is unaffected
    monday_only = DateRange(MONDAY.replace(hour=0), TUESDAY.replace(hour=0))
    assert compute_report(store, GUILD, "full", monday_only).rows[0].joins == 2

    weekday = {row.case: row for row in compute_report(store, GUILD, "weekday", MARCH).rows}
    assert (weekday["Monday"].joins, weekday["Monday"].parts) == (2, 1)
    assert (weekday["Tuesday"].joins, weekday["Tuesday"].parts) == (None, None)
    assert weekday["Wednesday"].joins == 0  # no hour marked: collected, none happened
    hourly = compute_report(store, GUILD, "hourly", MARCH).rows
    assert [h.case for h in hourly if h.joins is None] == ["10", "11"]
    assert hourly[10].messages == 1


def test_a_deleted_guild_forgets_which_hours_were_not_collected(store: Store) -> None:
    _feed(store)
    store.delete_guild(GUILD)
    stats = ActivityStats(store)  # counted again, now with Server Members
    stats.collector.join(GUILD, 504, TUESDAY)
    assert stats.flush(TUESDAY + timedelta(hours=1)).error is None
    assert compute_report(store, GUILD, "full", MARCH).rows[0].joins == 1
    assert compute_report(store, GUILD + 1, "full", MARCH).rows[0].joins is None  # untouched


def test_json_says_null_and_csv_leaves_the_cells_empty(store: Store) -> None:
    _feed(store)
    report = compute_report(store, GUILD, "weekday", MARCH)
    rows = {row["case"]: row for row in json.loads(report_json(report))["rows"]}
    assert rows["Tuesday"]["joins"] is None and rows["Tuesday"]["parts"] is None
    assert rows["Monday"]["joins"] == 2
    assert set(rows["Tuesday"]) == set(rows["Monday"])  # the same keys: the contract holds
    buffer = io.BytesIO()
    write_report_csv(report, buffer)
    lines = gzip.decompress(buffer.getvalue()).decode("utf-8-sig").splitlines()
    tuesday = next(line for line in lines if line.startswith("Tuesday,"))
    assert tuesday.split(",")[4:6] == ["", ""]
    monday = next(line for line in lines if line.startswith("Monday,"))
    assert monday.split(",")[4:6] == ["2", "1"]


def test_the_text_report_shows_a_dash_and_says_why(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from guildmeter.cli import cli

    db = tmp_path / "uncollected.db"
    store = Store.open(str(db))
    _feed(store)
    store.close()
    result = CliRunner().invoke(
        cli, ["--db", str(db), "report", "full", "--guild", str(GUILD), "--range", "March 2026"]
    )
    assert result.exit_code == 0, result.output
    joins = next(line for line in result.output.splitlines() if line.startswith("Joins"))
    assert joins.split() == ["Joins", "—"]
    assert "—: not collected (the bot ran without the Server Members intent)" in result.output
    weekday = CliRunner().invoke(
        cli, ["--db", str(db), "report", "weekday", "--guild", str(GUILD), "--range", "March 2026"]
    )
    parts = next(line for line in weekday.output.splitlines() if line.startswith("Parts"))
    assert parts.split()[1:3] == ["1", "—"]  # Monday counted, Tuesday not collected
