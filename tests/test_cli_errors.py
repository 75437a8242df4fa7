"""Every input answered: exit 0, or one line on stderr and exit 2 — never a traceback.

A table of the inputs a tester found wrong, then a property test that drives every command
with generated arguments, databases and files.
"""

from __future__ import annotations

import gzip
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from guildmeter.activity import ActivityStats
from guildmeter.cli import cli
from guildmeter.store import Store
from guildmeter.timeutil import add_months, month_of, month_start, utcnow

GUILD = 987654321
HASH = "h$" + "b" * 64


@pytest.fixture(scope="module")
def stats_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small database: a guild with messages, a join and member totals last month."""
    db = tmp_path_factory.mktemp("cli") / "stats.db"
    stats = ActivityStats(Store.open(str(db)))
    day = month_start(add_months(month_of(utcnow()), -1)).replace(day=10, hour=12)
    stats.collector.name_channel(GUILD, 11, "general")
    stats.collector.name_channel(GUILD, 12, "art")
    for user in range(8):
        stats.collector.message(GUILD, 11 + user % 2, 500 + user, day)
    stats.collector.join(GUILD, 500, day)
    stats.collector.member_total(GUILD, 40, day)
    assert stats.flush(utcnow()).error is None
    stats.store.close()
    return db


@pytest.fixture(autouse=True)
def _restore_discord_endpoints() -> Iterator[None]:
    """`run` points discord.py at a closed port; other tests must not inherit it."""
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    base, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    yield
    Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, args, env={"DISCORD_TOKEN": "", **(env or {})})


def assert_one_line_refusal(result: Result) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr


def _foreign_sqlite(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    return path


def _corrupt_sqlite(path: Path) -> Path:
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 2000)
    return path


def _raw_id_import(path: Path) -> Path:
    path.write_bytes(gzip.compress(b"2018-03-01 10:00:00,msg,200000000000000005,#general,1\r\n"))
    return path


REPORT = ["report", "weekday", "--guild", str(GUILD)]
CASES: list[tuple[str, list[str], str]] = [
    ("ambiguous date", [*REPORT, "--range", "10/12/2026"], "is ambiguous"),
    ("swapped ambiguous", [*REPORT, "--range", "12/10/2026"], "is ambiguous"),
    ("future", [*REPORT, "--range", "tomorrow"], "is in the future"),
    ("before discord", [*REPORT, "--range", "1999-01-01"], "starts before Discord existed"),
    ("year 9999", [*REPORT, "--range", "9999-12-31"], "outside the dates kept"),
    ("no data there", [*REPORT, "--range", "2016-05"], "no statistics for guild 987654321"),
    ("unknown guild", ["report", "full", "--guild", "5"], "guilds with statistics: 987654321"),
    ("unknown guild export", ["export", "--guild", "5"], "guilds with statistics"),
    ("guild above 2^63", ["report", "full", "--guild", str(2**63)], "out of range"),
    ("negative guild", ["export", "--guild", "-3"], "is not a Discord id"),
    ("users above 2^63", ["demo", "--users", str(2**64)], "is not in the range"),
    ("unknown channel", [*REPORT, "--channel", "nowhere"], "no channel named #nowhere"),
    ("month-crossing", [*REPORT, "--range", "2020-01-20 to 2020-02-10"], "crosses a month"),
    ("bad format", [*REPORT, "--format", "xml"], "Invalid value for '--format'"),
    ("run without token", ["run"], "set DISCORD_TOKEN"),
    ("stats of an unknown guild", ["stats", "--guild", "5"], "no statistics for guild 5"),
    ("serve on no port", ["serve", "--port", "70000"], "is not in the range"),
    ("a chart not named .png", [*REPORT, "--chart", "chart.txt"], "a chart is a PNG image"),
    (
        "a file URL as the API",
        ["run", "--api-base", "file:///etc/passwd"],
        "--api-base: must start with http:// or https://",
    ),
    ("an http gateway", ["run", "--gateway", "http://127.0.0.1:1"], "must start with ws://"),
    ("serve a bare host", ["serve", "--public-url", "stats.example.org"], "must start with http"),
    (
        "unknown timezone",
        ["settings", "--guild", str(GUILD), "--timezone", "Asia/Kolkatta"],
        "unknown timezone 'Asia/Kolkatta' — did you mean Asia/Kolkata",
    ),
    ("settings without a guild", ["settings"], "Missing option '--guild'"),
    ("bare time", [*REPORT, "--range", "00:00"], "'00:00' is a time of day, not a date"),
    ("no such ISO week", [*REPORT, "--range", "2025-W53"], "2025 has ISO weeks 1 to 52"),
    ("export to stdout", ["export", "--guild", str(GUILD), "-o", "-"], "standard output ('-')"),
    ("report to stdout", [*REPORT, "--format", "csv", "-o", "-"], "standard output ('-')"),
    ("chart to stdout", [*REPORT, "--chart", "-"], "standard output ('-')"),
]

LONG = "x" * 400
LONG_INPUTS: list[list[str]] = [
    [*REPORT, "--range", "2018-01-01 to " + "z" * 180],
    [*REPORT, "--format", LONG],
    ["stats", "--days", "9" * 400],
    ["stats", "--guild", "7" * 400],
    [*REPORT, "--channel", LONG],
    ["settings", "--guild", str(GUILD), "--timezone", LONG],
    [LONG],
]


@pytest.mark.parametrize(("name", "args", "message"), CASES, ids=[c[0] for c in CASES])
def test_known_bad_inputs_get_one_line_and_exit_2(
    stats_db: Path, name: str, args: list[str], message: str
) -> None:
    result = invoke(["--db", str(stats_db), *args])
    assert_one_line_refusal(result)
    assert message in result.stderr


@pytest.mark.parametrize("args", LONG_INPUTS, ids=range(len(LONG_INPUTS)))
def test_errors_echo_at_most_sixty_characters_of_a_long_input(
    stats_db: Path, args: list[str]
) -> None:
    result = invoke(["--db", str(stats_db), *args])
    assert result.exit_code == 2 and "Traceback" not in result.output + result.stderr
    assert result.stderr.lower().startswith("error: ")
    assert max(len(word) for word in result.stderr.split()) <= 64, result.stderr
    assert len(result.stderr) < 400, result.stderr


def test_a_range_given_end_first_is_used_the_right_way_and_said(stats_db: Path) -> None:
    day = month_start(add_months(month_of(utcnow()), -1)).replace(day=10)
    following = day + timedelta(days=1)
    args = ["report", "full", "--guild", str(GUILD), "--range"]
    result = invoke(["--db", str(stats_db), *args, f"{following:%Y-%m-%d} to {day:%Y-%m-%d}"])
    assert result.exit_code == 0, result.output + result.stderr
    assert f"{day:%Y-%m-%d} (UTC; the ends were given in reverse order)" in result.output
    forward = invoke(["--db", str(stats_db), *args, f"{day:%Y-%m-%d} to {following:%Y-%m-%d}"])
    assert forward.exit_code == 0 and "reverse" not in forward.output


@pytest.mark.parametrize(
    ("db", "message"),
    [
        ("mysql://user@localhost/stats", "unsupported database URL"),
        ("http://example.com/x", "unsupported database URL"),
        ("postgresql+psycopg2://postgres@127.0.0.1/test", "unsupported database URL"),
        ("missing.db", "no database at missing.db: create one with `guildmeter demo`"),
        ("notes.txt", "is not a SQLite database"),
        ("foreign.db", "is not a guildmeter database"),
        ("corrupt.db", "cannot open database"),
        ("folder", "is a folder"),
    ],
)
@pytest.mark.parametrize("command", ["report full", "export", "stats", "serve"])
def test_read_only_commands_refuse_what_is_not_a_guildmeter_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: str, message: str, command: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("hello")
    _foreign_sqlite(Path("foreign.db"))
    _corrupt_sqlite(Path("corrupt.db"))
    Path("folder").mkdir()
    result = invoke(
        [
            "--db",
            db,
            *command.split(),
            *(["--guild", "1"] if command in ("report full", "export") else []),
        ]
    )
    assert_one_line_refusal(result)
    assert message in result.stderr
    assert not Path("missing.db").exists()  # never invented


def test_unwritable_outputs_are_refused_before_any_work(stats_db: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no such folder"
    before = stats_db.read_bytes()
    cases = [
        ["export", "--guild", str(GUILD), "-o", str(missing / "d.csv.gz")],
        [*REPORT, "--format", "csv", "-o", str(missing / "r.csv.gz")],
        [*REPORT, "-o", str(tmp_path)],
        [*REPORT, "--chart", str(missing / "c.png")],
        ["stats", "--chart", str(missing / "u.png")],
        ["demo", "--chart", str(missing / "demo.png")],
    ]
    for args in cases:
        result = invoke(["--db", str(stats_db), *args])
        assert_one_line_refusal(result)
        assert "cannot write" in result.stderr or "is a directory" in result.stderr
        assert result.stdout == ""  # refused before anything was computed or printed
    assert stats_db.read_bytes() == before  # demo did not rewrite the database


def test_a_raw_discord_id_in_an_import_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = _raw_id_import(tmp_path / "2018-03-01.csv.gz")
    result = invoke(["--db", str(tmp_path / "x.db"), "import-kaztron", "--guild", "1", str(path)])
    assert_one_line_refusal(result)
    assert "raw Discord user id" in result.stderr
    assert "200000000000000005" not in result.stderr + result.stdout
    assert list(tmp_path.glob("x.db*")) == []  # the failed import left no empty database


def test_run_with_discord_unreachable_is_one_line(tmp_path: Path) -> None:
    result = invoke(
        ["--db", str(tmp_path / "bot.db"), "run", "--api-base", "http://127.0.0.1:9/api/v10"],
        env={"DISCORD_TOKEN": "not-a-real-token"},
    )
    assert_one_line_refusal(result)
    assert "cannot reach Discord (http://127.0.0.1:9/api/v10)" in result.stderr


def test_report_files_are_named_per_guild_kind_channel_and_range(
    stats_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    base = ["--db", str(stats_db), *REPORT, "--format", "csv", "--range", "last month"]
    assert invoke(base).exit_code == 0
    assert invoke([*base, "--channel", "general"]).exit_code == 0
    month = month_start(add_months(month_of(utcnow()), -1))
    last_day = month_start(month_of(utcnow())) - timedelta(days=1)
    span = f"{month:%Y-%m-%d}-to-{last_day:%Y-%m-%d}"
    assert sorted(p.name for p in tmp_path.glob("report-*.csv.gz")) == [
        f"report-weekday-{GUILD}-all-{span}.csv.gz",
        f"report-weekday-{GUILD}-general-{span}.csv.gz",
    ]


def test_export_name_and_message_agree_on_the_inclusive_end(
    stats_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(["--db", str(stats_db), "export", "--guild", str(GUILD)])
    assert result.exit_code == 0, result.stderr
    month = month_start(add_months(month_of(utcnow()), -1))
    last_day = month_start(month_of(utcnow())) - timedelta(days=1)
    name = f"userstats-{GUILD}-{month:%Y-%m-%d}-to-{last_day:%Y-%m-%d}.csv.gz"
    assert [p.name for p in tmp_path.glob("userstats-*")] == [name]
    assert f"{month:%Y-%m-%d} to {last_day:%Y-%m-%d} (inclusive, UTC) to {name}" in result.output


# -- the property: any arguments, any files -------------------------------------------------

DB_KINDS = ["valid"] * 6 + ["missing", "text", "empty", "foreign", "corrupt", "mysql", "folder"]
RANGES = st.one_of(
    st.none(),
    st.sampled_from(
        ["last month", "this month", "last week", "yesterday", "2026-10", "October",
         "last 7 days", "10/12/2026", "tomorrow", "1999-01-01", "9999-12-31", "2015-01-01 to now"]
    ),
    st.text(max_size=25),
)  # fmt: skip
IDS = st.one_of(
    st.just(str(GUILD)),
    st.just(str(GUILD)),
    st.integers(-5, 2**65).map(str),
    st.text(alphabet="0123456789x-", max_size=22),
)
OUTPUTS = st.sampled_from(["none", "file", "missing-folder", "folder"])
IMPORT_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["2018-03-01 10:00:00", "2018-03-01 10:30:00", "yesterday", "", "x"]),
        st.sampled_from(["msg", "join", "part", "voice", "total_users", "reaction", ""]),
        st.sampled_from(["", HASH, "b" * 64, "u201803$abcdEF-_", "200000000000000005", "bob"]),
        st.sampled_from(["#general", "", "307226871290732544", "x y", str(2**64)]),
        st.one_of(st.integers(-3, 2**64).map(str), st.sampled_from(["", "lots", "1.5"])),
    ).map(lambda row: ",".join(row)),
    max_size=6,
)


@st.composite
def command_lines(draw: st.DrawFn, folder: Path) -> tuple[list[str], bool]:
    """A command line for any command, with the files it names written into ``folder``;
    and whether it is *sane*: asking for what the database holds, where it can write."""
    command = draw(
        st.sampled_from(
            ["report", "export", "stats", "import-kaztron", "demo", "run", "settings", "backfill"]
        )
    )
    sane = draw(st.booleans())

    def output(flag: str, name: str) -> list[str]:
        kind = draw(st.sampled_from(["none", "file"]) if sane else OUTPUTS)
        target = {
            "none": None,
            "file": folder / name,
            "missing-folder": folder / "missing" / name,
            "folder": folder,
        }[kind]
        return [] if target is None else [flag, str(target)]

    args = [command]
    if command == "report":
        args.append(draw(st.sampled_from(["full", "weekday", "hourly", "monthly"])))
    if command in ("report", "export", "import-kaztron", "settings") or draw(st.booleans()):
        args += ["--guild", str(GUILD) if sane else draw(IDS)]
    if command in ("report", "export"):
        text = draw(st.sampled_from([None, "last month"]) if sane else RANGES)
        args += [] if text is None else ["--range", text]
        args += output("-o", "out.gz")
    if command == "report":
        names = ["all", "general", "art"] if sane else ["all", "general", "nowhere", "日本"]
        channel = draw(st.one_of(st.none(), st.sampled_from(names)))
        args += [] if channel is None else ["--channel", channel]
        args += ["--format", draw(st.sampled_from(["text", "csv", "json"]))]
        args += output("--chart", "chart.png")
    if command == "stats":
        args += ["--days", str(draw(st.integers(-1, 4000))), *output("--chart", "u.png")]
    if command == "import-kaztron":
        rows = draw(IMPORT_ROWS)
        data = draw(st.one_of(st.just("\r\n".join(rows).encode()), st.binary(max_size=40)))
        path = folder / "2018-03-01.csv.gz"
        path.write_bytes(gzip.compress(data) if draw(st.booleans()) else data)
        args.append(str(path if draw(st.booleans()) else folder))
    if command == "demo":  # kept quick: a demo that may run is a test of its own
        args += ["--users", str(draw(st.integers(-1, 2**64)))]
        args += ["--chart", str(folder / "missing" / "demo.png")]
    if command in ("run", "backfill"):
        args += ["--api-base", "http://127.0.0.1:9/api/v10"]
    if command == "backfill":
        args += ["--days", str(draw(st.integers(1, 366) if sane else st.integers(-1, 400)))]
    if command == "settings" and draw(st.booleans()):
        zones = ["UTC", "Asia/Kolkata"] if sane else ["asia/kolkata", "Mars/Olympus", "", "é" * 90]
        args += ["--timezone", draw(st.sampled_from(zones))]
    return args, sane


def _database(kind: str, folder: Path, valid: Path) -> str:
    path = folder / "db.sqlite"
    if kind == "valid":
        shutil.copy(valid, path)
    elif kind == "text":
        path.write_text("not a database")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "foreign":
        _foreign_sqlite(path)
    elif kind == "corrupt":
        _corrupt_sqlite(path)
    elif kind == "mysql":
        return "mysql://user@localhost/stats"
    elif kind == "folder":
        return str(folder)
    return str(path)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), db_kind=st.sampled_from(DB_KINDS), token=st.sampled_from(["", "abc"]))
def test_every_command_exits_0_or_says_one_line_and_exits_2(
    stats_db: Path,
    tmp_path_factory: pytest.TempPathFactory,
    data: st.DataObject,
    db_kind: str,
    token: str,
) -> None:
    folder = tmp_path_factory.mktemp("run")
    args, sane = data.draw(command_lines(folder))
    db = _database("valid" if sane else db_kind, folder, stats_db)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # default output names land here, not in the repository
        result = invoke(["--db", db, *args], {"DISCORD_TOKEN": token})
    event(f"{args[0]} exit {result.exit_code}")
    assert result.exit_code in (0, 2), (args, result.exit_code, result.stderr, result.exception)
    assert "Traceback" not in result.output + result.stderr
    if result.exit_code == 2:
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, (
            args,
            result.stderr,
        )


def test_an_internal_error_is_one_line_pointing_at_verbose_and_exits_1(
    stats_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug\nwith a second line")

    monkeypatch.setattr("guildmeter.reports.compute.compute_report", broken)
    result = invoke(["--db", str(stats_db), "report", "full", "--guild", str(GUILD)])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: internal error (RuntimeError: a bug); run again with -v for the traceback, "
        "and please report it\n"
    )
    verbose = invoke(["--db", str(stats_db), "-v", "report", "full", "--guild", str(GUILD)])
    assert verbose.exit_code == 1 and "Traceback" in verbose.stderr


def test_names_that_look_like_markup_are_printed_as_they_are(
    stats_db: Path, tmp_path: Path
) -> None:
    target = tmp_path / "[bold red]report[blink].json"
    args = ["report", "full", "--guild", str(GUILD), "--format", "json", "-o", str(target)]
    result = invoke(["--db", str(stats_db), *args])
    assert result.exit_code == 0, result.stderr
    assert str(target) in result.output and target.exists()


@pytest.mark.parametrize(
    ("db", "message"),
    [
        ("notes.txt", "is not a SQLite database"),
        ("foreign.db", "is not a guildmeter database (it holds other tables: notes)"),
        ("no/such/folder/new.db", "cannot create no/such/folder/new.db: folder no/such/folder"),
    ],
)
def test_creating_commands_create_only_a_new_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("hello")
    _foreign_sqlite(Path("foreign.db"))
    dump = _raw_id_import(tmp_path / "2018-03-01.csv.gz")
    result = invoke(["--db", db, "import-kaztron", "--guild", "1", str(dump)])
    assert_one_line_refusal(result)
    assert message in result.stderr
    assert Path("notes.txt").read_text() == "hello"


def test_an_empty_file_may_become_a_new_database(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    db.write_bytes(b"")
    line = f"2018-03-01 10:00:00,msg,{HASH},#general,2\r\n2018-03-01 10:00:00,join,,,1\r\n"
    dump = tmp_path / "2018-03-01.csv.gz"
    dump.write_bytes(gzip.compress(line.encode()))
    result = invoke(["--db", str(db), "import-kaztron", "--guild", "1", str(dump)])
    assert result.exit_code == 0, result.stderr
    assert "Imported 2 rows from 1 file(s) into guild 1 (2018-03-01 to 2018-03-01)" in result.output


def test_long_words_of_an_error_are_cut_but_paths_keep_room_to_name_the_file() -> None:
    from guildmeter.cli import clip_echoes

    assert (
        clip_echoes(f"'{'x' * 400}' is not one of 'text'.")
        == f"'{'x' * 58}…' is not one of 'text'."
    )
    path = "/tmp/" + "d" * 120 + "/2018-03-01.csv.gz"
    assert clip_echoes(f"{path}, line 2: bad") == f"{path}, line 2: bad"
    assert len(clip_echoes("/" * 1000)) == 240
    assert clip_echoes("short words stay") == "short words stay"


#: Every control character (C0, DEL, C1), and the escape sequences a terminal obeys.
CONTROLS = st.sampled_from(
    [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))]
    + ["\x1b]0;pwned\x07", "\x1b]0;pwned\x1b\\", "\x1b[31m", "\x9b2J", "\x1bP1$r\x1b\\"]
)
HOSTILE = (
    st.lists(st.one_of(CONTROLS, st.text("ab#.-_ é", max_size=3)), min_size=1, max_size=6)
    .map("".join)
    .filter(lambda text: any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text))
)
#: Where a typed word is echoed in an error line: a name, a range, each kind of path.
ECHOED = st.sampled_from(["channel", "range", "db", "export-folder", "chart-folder", "import"])


def _echoing_command(place: str, word: str, folder: Path, stats_db: Path) -> list[str]:
    name = word.replace("/", "_").replace("\x00", "_")  # what a file system takes
    report = ["report", "full", "--guild", str(GUILD)]
    if place == "channel":
        return ["--db", str(stats_db), *report, "--channel", word]
    if place == "range":
        return ["--db", str(stats_db), *report, "--range", word]
    if place == "db":
        return ["--db", str(folder / f"{name}.db"), *report]
    if place == "export-folder":
        return [
            "--db",
            str(stats_db),
            "export",
            "--guild",
            str(GUILD),
            "-o",
            f"{folder / name}/d.csv.gz",
        ]
    if place == "chart-folder":
        return ["--db", str(stats_db), *report, "--chart", f"{folder / name}/c.png"]
    path = folder / f"{name}.csv.gz"
    path.write_bytes(gzip.compress(b"2018-03-01 10:00:00,msg,nobody,#general,lots\r\n"))
    return ["--db", str(folder / "import.db"), "import-kaztron", str(path), "--guild", str(GUILD)]


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(place=ECHOED, word=HOSTILE)
def test_no_control_character_typed_reaches_the_error_line(
    stats_db: Path, tmp_path_factory: pytest.TempPathFactory, place: str, word: str
) -> None:
    folder = tmp_path_factory.mktemp("echo")
    word = f"x{word}y"  # never blank: a blank --channel means all channels
    result = invoke(_echoing_command(place, word, folder, stats_db))
    event(place)
    assert_one_line_refusal(result)
    line = result.stderr.removesuffix("\n")
    assert not [c for c in line if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0], (place, line)


def test_an_osc_sequence_in_a_channel_name_is_shown_escaped(stats_db: Path) -> None:
    result = invoke(
        [
            "--db",
            str(stats_db),
            "report",
            "full",
            "--guild",
            str(GUILD),
            "--channel",
            "\x1b]0;pwned\x07gen",
        ]
    )
    assert_one_line_refusal(result)
    assert "no channel named #\\x1b]0;pwned\\x07gen" in result.stderr


#: Invisible characters that reorder or hide text: a line reading one thing, meaning another.
REORDERING = ["\u202e", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f",
              "\u061c", "\u200b", "\u2060", "\ufeff", "\u2028", "\u2029"]  # fmt: skip


@pytest.mark.parametrize("hidden", REORDERING)
def test_a_bidi_override_or_invisible_character_in_a_channel_name_is_shown_escaped(
    stats_db: Path, hidden: str
) -> None:
    """U+202E in ``gen\u202elareneg`` shows the error line reversed ('Trojan Source');
    a zero-width space makes two different names look the same."""
    result = invoke(
        ["--db", str(stats_db), "report", "full", "--guild", str(GUILD),
         "--channel", f"gen{hidden}x"]
    )  # fmt: skip
    assert_one_line_refusal(result)
    assert hidden not in result.stderr
    assert f"no channel named #gen{repr(hidden)[1:-1]}x" in result.stderr
