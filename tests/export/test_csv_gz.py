from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

from guildmeter.activity import ActivityStats
from guildmeter.export import DUMP_HEADER, NOT_ANONYMISED_WARNING, import_files, write_dump
from guildmeter.export.csv_gz import write_report_csv
from guildmeter.reports import DateRange, compute_report
from guildmeter.store import Store

from tests.helpers import shape
from tests.reports.reference import utc

GUILD = 31


def _feed(store: Store) -> ActivityStats:
    stats = ActivityStats(store)
    stats.collector.name_channel(GUILD, 11, "général 💬")
    stats.collector.name_channel(GUILD, 12, "日本語")
    stats.collector.name_channel(GUILD, 21, "Lounge")
    for day in (3, 4):
        for user in range(5):
            stats.collector.message(GUILD, 11 + user % 2, 7000 + user, utc(2026, 3, day, 10 + user))
        stats.voice.update(GUILD, 7000, 21, utc(2026, 3, day, 20, 30))
        stats.voice.update(GUILD, 7000, None, utc(2026, 3, day, 21, 15))
        stats.collector.join(GUILD, 7100 + day, utc(2026, 3, day, 9))
        stats.collector.member_total(GUILD, 40 + day, utc(2026, 3, day, 23))
    stats.collector.message(GUILD, 99, 7000, utc(2026, 3, 4, 1))  # a channel we never named
    stats.flush(utc(2026, 3, 5))
    return stats


def _rows(data: bytes) -> list[list[str]]:
    text = gzip.decompress(data).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_dump_is_excel_friendly_gzip_csv_with_the_seed_columns(store: Store) -> None:
    _feed(store)
    buffer = io.BytesIO()
    result = write_dump(store, GUILD, DateRange(utc(2026, 3, 1), utc(2026, 3, 10)), buffer)
    raw = gzip.decompress(buffer.getvalue())
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # BOM and CRLF: Excel reads UTF-8
    rows = _rows(buffer.getvalue())
    assert tuple(rows[0]) == DUMP_HEADER
    assert len(rows) - 1 == result.rows
    periods = [r[0] for r in rows[1:]]
    assert periods == sorted(periods) and periods[0] == "2026-03-03 09:00:00"
    assert {r[1] for r in rows[1:]} == {"msg", "join", "voice", "total_users"}
    assert {r[3] for r in rows[1:]} == {"#général 💬", "#日本語", "#Lounge", "", "#99"}
    assert {r[2] for r in rows[1:] if r[1] == "total_users"} == {""}
    assert sum(int(r[4]) for r in rows[1:] if r[1] == "voice") == 2 * 45 * 60


def test_dump_of_a_month_in_progress_carries_the_warning(store: Store) -> None:
    stats = _feed(store)
    buffer = io.BytesIO()
    live = write_dump(store, GUILD, DateRange(utc(2026, 3, 1), utc(2026, 4, 1)), buffer)
    assert live.warning is not None and NOT_ANONYMISED_WARNING in live.warning
    assert "2026-03" in live.warning
    stats.flush(utc(2026, 4, 1, 0, 5))  # March ends and is anonymised
    done = write_dump(store, GUILD, DateRange(utc(2026, 3, 1), utc(2026, 4, 1)), io.BytesIO())
    assert done.warning is None


def test_export_then_import_keeps_every_count(store: Store, tmp_path: Path) -> None:
    _feed(store)
    path = tmp_path / "dump.csv.gz"
    with path.open("wb") as handle:
        write_dump(store, GUILD, DateRange(utc(2026, 3, 1), utc(2026, 4, 1)), handle)
    result = import_files(store, GUILD + 1, [path])
    assert result.rows > 0
    original = store.activity_totals(GUILD)
    copy = store.activity_totals(GUILD + 1)
    assert shape(copy) == shape(_by_name(store, GUILD, original, GUILD + 1))
    month = DateRange(utc(2026, 3, 1), utc(2026, 4, 1))
    assert compute_report(store, GUILD + 1, "full", month) == _regild(
        compute_report(store, GUILD, "full", month), GUILD + 1
    )


def _by_name(store: Store, guild: int, totals: dict, other: int) -> dict:  # type: ignore[type-arg]
    """Original totals with channel ids swapped for the ids the import gave those names."""
    names = store.channel_names(guild)
    by_name = {name: cid for cid, name in store.channel_names(other).items()}
    return {
        (hour, event, by_name.get(names.get(channel, str(channel)), channel), label): count
        for (hour, event, channel, label), count in totals.items()
    }


def _regild(report: object, guild: int) -> object:
    from dataclasses import replace

    return replace(report, guild_id=guild)  # type: ignore[type-var]


def test_report_csv_has_the_seed_columns_case_first(store: Store) -> None:
    _feed(store)
    buffer = io.BytesIO()
    report = compute_report(store, GUILD, "hourly", DateRange(utc(2026, 3, 1), utc(2026, 4, 1)))
    write_report_csv(report, buffer)
    rows = _rows(buffer.getvalue())
    assert rows[0] == [
        "Case", "Total users", "Active users", "Voice users", "Joins", "Parts", "Messages",
        "Messages/user", "(stdev)", "Voice man-hours", "Voice hours/user", "(stdev)",
    ]  # fmt: skip
    assert [r[0] for r in rows[1:]] == [str(h) for h in range(24)]
    assert sum(int(r[6]) for r in rows[1:]) == 11
