"""The command line: help everywhere, the demo, export/report/import, clear errors."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from guildmeter.cli import cli
from guildmeter.demo import DEMO_GUILD_ID


def _commands(group: click.Group) -> list[list[str]]:
    found = [[]]
    for name, command in group.commands.items():
        found.append([name])
        if isinstance(command, click.Group):
            found += [[name, *sub] for sub in _commands(command) if sub]
    return found


@pytest.mark.parametrize("path", _commands(cli), ids=lambda p: " ".join(p) or "guildmeter")
def test_every_command_has_help(path: list[str]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    command = cli
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    assert command.help and len(command.help) > 30
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{' '.join(path)} {param.opts} has no help"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small demo run shared by the tests below (it plays about two months)."""
    folder = tmp_path_factory.mktemp("demo")
    db = folder / "demo.db"
    result = CliRunner().invoke(
        cli,
        ["--db", str(db), "demo", "--users", "30", "--messages-per-day", "200",
         "--chart", str(folder / "demo.png")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Anonymised" in result.output and "Messages/user" in result.output
    assert (folder / "demo.png").read_bytes().startswith(b"\x89PNG")
    return db


def test_the_demo_also_simulates_bot_usage(demo_db: Path) -> None:
    """Commands with latencies and failures, and generations: `stats` has data to show."""
    result = CliRunner().invoke(cli, ["--db", str(demo_db), "stats", "--days", "60"])
    assert result.exit_code == 0, result.output
    assert "No bot usage recorded" not in result.output
    assert "imagine" in result.output and "1024x1024" in result.output
    commands = re.search(r"Commands: ([\d,]+) \((\d+) failed\)", result.output)
    assert commands is not None, result.output
    assert int(commands[1].replace(",", "")) > 50


def test_the_demo_run_again_replaces_its_bot_usage(tmp_path: Path) -> None:
    """A second demo of the same guild replaces the first one's usage, as its counts."""
    db = tmp_path / "demo.db"
    run = ["--db", str(db), "demo", "--users", "10", "--messages-per-day", "20",
           "--chart", str(tmp_path / "demo.png")]  # fmt: skip
    said = []
    for _ in range(2):
        assert CliRunner().invoke(cli, run).exit_code == 0
        result = CliRunner().invoke(cli, ["--db", str(db), "stats", "--days", "60"])
        assert result.exit_code == 0, result.output
        said.append(re.search(r"Commands: ([\d,]+)", result.output))
    assert said[0] is not None and said[1] is not None and said[0][1] == said[1][1]


def test_stats_of_a_known_guild_without_usage_shows_zeros(tmp_path: Path) -> None:
    """Like `stats` of every guild: zeros and the same line, not an error."""
    from guildmeter.activity import ActivityStats
    from guildmeter.store import Store

    db = tmp_path / "quiet.db"
    stats = ActivityStats(Store.open(str(db)))
    when = datetime.now(UTC) - timedelta(hours=2)
    stats.collector.message(4242, 4243, 200_000_000_000_000_001, when)
    stats.close(when + timedelta(hours=1))
    stats.store.close()
    result = CliRunner().invoke(cli, ["--db", str(db), "stats", "--guild", "4242"])
    assert result.exit_code == 0, result.output
    assert "No bot usage recorded" in result.output


def test_success_lines_show_control_characters_instead_of_sending_them(
    demo_db: Path, tmp_path: Path
) -> None:
    target = tmp_path / "dump\x1b]0;owned\x07.csv.gz"
    result = CliRunner().invoke(cli, ["--db", str(demo_db), "export", "--guild",
                                      str(DEMO_GUILD_ID), "-o", str(target)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert target.exists()
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert result.output.startswith("Wrote "), result.output  # no progress bar's empty line
    assert "dump\\x1b]0;owned\\x07.csv.gz" in result.output


@pytest.mark.parametrize("command", [["report", "full"], ["report", "hourly"], ["settings"]])
def test_a_reader_that_stops_reading_ends_the_command_quietly(
    demo_db: Path, command: list[str]
) -> None:
    """``guildmeter report … | head -1``: exit 0, no error line, no traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "guildmeter", "--db", str(demo_db), *command,
         "--guild", str(DEMO_GUILD_ID)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before it writes anything: every write meets a closed pipe
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0, stderr
    assert stderr == ""


def test_demo_report_export_and_import_round_trip(demo_db: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--db", str(demo_db)]
    guild = str(DEMO_GUILD_ID)
    result = runner.invoke(cli, [*base, "report", "weekday", "--guild", guild, "--format", "json"])
    assert result.exit_code == 0, result.output
    weekday = json.loads(result.output)
    full = json.loads(
        runner.invoke(cli, [*base, "report", "full", "--guild", guild, "--format", "json"]).output
    )
    assert sum(r["messages"] for r in weekday["rows"]) == full["rows"][0]["messages"] > 0

    csv_path = tmp_path / "hourly.csv.gz"
    result = runner.invoke(
        cli, [*base, "report", "hourly", "--guild", guild, "--format", "csv", "-o", str(csv_path),
              "--chart", str(tmp_path / "c.png")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert gzip.decompress(csv_path.read_bytes()).decode("utf-8-sig").startswith("Case,Total users")
    assert (tmp_path / "c.png").stat().st_size > 10_000

    dump = tmp_path / "dump.csv.gz"
    result = runner.invoke(cli, [*base, "export", "--guild", guild, "-o", str(dump)])
    assert result.exit_code == 0 and "Wrote" in result.output
    result = runner.invoke(cli, [*base, "import-kaztron", "--guild", "5", str(dump)])
    assert result.exit_code == 0, result.output
    copy = json.loads(
        runner.invoke(cli, [*base, "report", "full", "--guild", "5", "--format", "json"]).output
    )
    assert copy["rows"] == full["rows"]
    again = runner.invoke(cli, [*base, "import-kaztron", "--guild", "5", str(dump)])
    assert "already imported" in again.output


def test_errors_are_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    env = dict(os.environ, GUILDMETER_DB=str(tmp_path / "x.db"))
    result = subprocess.run(
        [sys.executable, "-m", "guildmeter", "report", "full", "--guild", "1", "--range", "blurb"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("error: could not understand the date 'blurb'")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stdout + result.stderr


def test_bad_config_file_is_refused_with_the_key(tmp_path: Path) -> None:
    config = tmp_path / "g.toml"
    config.write_text("flush_intervall_seconds = 3\n")
    result = subprocess.run(
        [sys.executable, "-m", "guildmeter", "--config", str(config), "export", "--guild", "1"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown setting(s) flush_intervall_seconds" in result.stderr


def test_stats_summarises_bot_usage(tmp_path: Path) -> None:
    from guildmeter.activity import ActivityStats
    from guildmeter.store import Store

    db = tmp_path / "usage.db"
    stats = ActivityStats(Store.open(str(db)))
    for i in range(4):
        stats.usage.command("draw", guild_id=5, channel_id=1, user_id=10 + i, kind="slash",
                            duration_ms=100.0, ok=i != 0, error=None if i else "Boom")  # fmt: skip
    stats.usage.command("ping", guild_id=6, channel_id=1, user_id=10, kind="prefix",
                        duration_ms=1.0, ok=True)  # fmt: skip
    assert stats.flush().error is None
    stats.store.close()
    result = CliRunner().invoke(cli, ["--db", str(db), "stats", "--guild", "5", "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["commands_total"], summary["commands_failed"]) == (4, 1)
    assert summary["commands"][0]["command"] == "draw"
    assert summary["commands"][0]["failure_rate"] == 0.25
    assert summary["total_users"] == 4
    everywhere = CliRunner().invoke(
        cli, ["--db", str(db), "stats", "--chart", str(tmp_path / "u.png")]
    )
    assert everywhere.exit_code == 0, everywhere.output
    assert "ping" in everywhere.output and "draw" in everywhere.output
    assert (tmp_path / "u.png").read_bytes().startswith(b"\x89PNG")


HEAVY = ("discord", "matplotlib", "dateparser", "sqlalchemy", "rich.progress")


def _modules_loaded_by(args: list[str]) -> list[str]:
    code = (
        "import sys\nfrom guildmeter.cli import cli\n"
        f"try:\n    cli.main({args!r})\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"'))


def test_help_loads_no_heavy_library() -> None:
    assert _modules_loaded_by(["--help"]) == []
    assert _modules_loaded_by(["report", "--help"]) == []


def test_a_text_report_loads_only_the_database_layer(demo_db: Path) -> None:
    args = ["--db", str(demo_db), "report", "full", "--guild", str(DEMO_GUILD_ID)]
    assert _modules_loaded_by(args) == ["sqlalchemy"]


def test_the_demos_next_hint_runs_as_printed(tmp_path: Path) -> None:
    db = tmp_path / "hint.db"
    demo = subprocess.run(
        [sys.executable, "-m", "guildmeter", "--db", str(db), "demo", "--users", "10",
         "--messages-per-day", "20", "--chart", str(tmp_path / "d.png")],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    hint = demo.stdout.split("Next: ", 1)[1].splitlines()[0].strip()
    assert hint.endswith(f"report weekday --guild {DEMO_GUILD_ID}")
    followed = subprocess.run(hint, shell=True, capture_output=True, text=True, cwd=tmp_path)
    assert followed.returncode == 0, followed.stderr
    assert "Weekday report, all channels" in followed.stdout


def test_settings_prints_and_sets_the_timezone(tmp_path: Path) -> None:
    from guildmeter.activity import ActivityStats
    from guildmeter.store import Store

    db = tmp_path / "s.db"
    stats = ActivityStats(Store.open(str(db)))
    stats.collector.message(7, 70, 700, datetime(2026, 11, 3, tzinfo=UTC))
    # Guild 8: the bot has joined it (its member total is counted), no member counted yet.
    stats.collector.member_total(8, 40, datetime(2026, 11, 3, tzinfo=UTC))
    assert stats.flush(datetime(2026, 11, 3, 1, tzinfo=UTC)).error is None
    stats.store.close()
    runner = CliRunner()
    shown = runner.invoke(cli, ["--db", str(db), "settings", "--guild", "7"])
    assert shown.exit_code == 0, shown.output
    assert "Timezone: UTC" in shown.output and "Smallest public cell: 5" in shown.output
    changed = runner.invoke(
        cli, ["--db", str(db), "settings", "--guild", "7", "--timezone", "asia/kolkata"]
    )
    assert changed.exit_code == 0, changed.output
    assert "Statistics follow Asia/Kolkata from the start of the next month" in changed.output
    assert "; Asia/Kolkata from " in changed.output  # the pending change is listed
    fresh = runner.invoke(
        cli, ["--db", str(db), "settings", "--guild", "8", "--timezone", "America/St_Johns"]
    )
    assert "applies at once" in fresh.output
    assert "Timezone: America/St_Johns" in fresh.output


@pytest.mark.parametrize(
    "args",
    [
        ["settings", "--guild", "999", "--timezone", "UTC"],
        ["settings", "--guild", "999", "--retention-months", "3"],
        ["settings", "--guild", "999"],
        ["forget", "--user", "700", "--guild", "999"],
        ["forget", "--user", "700", "--guild", "999", "--dry-run"],
    ],
)
def test_a_guild_the_database_knows_nothing_about_is_refused_with_the_known_ones(
    tmp_path: Path, args: list[str]
) -> None:
    from guildmeter.activity import ActivityStats
    from guildmeter.store import Store
    from guildmeter.store.settings import SettingsStore

    db = tmp_path / "k.db"
    stats = ActivityStats(Store.open(str(db)))
    stats.collector.message(7, 70, 700, datetime(2026, 11, 3, tzinfo=UTC))
    assert stats.flush(datetime(2026, 11, 3, 1, tzinfo=UTC)).error is None
    SettingsStore(stats.store).set_single(9, "retention_months", 2)  # known by its settings
    stats.store.close()
    result = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: no statistics for guild 999 in {db}; guilds with statistics: 7\n"
    )
    store = Store.open(str(db))
    assert SettingsStore(store).read(999) == SettingsStore(store).read(123)  # nothing set
    assert store.calendars.get(999).is_utc
    store.close()
    known = CliRunner().invoke(cli, ["--db", str(db), "settings", "--guild", "9"])
    assert known.exit_code == 0 and "Guild 9" in known.output, known.output
