"""The ``guildmeter`` command line: a thin layer over the library.

Every command checks its inputs before it works (the range, the database, the guild,
every output path), then exits 0; or it prints one line and exits 2; an unexpected
internal error prints one line pointing at ``-v`` and exits 1. Heavy libraries (discord.py,
matplotlib, dateparser, SQLAlchemy) are imported inside the commands that use them, so
``--help`` answers at once.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from guildmeter import __version__
from guildmeter.errors import GuildmeterError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from guildmeter.config import Config
    from guildmeter.reports.compute import Report
    from guildmeter.reports.daterange import DateRange
    from guildmeter.store import Store

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])
_MAX_ID = 2**63 - 1
_FILE_WIDTH = 100


@functools.cache
def _console() -> Console:
    from rich.console import Console

    console = Console(highlight=False)
    console.on_broken_pipe = _reader_gone  # type: ignore[method-assign]  # rich exits 1
    return console


def _progress(console: Console | None = None) -> Progress:
    """A transient progress bar, on a terminal only: piped output gets none of it (rich
    would leave an empty line behind)."""
    from rich.progress import Progress

    console = console or _console()
    return Progress(console=console, transient=True, disable=not console.is_terminal)


def _say(text: str) -> None:
    """Print plain text: paths and names are never read as rich markup, and their control
    characters are shown, not sent to the terminal (`guildmeter.errors.printable`)."""
    from guildmeter.errors import printable

    _console().print(printable(text), markup=False, soft_wrap=True)


#: Longest word of an error line: what the user typed is echoed at most this long.
ECHO_LIMIT = 60
#: Paths are words too, and the answer must name the file: they get more room.
PATH_LIMIT = 240
_LONG_WORD = re.compile(rf"\S{{{ECHO_LIMIT + 1},}}")
_CLOSING = "'\".,:;)]"


def clip_echoes(message: str) -> str:
    """``message`` with each word longer than `ECHO_LIMIT` (a path: `PATH_LIMIT`) cut, an
    ellipsis in its place, closing quotes and punctuation kept: an error never prints a
    long input back."""

    def cut(found: re.Match[str]) -> str:
        word = found.group()
        body = word.rstrip(_CLOSING)
        limit = PATH_LIMIT if "/" in body or "\\" in body else ECHO_LIMIT
        if len(body) <= limit:
            return word
        return body[: limit - 1] + "…" + word[len(body) :][:3]

    return _LONG_WORD.sub(cut, message)


def _error_line(message: str) -> str:
    """One line whatever the message holds: echoes clipped, control characters shown."""
    from guildmeter.errors import printable

    return f"error: {printable(clip_echoes(message))}"


class _Refusal(click.ClickException):
    """A one-line answer on stderr: exit 2, the user's input to fix."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(_error_line(self.format_message()), err=True)


class _InternalError(_Refusal):
    """Our own bug: exit 1."""

    exit_code = 1


class _Group(click.Group):
    """Turns every failure of a command into one line (see the module docstring)."""

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's main, with usage errors in one line (click prints three)."""
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        except BrokenPipeError:
            _reader_gone()
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "guildmeter"
            click.echo(_error_line(f"{exc.format_message()} (see '{command} --help')"), err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            if isinstance(exc, _Refusal):
                exc.show()
            else:  # click's own, as click shows it, but with long echoes cut
                click.echo(f"Error: {clip_echoes(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:  # before click's own handling, which exits 1
            _reader_gone()
        except GuildmeterError as exc:
            raise _Refusal(" ".join(str(exc).split())[:600]) from None  # one line, always
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as exc:
            raise _unexpected(exc, ctx) from None


def _reader_gone() -> NoReturn:
    """The output's reader stopped reading (``| head``): what it took was what it wanted.
    Stop quietly, with the status of a success, and never write to the closed pipe again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(0)


def _unexpected(exc: Exception, ctx: click.Context) -> _Refusal:
    module = type(exc).__module__
    first_line = (str(exc).splitlines() or [""])[0][:300]
    if module.startswith(("sqlalchemy", "sqlite3", "psycopg")):
        return _Refusal(f"database error: {first_line}")
    if isinstance(exc, OSError):
        where = f" {str(exc.filename)[:100]}" if exc.filename else ""
        return _Refusal(f"cannot access{where}: {exc.strerror or first_line}")
    obj = ctx.find_object(_Context)
    if obj is not None and obj.verbose:
        import traceback

        traceback.print_exception(exc)
    return _InternalError(
        f"internal error ({type(exc).__name__}: {first_line}); run again with -v for the "
        "traceback, and please report it"
    )


class _Context:
    def __init__(self, config_file: str | None, db: str | None, verbose: bool) -> None:
        self.config_file = config_file
        self.db = db
        self.verbose = verbose

    @functools.cached_property
    def config(self) -> Config:
        from guildmeter.config import load_config

        return load_config(self.config_file, db=self.db)

    def open_store(self, *, create: bool = False) -> Store:
        """The database; read-only commands refuse one that does not exist yet."""
        from guildmeter.store.opening import open_store

        store = open_store(self.config.db, create=create)
        store.reload_calendars(self.config.default_timezone)
        return store

    @property
    def db_shown(self) -> str:
        from guildmeter.store.opening import describe_url

        return describe_url(self.config.db)


class _Snowflake(click.ParamType[int]):
    """A Discord id: a whole number from 1 to 2^63 - 1."""

    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            number = value
        else:
            text = str(value).strip()
            if not text.isdigit() or len(text) > 20:
                self.fail(f"{text[:40]!r} is not a Discord id (a number like 123456789012345678)")
            number = int(text)
        if not 1 <= number <= _MAX_ID:
            self.fail(f"{number} is out of range: Discord ids run from 1 to {_MAX_ID}")
        return number


SNOWFLAKE = _Snowflake()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="guildmeter")
@click.option(
    "--db",
    envvar="GUILDMETER_DB",
    help="Database URL (sqlite:///file.db, postgresql://user@host/db) or a SQLite file path. "
    "Default: guildmeter.db in the working directory.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="TOML configuration file (see the README for its settings).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log what the engine does (counts only).")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config_file: str | None, verbose: bool) -> None:
    """Private activity statistics and bot-usage analytics for Discord communities."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = _Context(config_file, db, verbose)


def main() -> NoReturn:
    """Console-script entry point (see the module docstring for exit statuses)."""
    cli.main(prog_name="guildmeter")
    raise SystemExit(0)  # not reached: main exits


# -- shared options and checks --------------------------------------------------------------


def guild_option(required: bool = True, help: str | None = None) -> Callable[[F], F]:
    return click.option(
        "--guild",
        type=SNOWFLAKE,
        required=required,
        help=help
        or "The guild (server) id: in Discord, turn on Developer Mode (Settings, Advanced), "
        "then right-click the server's icon and choose Copy Server ID.",
    )


def range_option(func: F) -> F:
    return click.option(
        "--range",
        "range_text",
        metavar="TEXT",
        help="A day, a period or 'A to B': '2018-01-12', 'October 2026', 'last month', "
        "'last week', 'last 7 days', '3 days ago to yesterday'. A day after 'to' is "
        "excluded, a period included. Days are the guild's local days (its timezone; "
        "UTC by default). Default: last full month.",
    )(func)


def output_option(func: F) -> F:
    return click.option(
        "-o", "--output", type=click.Path(dir_okay=False), help="File to write (see default)."
    )(func)


def _parse_range(text: str | None) -> DateRange:
    """The range in UTC days: checked before any work (the guild's days come later)."""
    from guildmeter.reports.daterange import parse_daterange

    return parse_daterange(text)


def _local_range(store: Store, guild: int, text: str | None, parsed: DateRange) -> DateRange:
    """The range on the guild's clock (its local days and months)."""
    from guildmeter.reports.daterange import parse_daterange

    calendar = store.calendars.get(guild)
    return parsed if calendar.is_utc else parse_daterange(text, calendar=calendar)


def _require_guild(store: Store, guild: int, shown_db: str) -> None:
    """Refuse a guild without statistics, naming those that have some."""
    from guildmeter.store.catalog import data_span, guilds_with_statistics

    if data_span(store, guild) is not None:
        return
    known = guilds_with_statistics(store)
    if not known:
        raise GuildmeterError(f"{shown_db} holds no activity statistics yet")
    raise GuildmeterError(
        f"no statistics for guild {guild} in {shown_db}; guilds with statistics: {_listed(known)}"
    )


def _listed(guilds: list[int]) -> str:
    return ", ".join(str(g) for g in guilds[:10]) + (", …" if len(guilds) > 10 else "")


def _require_data(store: Store, guild: int, daterange: DateRange) -> None:
    """Refuse a range in which the guild has no count at all, saying what it does have."""
    from guildmeter.store.catalog import data_span, has_statistics

    if has_statistics(store, guild, daterange.start_hour, daterange.end_hour):
        return
    span = data_span(store, guild)
    held = ""
    if span is not None:
        held = f"; this guild has data from {span.first:%Y-%m-%d} to {span.last:%Y-%m-%d}"
    zone = daterange.zone_label
    if daterange.last_day == daterange.first_day:
        when = f"on {daterange.first_day:%Y-%m-%d} ({zone})"
    else:
        when = f"between {daterange.first_day:%Y-%m-%d} and {daterange.last_day:%Y-%m-%d} ({zone})"
    raise GuildmeterError(f"no statistics for guild {guild} {when}{held}")


def _check_outputs(*paths: str | None) -> None:
    from guildmeter.outputs import check_writable

    for path in paths:
        if path:
            check_writable(path)


def _check_chart(path: str | None) -> None:
    """A chart is a PNG image: a file named otherwise would not open as what it says."""
    if path and not path.lower().endswith(".png"):
        raise GuildmeterError(
            f"a chart is a PNG image: name it …png (got {Path(path).name[:60]!r})"
        )


def _write_text(text: str, path: str) -> None:
    from guildmeter.outputs import atomic_file

    with atomic_file(path) as handle:
        handle.write(text.encode("utf-8"))


def _write_chart(store: Store, guild: int, daterange: DateRange, channel: str, path: str) -> None:
    from guildmeter.charts import render_activity_png
    from guildmeter.outputs import atomic_file
    from guildmeter.reports.series import activity_series

    png = render_activity_png(activity_series(store, guild, daterange, channel))
    with atomic_file(path) as handle:
        handle.write(png)


# -- tables ---------------------------------------------------------------------------------

_SHORT = {
    "total_users": "Total\nusers",
    "active_users": "Active\nusers",
    "voice_users": "Voice\nusers",
    "joins": "\nJoins",
    "parts": "\nParts",
    "messages": "\nMsgs",
    "messages_per_user": "Msgs/\nuser",
    "messages_per_user_stdev": "\nσ",
    "voice_man_hours": "Voice\nhours",
    "voice_hours_per_user": "Hours/\nuser",
    "voice_hours_per_user_stdev": "\nσ",
}


def _report_table(report: Report) -> Table:
    """Readable at 80 columns: full is one figure a line, weekday has a column per day,
    hourly a line per hour with short headers (σ: the standard deviation before it)."""
    from rich import box
    from rich.table import Table

    from guildmeter.reports.compute import REPORT_COLUMNS

    columns = REPORT_COLUMNS[1:]
    long_names = [
        f"{columns[i - 1][1]} σ" if header == "(stdev)" else header
        for i, (_, header) in enumerate(columns)
    ]
    table = Table(
        box=box.SIMPLE_HEAD,
        padding=(0, 0, 0, 0),
        show_edge=False,
    )
    if report.kind in ("full", "weekday"):
        table.add_column("figure")
        for row in report.rows:
            table.add_column("value" if report.kind == "full" else row.case[:3], justify="right")
        for (key, _), label in zip(columns, long_names, strict=True):
            table.add_row(label, *(_cell(getattr(row, key), compact=True) for row in report.rows))
        return table
    table.add_column("\nHour", justify="right", no_wrap=True)
    for key, _ in columns:
        table.add_column(_SHORT[key], justify="right", no_wrap=True)
    for row in report.rows:
        table.add_row(row.case, *(_cell(getattr(row, key), compact=True) for key, _ in columns))
    return table


def _report_title(report: Report) -> str:
    where = "all channels" if report.channel == "all" else f"#{report.channel}"
    return f"{report.kind.capitalize()} report, {where}, {report.range.describe()}"


def _cell(value: object, *, compact: bool = False) -> str:
    if value is None:  # not collected (joins and parts without the Server Members intent)
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}" if compact and abs(value) >= 10 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _print_report(report: Report, output: str | None = None) -> None:
    """Title, table and legend: on the terminal, or as text into ``output``."""
    import io

    from rich.console import Console

    console = _console() if not output else Console(width=_FILE_WIDTH, file=io.StringIO())
    console.print(_report_title(report), soft_wrap=True, markup=False)
    console.print(_report_table(report))
    console.print("σ: sample standard deviation of the figure before it")
    if any(row.joins is None for row in report.rows):
        console.print("—: not collected (the bot ran without the Server Members intent)")
    if output:
        _write_text(console.file.getvalue(), output)  # type: ignore[attr-defined]
        _say(f"Wrote {output}")


def _program() -> str:
    """How the person ran us, to repeat it in hints: ``guildmeter`` only if it is on PATH."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "guildmeter":
        return _as_typed(argv0, "guildmeter")
    return f"{_as_typed(Path(sys.executable), 'python3')} -m guildmeter"


def _as_typed(program: Path, name: str) -> str:
    """``name`` if PATH finds this very program under it, else its path (relative if short)."""
    import shutil

    found = shutil.which(name)
    if found and Path(found).resolve() == program.resolve():
        return name
    try:
        return str(program.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(program)


def _url_option(scheme: tuple[str, ...]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback refusing a URL of another scheme before any work starts."""

    def check(_ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and not str(value).startswith(scheme):
            name = (param.opts or [str(param.name)])[0]
            raise click.BadParameter(f"must start with {' or '.join(scheme)}", param_hint=name)
        return value

    return check


_HTTP = ("http://", "https://")


# -- commands -------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--api-base",
    envvar="GUILDMETER_DISCORD_API_BASE",
    callback=_url_option(_HTTP),
    help="Discord REST API base URL (a proxy, or the test emulator). Default: Discord's.",
)
@click.option(
    "--gateway",
    envvar="GUILDMETER_DISCORD_GATEWAY",
    callback=_url_option(("ws://", "wss://")),
    help="Discord gateway websocket URL (a proxy, or the test emulator). Default: Discord's.",
)
@click.option("--prefix", default=".", show_default=True, help="Prefix for text commands.")
@click.pass_obj
def run(obj: _Context, api_base: str | None, gateway: str | None, prefix: str) -> None:
    """Start the bot; its token comes from the DISCORD_TOKEN environment variable.

    It asks for the privileged Server Members and Message Content intents (setting
    `intents`); if Discord refuses them it reconnects without, and logs what is no longer
    collected (see the README). Discord unreachable or a refused token: one line and exit
    status 2, as for any other input to fix.
    """
    import os

    token = os.environ.get("DISCORD_TOKEN", "").strip()
    if not token:
        raise GuildmeterError("set DISCORD_TOKEN to the bot's token (Discord developer portal)")
    obj.open_store(create=True).close()  # checked, created if need be, before discord.py
    from guildmeter.runner import run_bot

    run_bot(obj.config, token, api_base, gateway, prefix, verbose=obj.verbose)


@cli.command()
@guild_option()
@range_option
@output_option
@click.pass_obj
def export(obj: _Context, guild: int, range_text: str | None, output: str | None) -> None:
    """Write the raw dump (what `.userstats` uploads) as gzip CSV.

    Columns: Period, Event, User hash, Channel, Count. Default file:
    userstats-GUILD-FIRSTDAY-to-LASTDAY.csv.gz (both days included) in the working
    directory.
    """
    daterange = _parse_range(range_text)
    path = output or _dump_name(guild, daterange)
    _check_outputs(path)
    store = obj.open_store()
    try:
        daterange = _local_range(store, guild, range_text, daterange)
        if not output and _dump_name(guild, daterange) != path:
            path = _dump_name(guild, daterange)
            _check_outputs(path)
        _require_guild(store, guild, obj.db_shown)
        _require_data(store, guild, daterange)
        result = _export(store, guild, daterange, path)
    finally:
        store.close()
    _say(f"Wrote {result.rows:,} rows for {daterange.describe()} to {path}")
    if result.warning:
        _say(f"warning: {result.warning}")


def _dump_name(guild: int, daterange: DateRange) -> str:
    return (
        f"userstats-{guild}-{daterange.first_day:%Y-%m-%d}-to-{daterange.last_day:%Y-%m-%d}.csv.gz"
    )


def _export(store: Store, guild: int, daterange: DateRange, path: str) -> Any:

    from guildmeter.export.csv_gz import write_dump
    from guildmeter.outputs import atomic_file

    with atomic_file(path) as handle, _progress() as progress:
        task = progress.add_task("Exporting rows", total=None)
        return write_dump(
            store, guild, daterange, handle, progress=lambda n: progress.update(task, completed=n)
        )


@cli.command()
@click.argument("kind", type=click.Choice(["full", "weekday", "hourly"]))
@guild_option()
@click.option("--channel", default="all", show_default=True, help="A channel name, or 'all'.")
@range_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "csv", "json"]),
    default="text",
    show_default=True,
    help="text: a table on the terminal; csv: gzip CSV (KazTron's 12 columns); json.",
)
@output_option
@click.option("--chart", type=click.Path(dir_okay=False), help="Also write charts to this PNG.")
@click.pass_obj
def report(
    obj: _Context,
    kind: str,
    guild: int,
    channel: str,
    range_text: str | None,
    fmt: str,
    output: str | None,
    chart: str | None,
) -> None:
    """Compute a full, weekday or hourly report (what `.userstats report` shows).

    The range must lie within one month: pseudonyms change every month, so per-user
    figures cannot span two. CSV goes to report-KIND-GUILD-CHANNEL-FIRSTDAY-to-LASTDAY.csv.gz
    unless -o is given; text and JSON go to the terminal unless -o is given.
    """
    from guildmeter.outputs import file_slug

    daterange = _parse_range(range_text)
    where = "all" if channel.strip().lower() in ("", "all") else file_slug(channel)

    def name(span: DateRange) -> str:
        return (
            f"report-{kind}-{guild}-{where}-{span.first_day:%Y-%m-%d}-to-"
            f"{span.last_day:%Y-%m-%d}.csv.gz"
        )

    default_name = fmt == "csv" and not output
    if default_name:
        output = name(daterange)
    _check_outputs(output, chart)
    _check_chart(chart)
    store = obj.open_store()
    try:
        daterange = _local_range(store, guild, range_text, daterange)
        if default_name and name(daterange) != output:
            output = name(daterange)
            _check_outputs(output)
        _require_guild(store, guild, obj.db_shown)
        _report(store, guild, kind, daterange, channel, fmt, output)
        if chart:
            _write_chart(store, guild, daterange, channel, chart)
            _say(f"Wrote charts to {chart}")
    finally:
        store.close()


def _say_if_snapshot_missing(store: Store, guild: int, daterange: DateRange) -> None:
    """A closed month without its snapshot was computed live: say so (the bot's monthly
    job builds it; nothing here writes)."""
    from guildmeter.reports.snapshots import closed_month_of
    from guildmeter.store.snapshots import markers

    month = closed_month_of(daterange)
    if month is None or store.anonymised_at(guild, month) is None:
        return
    found = markers(store, guild).get(month)
    if found is None or found.ready_at is None:
        click.echo(  # stderr: JSON and CSV on stdout stay clean
            "note: computed from the hourly rows: this closed month has no stored snapshot "
            "yet (the bot's monthly job builds one; reports of the month then read it).",
            err=True,
        )


def _report(
    store: Store,
    guild: int,
    kind: str,
    daterange: DateRange,
    channel: str,
    fmt: str,
    output: str | None,
) -> Report:
    from guildmeter.reports.compute import compute_report

    result = compute_report(store, guild, kind, daterange, channel)  # type: ignore[arg-type]
    _require_data(store, guild, daterange)  # after the report's own checks (month, channel)
    _say_if_snapshot_missing(store, guild, daterange)
    if fmt == "csv":
        from guildmeter.export.csv_gz import write_report_csv
        from guildmeter.outputs import atomic_file

        assert output is not None
        with atomic_file(output) as handle:
            write_report_csv(result, handle)
        _say(f"Wrote the {kind} report for {daterange.describe()} to {output}")
    elif fmt == "json":
        from guildmeter.export.json_out import report_json

        if output:
            _write_text(report_json(result) + "\n", output)
            _say(f"Wrote the {kind} report for {daterange.describe()} to {output}")
        else:
            click.echo(report_json(result))
    else:
        _print_report(result, output)
    return result


@cli.command("stats")
@guild_option(required=False, help="Only this guild (server) id; default: every guild.")
@click.option(
    "--days", type=click.IntRange(1, 3660), default=7, show_default=True,
    help="Days to cover, today included (the guild's local days; UTC days for all guilds).",
)  # fmt: skip
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="text: tables on the terminal; json: the summary as one JSON object.",
)  # fmt: skip
@click.option("--chart", type=click.Path(dir_okay=False), help="Also write the daily chart.")
@click.pass_obj
def stats(obj: _Context, guild: int | None, days: int, fmt: str, chart: str | None) -> None:
    """Bot-usage summary (what `/stats` shows): every guild unless --guild is given.

    Generations (count, mean time), commands (uses, failure rate, median and 95th
    percentile latency), users and popular resolutions. Aggregates only.
    """
    import json

    from guildmeter.reports.usage import usage_summary

    _check_outputs(chart)
    _check_chart(chart)
    store = obj.open_store()
    try:
        if guild is not None:  # a typo is refused; a known guild without usage shows zeros
            from guildmeter.cli_guilds import require_known_guild

            require_known_guild(store, guild)
        summary = usage_summary(store, guild, days)
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps(summary.to_json(), indent=2))
    else:
        _print_usage(summary, guild)
    if chart:
        from guildmeter.charts import render_usage_png
        from guildmeter.outputs import atomic_file

        with atomic_file(chart) as handle:
            handle.write(render_usage_png(summary))
        _say(f"Wrote the chart to {chart}")


def _print_usage(summary: Any, guild: int | None) -> None:
    from rich.table import Table

    console = _console()
    where = "all guilds" if guild is None else f"guild {guild}"
    _say(f"Bot usage, {where}, {summary.start} to {summary.end} ({summary.zone})")
    console.print(
        f"Images: {summary.images:,} (mean {summary.image_seconds_mean:.1f} s)   "
        f"Videos: {summary.videos:,} (mean {summary.video_seconds_mean:.1f} s)\n"
        f"Commands: {summary.commands_total:,} ({summary.commands_failed:,} failed)   "
        f"Total {summary.users_label}: {summary.total_users:,}   "
        f"Active (2+ days): {summary.active_users:,}"
    )
    if not summary.commands and not summary.resolutions:
        console.print("No bot usage recorded in this window.")
        return
    from rich.markup import escape

    table = Table("Command", "Uses", "Failed", "Median ms", "p95 ms", "Mean ms")
    for c in summary.commands:
        table.add_row(
            escape(c.command), f"{c.uses:,}", f"{100 * c.failure_rate:.1f} %",
            f"{c.median_ms:,.1f}", f"{c.p95_ms:,.1f}", f"{c.mean_ms:,.1f}",
        )  # fmt: skip
    console.print(table)
    resolutions = Table("Resolution", "Jobs")
    for resolution, jobs in summary.resolutions:
        resolutions.add_row(escape(resolution), f"{jobs:,}")
    console.print(resolutions)


@cli.command()
@click.option("--host", help="Address to listen on. Default: dashboard_host (127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port. Default: dashboard_port (8080).")
@click.option(
    "--public-url",
    callback=_url_option(_HTTP),
    help="The address browsers use, behind a reverse proxy (https://stats.example.org); "
    "the OAuth2 redirect URI is this plus /callback.",
)
@click.pass_obj
def serve(obj: _Context, host: str | None, port: int | None, public_url: str | None) -> None:
    """Serve the web dashboard (default http://127.0.0.1:8080).

    With oauth_client_id and its secret configured, moderators log in with Discord and the
    bot's token (DISCORD_TOKEN) checks, at every request, that they moderate the server.
    Without, a one-time link is printed that opens every guild, from this machine only.
    """
    import dataclasses

    config = obj.config
    if public_url:
        config = dataclasses.replace(config, dashboard_public_url=public_url)
    store = obj.open_store()
    try:
        from guildmeter.web.server import serve as serve_dashboard

        serve_dashboard(
            config, store, host or config.dashboard_host, port or config.dashboard_port, say=_say
        )
    finally:
        store.close()


@cli.command()
@click.option("--user", "user_id", type=SNOWFLAKE, required=True, help="The member's user id.")
@guild_option(required=False, help="Only this guild (server) id; default: every guild.")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted; change nothing.")
@click.pass_obj
def forget(obj: _Context, user_id: int, guild: int | None, dry_run: bool) -> None:
    """Delete a member's statistics of every month not yet anonymised (a deletion request).

    The member's pseudonyms are computed from the months' keys, which exist until a month
    is anonymised; anonymised months hold random tokens that nothing links to anyone, so
    there is nothing of theirs left to delete there. The deleted pseudonyms are scrubbed
    from the database files. A running bot may still hold up to one flush interval of the
    member's counts in memory: `/privacy forget` (or guildmeter.forget_user) covers those.
    """
    from guildmeter.cli_rights import run_forget

    run_forget(obj.open_store(), user_id, guild, dry_run)


@cli.command()
@guild_option()
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=30,
    show_default=True,
    help="How many days of history to read (at most 366).",
)
@click.option(
    "--api-base",
    envvar="GUILDMETER_DISCORD_API_BASE",
    callback=_url_option(_HTTP),
    help="Discord REST API base URL (a proxy, or the test emulator). Default: Discord's.",
)
@click.pass_obj
def backfill(obj: _Context, guild: int, days: int, api_base: str | None) -> None:
    """Count the guild's message history from before live counting began.

    Reads every channel, voice chat, thread and forum post the bot can read, through
    Discord's REST API with the bot's token (DISCORD_TOKEN), back DAYS days; counts
    messages per local hour, channel and monthly pseudonym, as live counting does (past
    months are anonymised at the end). Interrupted, it resumes where it stopped; it never
    counts a message twice. Joins of current members come from when they joined; parts
    cannot be recovered. The database must exist (the bot's); nothing is written to it
    before Discord has answered.
    """
    import os

    token = os.environ.get("DISCORD_TOKEN", "").strip()
    if not token:
        raise GuildmeterError("set DISCORD_TOKEN to the bot's token (Discord developer portal)")
    from guildmeter.cli_backfill import run_backfill

    store = obj.open_store()
    try:
        run_backfill(store, obj.config, guild, days, token, api_base)
    finally:
        store.close()


@cli.command("settings")
@guild_option()
@click.option(
    "--timezone",
    metavar="ZONE",
    help="Set the guild's IANA timezone (Europe/Berlin, America/New_York, Asia/Kolkata): "
    "statistics follow its local hours, days and months from the guild's next month "
    "(at once when it has no statistics yet).",
)
@click.option(
    "--retention-months",
    type=click.IntRange(0, 600),
    help="Months after its end a month keeps member-level rows (0: keep everything); "
    "overrides the configuration's retention_months for this guild.",
)
@click.pass_obj
def settings(obj: _Context, guild: int, timezone: str | None, retention_months: int | None) -> None:
    """Print a guild's settings (what `statsconfig show` lists), or set its timezone or
    retention.

    Without an option it only prints. A guild without any setting shows the defaults
    (the timezone from the configuration's default_timezone, UTC unless set).
    """
    from guildmeter.cli_settings import run_settings

    store = obj.open_store()
    try:
        run_settings(
            store, guild, timezone, retention_months, default_retention=obj.config.retention_months
        )
    finally:
        store.close()


@cli.command("import-kaztron")
@guild_option()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.pass_obj
def import_kaztron(obj: _Context, guild: int, paths: tuple[str, ...]) -> None:
    """Import KazTron's userstats folder, its YYYY-MM-DD.csv.gz files or .userstats dumps.

    A folder means every *.csv.gz file in it, in date order. All files are imported in
    one transaction: a malformed row stops the import, names its file and line, and
    nothing is kept. A file imported before is recognised by its SHA-256 and skipped.
    Months that are over are anonymised afterwards.
    """

    from guildmeter.activity import anonymise_finished_months
    from guildmeter.export.kaztron_import import expand_paths, import_files
    from guildmeter.store.opening import sqlite_path
    from guildmeter.timeutil import utcnow

    files = expand_paths(paths)
    new_file = sqlite_path(obj.config.db)
    if new_file is not None and new_file.exists() and new_file.stat().st_size > 0:
        new_file = None
    store = obj.open_store(create=True)
    try:
        with _progress() as progress:
            task = progress.add_task(f"Importing {len(files)} file(s)", total=None)
            result = import_files(
                store,
                guild,
                files,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    except BaseException:
        store.close()
        if new_file is not None:  # nothing was kept: do not leave an empty database behind
            for suffix in ("", "-wal", "-shm", "-journal"):
                new_file.with_name(new_file.name + suffix).unlink(missing_ok=True)
        raise
    try:
        for path, when in result.files_skipped:
            _say(f"Skipped {path}: already imported on {when:%Y-%m-%d %H:%M} UTC")
        for path in result.files_empty:
            _say(f"Skipped {path}: the file is empty (0 bytes), nothing to import")
        span = f" ({result.first:%Y-%m-%d} to {result.last:%Y-%m-%d})" if result.first else ""
        _say(
            f"Imported {result.rows_imported:,} rows from {len(result.files_imported)} file(s) "
            f"into guild {guild}{span}."
        )
        if result.skipped is not None:
            first, end = result.skipped
            _say(
                f"Skipped {result.rows_skipped:,} message and join rows of the hours from "
                f"{first:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC: the history backfill "
                "had counted them (their voice, parts and member totals were imported)."
            )
        if result.held is not None:
            first, end = result.held
            _say(
                f"Skipped {result.rows_held:,} rows of {result.held_hours:,} hour(s) between "
                f"{first:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC: the database already "
                "held counts of those hours (counted live while KazTron ran, or imported "
                "from another file), so they are not counted twice."
            )
        if result.past_retention is not None:
            _say(
                f"Discarded {result.rows_discarded:,} of the {result.rows:,} rows read: "
                f"{result.past_retention.describe()}."
            )
        for done in anonymise_finished_months(store, utcnow()):
            _say(
                f"Anonymised {done.month // 100}-{done.month % 100:02d}: "
                f"{done.pseudonyms_replaced:,} user hashes replaced by random tokens."
            )
    finally:
        store.close()


@cli.command()
@click.option(
    "--guild", type=SNOWFLAKE, default=None, help="Guild id to simulate (default: a demo id)."
)
@click.option(
    "--users",
    type=click.IntRange(10, 100_000),
    default=400,
    show_default=True,
    help="Members at the start of the simulation.",
)
@click.option(
    "--messages-per-day",
    type=click.IntRange(1, 1_000_000),
    default=3000,
    show_default=True,
    help="Average messages per day.",
)
@click.option(
    "--seed", type=click.IntRange(0, 2**64), default=2018, show_default=True, help="Random seed."
)
@click.option(
    "--chart",
    type=click.Path(dir_okay=False),
    default="guildmeter-demo.png",
    show_default=True,
    help="Where to write the charts of the simulated month.",
)
@click.pass_obj
def demo(
    obj: _Context, guild: int | None, users: int, messages_per_day: int, seed: int, chart: str
) -> None:
    """Simulate a server from the 1st of last month until now and store its statistics.

    Traffic goes through the real collector, pseudonymisation and store (the database
    given by --db), on a simulated clock: no token and no network are needed. Last
    month is anonymised when the simulated clock passes its end. A previous demo's data
    for the same guild is replaced.
    """
    from guildmeter.demo import DEMO_GUILD_ID

    _check_outputs(chart)
    _check_chart(chart)
    store = obj.open_store(create=True)
    try:
        _demo(obj, store, guild or DEMO_GUILD_ID, users, messages_per_day, seed, chart)
    finally:
        store.close()


def _demo(
    obj: _Context,
    store: Store,
    guild_id: int,
    users: int,
    messages_per_day: int,
    seed: int,
    chart: str,
) -> None:
    from rich.table import Table

    from guildmeter.activity import ActivityStats
    from guildmeter.demo import default_demo_period, simulate
    from guildmeter.reports import DateRange, compute_report
    from guildmeter.store.usage import UsageStore
    from guildmeter.timeutil import utcnow

    console = _console()
    store.delete_guild(guild_id)
    UsageStore(store).reset(guild_id)  # the demo's bot usage too: simulated again below
    stats = ActivityStats(store)
    start, end = default_demo_period(utcnow())
    with _progress(console) as progress:
        task = progress.add_task("Simulating", total=None)
        summary = simulate(
            stats,
            start=start,
            end=end,
            guild_id=guild_id,
            users=users,
            messages_per_day=messages_per_day,
            seed=seed,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    _say(
        f"Simulated guild {guild_id} from {start:%Y-%m-%d %H:%M} to "
        f"{end:%Y-%m-%d %H:%M} UTC ({summary.flushes} hourly flushes) into {obj.db_shown}"
    )
    fed = Table(title="Events fed to the collector")
    fed.add_column("event")
    fed.add_column("count", justify="right")
    for name, count in sorted(summary.events.items()):
        fed.add_row(name, f"{count:,}")
    console.print(fed)
    console.print(f"Activity rows written: {summary.rows_written:,}")
    months = Table(title="Stored per month")
    for column in ("month", "distinct users", "pseudonyms left", "anonymous tokens", "key"):
        months.add_column(column, justify="right")
    for entry in store.month_summary(guild_id):
        months.add_row(
            f"{entry['month'] // 100}-{entry['month'] % 100:02d}",
            f"{entry['users']:,}",
            f"{entry['pseudonyms']:,}",
            f"{entry['tokens']:,}",
            "present (month in progress)" if entry["key_present"] else "destroyed",
        )
    console.print(months)
    for done in summary.anonymised:
        console.print(
            f"Anonymised {done.month // 100}-{done.month % 100:02d}: "
            f"{done.pseudonyms_replaced:,} pseudonyms replaced by random tokens, "
            f"key {'destroyed' if done.key_destroyed else 'already gone'}."
        )
    month = DateRange.last_full_month(end)
    _print_report(compute_report(store, guild_id, "full", month))
    _write_chart(store, guild_id, month, "all", chart)
    _say(f"Charts of {month.describe()} written to {chart}")
    program = _program()
    if obj.db:
        import shlex

        program += f" --db {shlex.quote(obj.db)}"
    console.print(
        f"Next: {program} report weekday --guild {guild_id}\n"
        f"      {program} export --guild {guild_id}",
        soft_wrap=True,
        markup=False,
    )
