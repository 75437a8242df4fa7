"""How fast the command line answers: ``guildmeter --help``, a report on a small database,
and ``import-kaztron`` of a KazTron ``userstats/`` folder.

Start-up figures are the best wall time of several fresh processes (a new interpreter each
time, as a person typing the command gets), so import cost is included. Baselines, same
run: ``python -c pass`` (the interpreter alone), ``python -c "import sqlalchemy"`` (the floor
under any command that reads the database), and for the import, reading the same files
with gzip and csv alone.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from guildmeter.demo import DEMO_GUILD_ID

from _common import best_of, emit

RUNS = 7
FOLDER_DAYS = 31
ROWS_PER_HOUR = 420  # messages of ~400 users over 30 channels, voice, joins, parts, total


def kaztron_folder(folder: Path) -> int:
    """A month of KazTron daily files (one gzip member per hour, anonymous joins/parts)."""
    rng = random.Random(1)
    users = ["h$" + hashlib.sha256(str(u).encode()).hexdigest() for u in range(3000)]
    channels = [f"#c{i}" for i in range(30)] + ["307226871290732544", ""]
    folder.mkdir()
    rows = 0
    for day in range(FOLDER_DAYS):
        start = datetime(2018, 3, 1) + timedelta(days=day)  # noqa: DTZ001 - KazTron's naive UTC
        members = []
        for hour in range(24):
            period = f"{start + timedelta(hours=hour):%Y-%m-%d %H:%M:%S}"
            counts: dict[tuple[str, str, str], int] = {}
            for _ in range(ROWS_PER_HOUR - 25):
                key = ("msg", rng.choice(users), rng.choice(channels))
                counts[key] = counts.get(key, 0) + 1
            for _ in range(20):
                counts[("voice", rng.choice(users), "#Lounge")] = rng.randrange(1, 3600)
            counts[("join", "", "")], counts[("part", "", "")] = 2, 1
            counts[("total_users", "", "")] = 5000
            lines = "".join(f"{period},{e},{u},{c},{n}\r\n" for (e, u, c), n in counts.items())
            members.append(gzip.compress(lines.encode()))
            rows += len(counts)
        (folder / f"{start:%Y-%m-%d}.csv.gz").write_bytes(b"".join(members))
    return rows


def read_only(folder: Path) -> float:
    """Baseline: decompress and split every row, nothing else."""
    start = time.perf_counter()
    for path in sorted(folder.glob("*.csv.gz")):
        with gzip.open(path, "rb") as handle:
            for _ in csv.reader(io.TextIOWrapper(handle, encoding="utf-8", newline="")):
                pass
    return time.perf_counter() - start


def _timed(args: list[str], cwd: Path) -> float:
    def run() -> None:
        subprocess.run(args, cwd=cwd, check=True, capture_output=True)

    run()  # warm the file cache and bytecode
    return best_of(RUNS, run)


def main() -> None:
    cli = [sys.executable, "-m", "guildmeter"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = str(folder / "small.db")
        subprocess.run(
            [*cli, "--db", db, "demo", "--users", "20", "--messages-per-day", "50",
             "--chart", str(folder / "demo.png")],
            check=True, capture_output=True,
        )  # fmt: skip
        report = [*cli, "--db", db, "report", "full", "--guild", str(DEMO_GUILD_ID)]
        figures: dict[str, float | int] = {
            "cli_startup_s": _timed([*cli, "--help"], folder),
            "cli_startup_s_baseline": _timed([sys.executable, "-c", "pass"], folder),
            "cli_report_small_db_s": _timed(report, folder),
            "cli_report_small_db_s_baseline": _timed(
                [sys.executable, "-c", "import sqlalchemy"], folder
            ),
            "cli_version_s": _timed([*cli, "--version"], folder),
        }
        rows = kaztron_folder(folder / "userstats")
        start = time.perf_counter()
        subprocess.run(
            [*cli, "--db", str(folder / "import.db"), "import-kaztron", "--guild", "7",
             str(folder / "userstats")],
            check=True, capture_output=True,
        )  # fmt: skip
        figures["import_kaztron_folder_s"] = time.perf_counter() - start
        figures["import_kaztron_folder_s_baseline"] = read_only(folder / "userstats")
        figures["import_kaztron_folder_rows"] = rows
        figures["import_kaztron_rows_per_s"] = rows / figures["import_kaztron_folder_s"]
    for key, value in figures.items():
        print(f"{key:>34}: {value:,.3f}" if isinstance(value, float) else f"{key:>34}: {value:,}")
    emit(figures)


if __name__ == "__main__":
    main()
