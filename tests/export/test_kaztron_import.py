from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import pytest

from guildmeter.activity import anonymise_finished_months
from guildmeter.events import EventKind
from guildmeter.export import ImportFormatError, import_files
from guildmeter.reports import DateRange, compute_report
from guildmeter.reports.snapshots import build_month_snapshots
from guildmeter.store import Store
from guildmeter.store.backfill import (
    GUILD_WIDE,
    backfill_cursors,
    claim_run,
    finish_run,
    live_starts,
    snowflake_at,
)
from guildmeter.store.overlap import BackfillUnfinished, import_hours, imported_hours
from guildmeter.store.retention import delete_member_rows

from tests.reports.reference import utc

GUILD = 61
HASH_A = "h$" + "a" * 64
HASH_B = "h$" + "b" * 64
MARCH = DateRange(utc(2018, 3, 1), utc(2018, 4, 1))


def hourly_file(path: Path, hours: list[list[str]]) -> Path:
    """KazTron's layout: one gzip member appended per hour, no header."""
    with path.open("wb") as handle:
        for lines in hours:
            handle.write(gzip.compress("".join(line + "\r\n" for line in lines).encode()))
    return path


def test_hourly_files_with_appended_members_are_imported(store: Store, tmp_path: Path) -> None:
    path = hourly_file(
        tmp_path / "2018-03-05.csv.gz",
        [
            [
                f"2018-03-05 10:00:00,msg,{HASH_A},#general,3",
                f"2018-03-05 10:00:00,msg,{HASH_B},#general,1",
                "2018-03-05 10:00:00,total_users,,,120",
            ],
            [
                f"2018-03-05 11:00:00,msg,{HASH_A},#art,2",
                f"2018-03-05 11:00:00,voice,{HASH_B},#Lounge,1800",
                f"2018-03-05 11:00:00,join,{HASH_B},,1",
                "2018-03-05 11:00:00,total_users,,,121",
            ],
        ],
    )
    progress: list[tuple[int, int]] = []
    result = import_files(store, GUILD, [path], progress=lambda d, t: progress.append((d, t)))
    assert result.rows == 7 and result.files_imported == [str(path)]
    assert progress[-1][0] == progress[-1][1] == path.stat().st_size
    full = compute_report(store, GUILD, "full", MARCH).rows[0]
    assert (full.messages, full.active_users, full.voice_users, full.joins) == (6, 2, 1, 1)
    assert full.total_users == 121
    assert full.messages_per_user_stdev == pytest.approx(((5 - 3) ** 2 * 2) ** 0.5)
    assert compute_report(store, GUILD, "full", MARCH, "art").rows[0].messages == 2


def test_hashes_keep_identity_within_their_month_and_tokens_stay(
    store: Store, tmp_path: Path
) -> None:
    token = "u201803$" + "c" * 32
    path = hourly_file(
        tmp_path / "dump.csv.gz",
        [
            [
                "Period,Event,User hash,Channel,Count",
                f"2018-03-05 10:00:00,msg,{HASH_A},#general,1",
                f"2018-03-20 10:00:00,msg,{HASH_A},#general,1",
                f"2018-04-02 10:00:00,msg,{HASH_A},#general,1",
                f"2018-03-06 10:00:00,msg,{token},#general,4",
            ]
        ],
    )
    import_files(store, GUILD, [path])
    assert compute_report(store, GUILD, "full", MARCH).rows[0].active_users == 2
    by_month = {m["month"]: m for m in store.month_summary(GUILD)}
    assert by_month[201803]["users"] == 2 and by_month[201804]["users"] == 1
    done = anonymise_finished_months(store, utc(2026, 1, 1))  # both months are long over
    assert {d.month for d in done} == {201803, 201804}
    labels = {k[3] for k in store.activity_totals(GUILD)}
    assert token in labels and not any(label.startswith("h$") for label in labels)
    assert compute_report(store, GUILD, "full", MARCH).rows[0].active_users == 2


def test_reimporting_the_same_file_does_not_double(store: Store, tmp_path: Path) -> None:
    path = hourly_file(
        tmp_path / "2018-03-05.csv.gz", [[f"2018-03-05 10:00:00,msg,{HASH_A},#general,3"]]
    )
    import_files(store, GUILD, [path])
    again = import_files(store, GUILD, [path])
    assert again.rows == 0 and [p for p, _ in again.files_skipped] == [str(path)]
    assert compute_report(store, GUILD, "full", MARCH).rows[0].messages == 3
    other_guild = import_files(store, GUILD + 1, [path])  # another guild is another import
    assert other_guild.rows == 1


def test_a_file_imported_into_a_deleted_guild_is_counted_again(
    store: Store, tmp_path: Path
) -> None:
    path = hourly_file(
        tmp_path / "2018-03-05.csv.gz", [[f"2018-03-05 10:00:00,msg,{HASH_A},#general,3"]]
    )
    import_files(store, GUILD, [path])
    store.delete_guild(GUILD)
    assert compute_report(store, GUILD, "full", MARCH).rows[0].messages == 0
    again = import_files(store, GUILD, [path])
    assert again.rows == 1 and again.files_skipped == []
    assert compute_report(store, GUILD, "full", MARCH).rows[0].messages == 3


def test_channels_by_name_land_on_known_channels(store: Store, tmp_path: Path) -> None:
    from guildmeter.activity import ActivityStats

    stats = ActivityStats(store)
    stats.collector.name_channel(GUILD, 555, "general")
    stats.flush(utc(2018, 3, 1))
    path = hourly_file(tmp_path / "f.csv.gz", [[f"2018-03-05 10:00:00,msg,{HASH_A},#general,3"]])
    import_files(store, GUILD, [path])
    assert {k[2] for k in store.activity_totals(GUILD)} == {555}


A = HASH_A


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"2018-03-05 10:00:00,msg,{A},#general", "expected 5 columns"),
        (f"yesterday,msg,{A},#general,1", "period 'yesterday' is not an ISO"),
        (f"2018-03-05 10:30:00,msg,{A},#general,1", "period .2018-03-05 10:30:00. is not"),
        (f"2018-03-05 10:00:00,reaction,{A},#general,1", "unknown event kind 'reaction'"),
        (f"2018-03-05 10:00:00,msg,{A},#general,lots", "count 'lots' is not a whole number"),
        (f"2018-03-05 10:00:00,msg,{A},#general,-2", "count -2 is negative"),
        (f"2018-03-05 10:00:00,msg,{A},#general,{2**63}", "count 9223372036854775808 does not fit"),
        ("2018-03-05 10:00:00,msg,,#general,1", "a msg event needs a user hash"),
        ("2018-03-05 10:00:00,msg,200000000000000005,#general,1", "the user hash is a plain"),
        ("2018-03-05 10:00:00,msg,h$200000000000000005,#a,1", "the user hash is a plain"),
        ("2018-03-05 10:00:00,msg,alice,#general,1", "user hash 'alice' is neither"),
        ("2018-03-05 10:00:00,join,12345678901234567,,1", "the user hash is a plain number"),
        (f"2018-03-05 10:00:00,msg,{A},general chat,1", "channel 'general chat' is neither"),
        (f"2018-03-05 10:00:00,msg,{A},{2**64},1", "channel id 18446744073709551616 does not fit"),
        (f"1999-10-07 10:00:00,msg,{A},#general,1", "period .1999-10-07 10:00:00. is before Dis"),
        (f"2035-10-07 10:00:00,msg,{A},#general,1", "period .2035-10-07 10:00:00. is in the fu"),
    ],
)
def test_a_malformed_row_names_file_and_line_and_nothing_is_imported(
    store: Store, tmp_path: Path, line: str, message: str
) -> None:
    good = hourly_file(tmp_path / "good.csv.gz", [[f"2018-03-05 09:00:00,msg,{HASH_A},#general,3"]])
    bad = hourly_file(
        tmp_path / "bad.csv.gz",
        [
            [f"2018-03-05 09:00:00,msg,{HASH_B},#general,1"],
            [f"2018-03-05 09:00:00,msg,{HASH_B},#x,1", line],
        ],
    )
    with pytest.raises(ImportFormatError, match=rf"bad\.csv\.gz, line 3: {message}") as caught:
        import_files(store, GUILD, [good, bad])
    assert "200000000000000005" not in str(caught.value)  # a raw id is never echoed
    assert store.activity_totals(GUILD) == {}
    assert import_files(store, GUILD, [good]).rows == 1  # the good file was not recorded either


def test_a_file_that_is_not_gzip_is_refused(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "notes.csv.gz"
    path.write_text("hello")
    with pytest.raises(ImportFormatError, match="not a readable gzip file"):
        import_files(store, GUILD, [path])


def test_a_large_import_in_many_chunks_counts_each_row_once(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("guildmeter.export.kaztron_import._CHUNK_ROWS", 3)
    lines = [
        f"2018-03-{day:02d} {hour:02d}:00:00,msg,h${user:064x},#general,{user + 1}"
        for day in range(1, 4)
        for hour in range(0, 24, 6)
        for user in range(3)
    ]
    path = hourly_file(tmp_path / "many.csv.gz", [lines])
    assert import_files(store, GUILD, [path]).rows == len(lines)
    full = compute_report(store, GUILD, "full", MARCH).rows[0]
    assert full.messages == sum(user + 1 for user in range(3)) * 12
    assert full.active_users == 3


def _retire(store: Store, guild: int, month: int, keep: int) -> None:
    """The month closed, its snapshot stored and its member rows deleted by retention."""
    store.anonymise_month(guild, month)
    assert build_month_snapshots(store, guild, month)
    assert delete_member_rows(store, guild, month, retention_months=keep) is not None


def test_rows_of_a_month_past_retention_are_counted_apart_and_said(
    store: Store, tmp_path: Path
) -> None:
    first = hourly_file(tmp_path / "2018-03-05.csv.gz", [[f"2018-03-05 10:00:00,msg,{HASH_A},,4"]])
    import_files(store, GUILD, [first])
    _retire(store, GUILD, 201803, keep=2)
    late = hourly_file(
        tmp_path / "late.csv.gz",
        [
            [
                f"2018-03-06 10:00:00,msg,{HASH_A},#general,3",
                f"2018-03-06 10:00:00,msg,{HASH_B},#general,1",
                "2018-03-06 10:00:00,total_users,,,120",
            ],
            [f"2018-04-02 11:00:00,msg,{HASH_A},#art,2", "2018-04-02 11:00:00,join,,,1"],
        ],
    )
    result = import_files(store, GUILD, [late])
    assert (result.rows, result.rows_discarded, result.rows_imported) == (5, 3, 2)
    assert result.past_retention is not None
    assert dict(result.past_retention.months) == {201803: 2}
    assert result.past_retention.first_held == 201804
    assert result.past_retention.describe() == (
        "2018-03 is past retention (retention_months = 2: member-level rows were deleted, "
        "reports are final); the first month still held is 2018-04"
    )
    april = DateRange(utc(2018, 4, 1), utc(2018, 5, 1))
    assert compute_report(store, GUILD, "full", april).rows[0].messages == 2
    assert compute_report(store, GUILD, "full", MARCH).rows[0].messages == 4  # unchanged


def test_the_cli_says_how_many_rows_were_imported_and_discarded(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from guildmeter.cli import cli

    db = tmp_path / "stats.db"
    store = Store.open(str(db))
    first = hourly_file(tmp_path / "2018-03-05.csv.gz", [[f"2018-03-05 10:00:00,msg,{HASH_A},,4"]])
    import_files(store, GUILD, [first])
    _retire(store, GUILD, 201803, keep=3)
    store.close()
    late = hourly_file(
        tmp_path / "late.csv.gz",
        [[f"2018-03-07 10:00:00,msg,{HASH_B},#general,1"], ["2018-04-01 00:00:00,join,,,1"]],
    )
    args = ["--db", str(db), "import-kaztron", "--guild", str(GUILD), str(late)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Imported 1 rows from 1 file(s) into guild 61 (2018-03-07 to 2018-04-01)." in (
        result.output
    )
    assert (
        "Discarded 1 of the 2 rows read: 2018-03 is past retention (retention_months = 3: "
        "member-level rows were deleted, reports are final); the first month still held is "
        "2018-04." in result.output.replace("\n", " ")
    )


def _backfilled(store: Store, guild: int, since: datetime, until: datetime) -> None:
    """What a finished backfill leaves: the live start, a channel cursor, the joins' one."""
    with store.transaction() as conn:
        conn.execute(
            live_starts.insert().values(
                guild_id=guild, channel_id=GUILD_WIDE, first_id=snowflake_at(until)
            )
        )
        conn.execute(
            backfill_cursors.insert(),
            [
                {"guild_id": guild, "channel_id": c, "covered_from": snowflake_at(since),
                 "updated_at": until}
                for c in (11, GUILD_WIDE)
            ],
        )  # fmt: skip


def test_messages_and_joins_of_hours_a_backfill_counted_are_skipped_and_said(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from guildmeter.cli import cli

    db = tmp_path / "stats.db"
    store = Store.open(str(db))
    _backfilled(store, GUILD, utc(2018, 3, 1, 0, 30), utc(2018, 3, 10, 12, 15))
    store.close()
    path = hourly_file(
        tmp_path / "2018-03-05.csv.gz",
        [
            [
                f"2018-03-01 00:00:00,msg,{HASH_A},#general,3",  # the backfill's first hour
                f"2018-03-05 10:00:00,msg,{HASH_A},#general,3",
                f"2018-03-05 10:00:00,join,{HASH_B},,1",
                f"2018-03-05 10:00:00,voice,{HASH_B},#Lounge,1800",
                "2018-03-05 10:00:00,total_users,,,120",
                f"2018-03-10 12:00:00,msg,{HASH_B},#art,4",  # its last hour
                f"2018-03-10 13:00:00,msg,{HASH_B},#art,5",  # live counting's
                f"2018-02-28 23:00:00,msg,{HASH_B},#art,2",
            ]
        ],
    )
    args = ["--db", str(db), "import-kaztron", "--guild", str(GUILD), str(path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    said = result.output.replace("\n", " ")
    assert "Imported 4 rows from 1 file(s)" in said
    assert (
        "Skipped 4 message and join rows of the hours from 2018-03-01 00:00 to 2018-03-10 "
        "13:00 UTC: the history backfill had counted them (their voice, parts and member "
        "totals were imported)." in said
    )
    store = Store.open(str(db))
    try:
        full = compute_report(store, GUILD, "full", MARCH).rows[0]
        assert (full.messages, full.joins, full.total_users) == (5, 0, 120)
        assert full.voice_man_hours == 0.5
        calendar = store.calendars.get(GUILD)
        february = calendar.bucket_of(utc(2018, 2, 28, 23))
        hours = imported_hours(store, GUILD, february - 100, february + 1000)
        assert hours == {int(EventKind.MSG): {february, february + 24 * 9 + 14},
                         int(EventKind.JOIN): set()}  # fmt: skip
    finally:
        store.close()


def test_an_import_while_a_backfill_is_unfinished_is_refused(store: Store, tmp_path: Path) -> None:
    assert claim_run(store, GUILD, "owner", target_id=snowflake_at(utc(2018, 3, 1)), days=30)
    path = hourly_file(tmp_path / "a.csv.gz", [[f"2018-03-05 10:00:00,msg,{HASH_A},#general,3"]])
    with pytest.raises(BackfillUnfinished, match=r"unfinished .* back to 2018-03-01 00:00 UTC"):
        import_files(store, GUILD, [path])
    assert store.activity_totals(GUILD) == {}
    finish_run(store, GUILD, "owner", "cancelled")
    assert import_files(store, GUILD, [path]).rows_imported == 1


def test_the_migration_records_the_hours_of_earlier_imports(store: Store, tmp_path: Path) -> None:
    from guildmeter.store.migrations import m0019_import_hours

    path = hourly_file(
        tmp_path / "a.csv.gz",
        [[f"2018-03-05 10:00:00,msg,{HASH_A},#general,3", "2018-03-05 11:00:00,join,,,1"]],
    )
    import_files(store, GUILD, [path])
    with store.transaction() as conn:
        import_hours.drop(conn)  # as before the upgrade
        m0019_import_hours.upgrade(conn)
    hour = store.calendars.get(GUILD).bucket_of(utc(2018, 3, 5, 10))
    assert imported_hours(store, GUILD, hour - 5, hour + 5) == {
        int(EventKind.MSG): {hour},
        int(EventKind.JOIN): {hour + 1},
    }


def test_an_empty_file_is_reported_and_not_recorded(store: Store, tmp_path: Path) -> None:
    """A 0-byte daily file (KazTron stopped before writing) is named, not 'imported'."""
    empty = tmp_path / "2018-03-06.csv.gz"
    empty.write_bytes(b"")
    good = hourly_file(tmp_path / "2018-03-05.csv.gz",
                       [[f"2018-03-05 10:00:00,msg,{HASH_A},#general,3"]])  # fmt: skip
    result = import_files(store, GUILD, [good, empty])
    assert result.files_empty == [str(empty)]
    assert result.files_imported == [str(good)] and result.rows == 1
    empty.write_bytes(gzip.compress(f"2018-03-06 10:00:00,msg,{HASH_A},#general,2\n".encode()))
    assert import_files(store, GUILD, [empty]).rows == 1  # written since: not "already imported"


def test_hours_counted_live_or_by_another_file_are_skipped_whole_and_said(
    tmp_path: Path,
) -> None:
    """KazTron and guildmeter ran side by side on 5 March 10:00: that hour is the live
    count's (every event of it), 11:00 is KazTron's; a second file repeating 11:00, in the
    same import or a later one, adds nothing."""
    from click.testing import CliRunner

    from guildmeter.activity import ActivityStats
    from guildmeter.cli import cli

    db = tmp_path / "stats.db"
    store = Store.open(str(db))
    stats = ActivityStats(store)
    stats.collector.message(GUILD, 11, 7, utc(2018, 3, 5, 10, 20))
    assert stats.flush(utc(2018, 3, 5, 10, 30)).error is None
    store.close()
    kaztron = hourly_file(
        tmp_path / "2018-03-05.csv.gz",
        [
            [
                f"2018-03-05 10:00:00,msg,{HASH_A},#general,3",
                f"2018-03-05 10:00:00,voice,{HASH_B},#Lounge,1800",
                "2018-03-05 10:00:00,total_users,,,120",
            ],
            [f"2018-03-05 11:00:00,msg,{HASH_A},#general,2", "2018-03-05 11:00:00,join,,,1"],
        ],
    )
    dump = hourly_file(  # a dump of the same hour, read after the day's file
        tmp_path / "zz-dump.csv.gz", [[f"2018-03-05 11:00:00,msg,{HASH_B},#general,9"]]
    )
    args = ["--db", str(db), "import-kaztron", "--guild", str(GUILD), str(kaztron), str(dump)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    said = result.output.replace("\n", " ")
    assert "Imported 2 rows from 2 file(s)" in said
    assert (
        "Skipped 4 rows of 2 hour(s) between 2018-03-05 10:00 and 2018-03-05 12:00 UTC: the "
        "database already held counts of those hours" in said
    )
    again = hourly_file(
        tmp_path / "2018-03-05-again.csv.gz", [[f"2018-03-05 11:00:00,msg,{HASH_B},,4"]]
    )
    store = Store.open(str(db))
    try:
        later = import_files(store, GUILD, [again])
        assert (later.rows, later.rows_held, later.rows_imported) == (1, 1, 0)
        full = compute_report(store, GUILD, "full", MARCH).rows[0]
        assert (full.messages, full.joins, full.voice_man_hours) == (1 + 2, 1, 0)
    finally:
        store.close()
