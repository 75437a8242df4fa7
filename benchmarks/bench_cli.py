"""How fast the command line answers: ``guildmeter --help`` and a report on a small database.

Each figure is the best wall time of several fresh processes (a new interpreter each time,
as a person typing the command gets), so import cost is included. Baselines, same run:
``python -c pass`` (the interpreter alone) and ``python -c "import sqlalchemy"`` (the
floor under any command that reads the database).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from guildmeter.demo import DEMO_GUILD_ID

from _common import best_of, emit

RUNS = 7


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
        figures = {
            "cli_startup_s": _timed([*cli, "--help"], folder),
            "cli_startup_s_baseline": _timed([sys.executable, "-c", "pass"], folder),
            "cli_report_small_db_s": _timed(report, folder),
            "cli_report_small_db_s_baseline": _timed(
                [sys.executable, "-c", "import sqlalchemy"], folder
            ),
            "cli_version_s": _timed([*cli, "--version"], folder),
        }
    for key, value in figures.items():
        print(f"{key:>32}: {value:.3f}")
    emit(figures)


if __name__ == "__main__":
    main()
