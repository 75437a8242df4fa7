"""A realistic KazTron ``userstats/`` folder, imported through the CLI, checked figure by figure.

The folder is what KazTron leaves on disk: one file per day, one gzip member appended per
hour, no header, CRLF rows; joins and parts recorded anonymously (empty user hash and
channel); channels it could no longer resolve written as their numeric id or empty; a
finished month already rewritten by its Anonymizer (``uYYYYMM$`` + 8 url-safe characters)
while the current month still holds ``h$`` + 64 hex hashes.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import random
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from guildmeter.cli import cli
from guildmeter.reports import DateRange, compute_report
from guildmeter.store import Store

from tests.reports.reference import Fed, reference_report, utc
from tests.reports.test_compute import assert_matches

GUILD = 4242
FEBRUARY = DateRange(utc(2018, 2, 1), utc(2018, 3, 1))
MARCH = DateRange(utc(2018, 3, 1), utc(2018, 4, 1))
CHANNELS = ["#general", "#art", "#Lounge", "#日本語", "307226871290732544", ""]


def kaztron_folder(folder: Path, seed: int = 7) -> list[Fed]:
    """Write February (anonymised) and the first half of March 2018; return what was written.

    ``Fed.user`` is the label exactly as written: the same label is the same user within
    its month, which is all the reference needs.
    """
    rng = random.Random(seed)
    folder.mkdir()
    users = list(range(60))
    tokens = {u: f"u201802${secrets.token_urlsafe(6)}" for u in users}
    hashes = {u: "h$" + hashlib.sha256(f"salt{u}".encode()).hexdigest() for u in users}
    events: list[Fed] = []
    day = utc(2018, 2, 1)
    while day < utc(2018, 3, 16):
        members: list[bytes] = []
        for hour in range(24):
            when = day + timedelta(hours=hour)
            rows: dict[tuple[str, str, str], int] = {}
            label = tokens if when.month == 2 else hashes
            for _ in range(rng.randrange(0, 12)):
                user = label[rng.choice(users)]
                channel = rng.choice(CHANNELS[:4] if rng.random() < 0.9 else CHANNELS[4:])
                rows[("msg", user, channel)] = rows.get(("msg", user, channel), 0) + 1
            for _ in range(rng.randrange(0, 3)):
                rows[("voice", label[rng.choice(users)], "#Lounge")] = rng.randrange(1, 3601)
            for event in ("join", "part"):
                if rng.random() < 0.2:
                    rows[(event, "", "")] = rng.randrange(1, 4)
            rows[("total_users", "", "")] = 500 + day.day + hour
            period = f"{when:%Y-%m-%d %H:%M:%S}"
            lines = "".join(f"{period},{e},{u},{c},{n}\r\n" for (e, u, c), n in rows.items())
            members.append(gzip.compress(lines.encode("utf-8")))
            for (event, user, channel), count in rows.items():
                events.append(Fed(when, event, user, channel.removeprefix("#"), count))
        (folder / f"{day:%Y-%m-%d}.csv.gz").write_bytes(b"".join(members))
        day += timedelta(days=1)
    (folder / "notes.txt").write_text("not a stats file: ignored")
    return events


def test_a_kaztron_folder_imports_and_every_figure_matches(tmp_path: Path) -> None:
    events = kaztron_folder(tmp_path / "userstats")
    db = tmp_path / "imported.db"
    result = CliRunner().invoke(
        cli, ["--db", str(db), "import-kaztron", "--guild", str(GUILD), str(tmp_path / "userstats")]
    )
    assert result.exit_code == 0, result.output + result.stderr
    assert "from 43 file(s) into guild 4242 (2018-02-01 to 2018-03-15)" in result.output
    store = Store.open(str(db))
    try:
        for span, kind, channel in itertools.product(
            (FEBRUARY, MARCH), ("full", "weekday", "hourly"), (None, "general", "日本語")
        ):
            report = compute_report(store, GUILD, kind, span, channel)  # type: ignore[arg-type]
            expected = reference_report(events, kind, span.start, span.end, channel)
            assert_matches(report.rows, expected)
        full = compute_report(store, GUILD, "full", FEBRUARY).rows[0]
        assert full.joins > 0 and full.parts > 0 and full.active_users > 30
    finally:
        store.close()


def test_reimporting_the_folder_adds_nothing(tmp_path: Path) -> None:
    kaztron_folder(tmp_path / "userstats", seed=3)
    base = ["--db", str(tmp_path / "x.db"), "import-kaztron", "--guild", "5"]
    runner = CliRunner()
    assert runner.invoke(cli, [*base, str(tmp_path / "userstats")]).exit_code == 0
    again = runner.invoke(cli, [*base, str(tmp_path / "userstats")])
    assert again.exit_code == 0 and "Imported 0 rows from 0 file(s)" in again.output
    assert again.output.count("already imported") == 43


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("2018-03-01 10:00:00,msg,200000000000000005,#general,1", "line 2: the user hash is a"),
        ("2018-03-01 10:00:00,msg,not-a-hash,#general,1", "line 2: user hash 'not-a-hash'"),
        ("2018-03-01 10:00:00,msg,h$" + "a" * 64 + ",#general,99999999999999999999", "64 bits"),
    ],
)
def test_a_bad_row_in_a_folder_names_its_file_and_line(
    tmp_path: Path, content: str, message: str
) -> None:
    folder = tmp_path / "userstats"
    folder.mkdir()
    good = "2018-03-01 09:00:00,join,,,1\r\n"
    (folder / "2018-03-01.csv.gz").write_bytes(gzip.compress(f"{good}{content}\r\n".encode()))
    db = tmp_path / "x.db"
    earlier = tmp_path / "2018-02-01.csv.gz"
    earlier.write_bytes(gzip.compress(b"2018-02-01 09:00:00,part,,,2\r\n"))
    runner = CliRunner()
    first = runner.invoke(cli, ["--db", str(db), "import-kaztron", "--guild", "5", str(earlier)])
    assert first.exit_code == 0, first.stderr
    result = runner.invoke(cli, ["--db", str(db), "import-kaztron", "--guild", "5", str(folder)])
    assert result.exit_code == 2
    assert "2018-03-01.csv.gz, line" in result.stderr and message in result.stderr
    assert "200000000000000005" not in result.output + result.stderr
    store = Store.open(str(db))
    hour = int(utc(2018, 2, 1, 9).timestamp() // 3600)
    assert store.activity_totals(5) == {(hour, 3, 0, ""): 2}  # one transaction: nothing kept
    store.close()
