"""KazTron import: hours the database holds already, or an earlier file of the same import
filled, are skipped whole; importing files together or one command each keeps the same."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guildmeter.activity import ActivityStats
from guildmeter.export import import_files
from guildmeter.reports import compute_report
from guildmeter.store import Store

from tests.export.test_kaztron_import import GUILD, HASH_A, HASH_B, MARCH, _backfilled, hourly_file
from tests.reports.reference import utc

_guilds = itertools.count(62_000)


def test_an_hour_whose_rows_the_backfill_had_counted_is_not_filled_by_that_file(
    store: Store, tmp_path: Path
) -> None:
    """The first file's only row of 5 March 10:00 is a message the backfill counted: it
    fills nothing, so the second file's voice of that hour is imported, as when the files
    are imported one command each."""
    _backfilled(store, GUILD, utc(2018, 3, 1, 0, 30), utc(2018, 3, 10, 12, 15))
    first = hourly_file(tmp_path / "a.csv.gz", [[f"2018-03-05 10:00:00,msg,{HASH_A},#general,3"]])
    second = hourly_file(
        tmp_path / "b.csv.gz",
        [[f"2018-03-05 10:00:00,voice,{HASH_B},#Lounge,1800",
          f"2018-03-05 10:00:00,msg,{HASH_A},#general,3"]],
    )  # fmt: skip
    result = import_files(store, GUILD, [first, second])
    assert (result.rows, result.rows_skipped, result.rows_held) == (3, 2, 0)
    assert result.rows_imported == 1
    assert result.held is None
    full = compute_report(store, GUILD, "full", MARCH).rows[0]
    assert (full.messages, full.voice_man_hours) == (0, 0.5)


def test_an_hour_skipped_in_several_files_counts_once(store: Store, tmp_path: Path) -> None:
    """Three files of 5 March 11:00, and 10:00 counted live: the second and third skip 11:00
    (the first filled it), every file skips 10:00: two hours skipped, not five."""
    stats = ActivityStats(store)
    stats.collector.message(GUILD, 11, 7, utc(2018, 3, 5, 10, 20))
    assert stats.flush(utc(2018, 3, 5, 10, 30)).error is None
    files = [
        hourly_file(
            tmp_path / f"{i}.csv.gz",
            [[f"2018-03-05 11:00:00,msg,{HASH_A},,{i + 1}"], ["2018-03-05 10:00:00,join,,,1"]],
        )
        for i in range(3)
    ]
    result = import_files(store, GUILD, files)
    assert (result.rows, result.rows_held, result.rows_imported) == (6, 5, 1)
    assert result.held_hours == 2
    assert result.held == (utc(2018, 3, 5, 10), utc(2018, 3, 5, 12))


def test_the_hours_skipped_are_said_in_utc_for_a_guild_on_another_clock(tmp_path: Path) -> None:
    """A guild on Los Angeles' clock: its first held hour, 1 March 02:00 UTC, is said as
    such (not as 28 February 18:00, its local time, followed by "UTC")."""
    from click.testing import CliRunner

    from guildmeter.cli import cli

    db = tmp_path / "stats.db"
    store = Store.open(str(db))
    store.set_timezone(GUILD, "America/Los_Angeles", utc(2018, 1, 1))
    stats = ActivityStats(store)
    stats.collector.message(GUILD, 11, 7, utc(2018, 3, 1, 2, 30))
    stats.collector.message(GUILD, 11, 7, utc(2018, 3, 6, 4, 30))
    assert stats.flush(utc(2018, 3, 6, 5)).error is None
    store.close()
    path = hourly_file(
        tmp_path / "a.csv.gz",
        [[f"2018-03-06 04:00:00,msg,{HASH_A},#general,3"],
         [f"2018-03-01 02:00:00,msg,{HASH_A},#general,3"]],
    )  # fmt: skip
    args = ["--db", str(db), "import-kaztron", "--guild", str(GUILD), str(path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (
        "Skipped 2 rows of 2 hour(s) between 2018-03-01 02:00 and 2018-03-06 05:00 UTC"
        in result.output.replace("\n", " ")
    )


_hours = [utc(2018, 3, 31, 22), utc(2018, 3, 31, 23), utc(2018, 4, 1, 0), utc(2018, 4, 1, 1)]
_rows = st.tuples(
    st.sampled_from(range(len(_hours))),
    st.sampled_from(["msg", "voice", "join", "total_users"]),
    st.sampled_from([HASH_A, HASH_B]),
    st.integers(1, 50),
)


def _line(row: tuple[int, str, str, int]) -> str:
    hour, event, user, count = row
    period = f"{_hours[hour]:%Y-%m-%d %H:00:00}"
    if event == "total_users":
        return f"{period},total_users,,,{count}"
    if event == "join":
        return f"{period},join,{user},,1"
    return f"{period},{event},{user},#general,{count}"


def _counts(store: Store, guild: int) -> Counter[tuple[int, int]]:
    """The guild's counts and rows per (hour, event); labels differ per guild (closed
    months are anonymised: every label a random token)."""
    found: Counter[tuple[int, int]] = Counter()
    for (hour, event, _, _), count in store.activity_totals(guild).items():
        found[(hour, event)] += count + 1_000_000
    return found


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    files=st.lists(st.lists(_rows, min_size=1, max_size=6), min_size=1, max_size=3),
    live=st.sets(st.sampled_from(range(len(_hours))), max_size=2),
    backfilled=st.booleans(),
)
def test_files_imported_together_count_as_imported_one_command_each(
    store: Store,
    tmp_path_factory: pytest.TempPathFactory,
    files: list[list[tuple[int, str, str, int]]],
    live: set[int],
    backfilled: bool,
) -> None:
    """Rows in any order, across a month's end, some hours counted live, a backfill's
    hours maybe: one import of every file keeps what one import per file keeps."""
    folder = tmp_path_factory.mktemp("held")
    paths = [hourly_file(folder / f"{i}.csv.gz", [[_line(r) for r in rows]])
             for i, rows in enumerate(files)]  # fmt: skip
    together, apart = next(_guilds), next(_guilds)
    for guild in (together, apart):
        if backfilled:  # messages and joins of 31 March 22:00 to 1 April 00:59 counted
            _backfilled(store, guild, utc(2018, 3, 31, 22, 10), utc(2018, 4, 1, 0, 40))
        stats = ActivityStats(store)
        for hour in live:
            stats.collector.message(guild, 11, 7, _hours[hour].replace(minute=50))
            stats.collector.member_total(guild, 99, _hours[hour].replace(minute=50))
        assert stats.flush(utc(2018, 4, 1, 2)).error is None
    one = import_files(store, together, paths)
    each = [import_files(store, apart, [path]) for path in paths]
    assert one.rows == sum(r.rows for r in each)
    assert one.rows_imported == sum(r.rows_imported for r in each)
    assert one.rows_held == sum(r.rows_held for r in each)
    assert one.rows_skipped == sum(r.rows_skipped for r in each)
    assert _counts(store, together) == _counts(store, apart)
