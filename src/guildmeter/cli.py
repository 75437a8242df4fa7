"""The ``guildmeter`` command line: a thin layer over the library."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from guildmeter import __version__
from guildmeter.cli_rights import forget
from guildmeter.config import Config, load_config
from guildmeter.errors import GuildmeterError
from guildmeter.store import Store
from guildmeter.timeutil import utcnow

if TYPE_CHECKING:
    from guildmeter.reports.compute import Report

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])
console = Console()


class _Context:
    def __init__(self, config_file: str | None, db: str | None) -> None:
        self.config_file = config_file
        self.db = db

    @functools.cached_property
    def config(self) -> Config:
        return load_config(self.config_file, db=self.db)

    def open_store(self) -> Store:
        return Store.open(self.config.db)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    ctx.obj = _Context(config_file, db)


@contextmanager
def _atomic_file(path: str) -> Iterator[IO[bytes]]:
    """Write to a temporary file beside ``path``; rename only on success (nothing half-written)."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("wb") as handle:
            yield handle
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _emit_text(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
        console.print(f"Wrote {output}")
    else:
        click.echo(text)


def _report_table(report: Report) -> Table:
    """Full: one figure per line. Weekday/hourly: one case per line (a wide table)."""
    from guildmeter.reports.compute import REPORT_COLUMNS

    where = "all channels" if report.channel == "all" else f"#{report.channel}"
    title = f"{report.kind.capitalize()} report, {where}, {report.range.describe()}"
    columns = REPORT_COLUMNS[1:]
    if report.kind == "full":
        table = Table(title=title)
        table.add_column("figure")
        table.add_column("value", justify="right")
        row = report.rows[0]
        for index, (key, header) in enumerate(columns):
            label = f"{columns[index - 1][1]} {header}" if header == "(stdev)" else header
            table.add_row(label, _cell(getattr(row, key)))
        return table
    table = Table(title=title)
    table.add_column("Case")
    for _, header in columns:
        table.add_column(header, justify="right")
    for row in report.rows:
        table.add_row(row.case, *(_cell(getattr(row, key)) for key, _ in columns))
    return table


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def main() -> None:
    """Console-script entry point: library errors become a one-line message and exit 2."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        console.print("[red]Aborted.[/red]")
        raise SystemExit(1) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except GuildmeterError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise SystemExit(2) from None


def guild_option(required: bool = True) -> Callable[[F], F]:
    return click.option(
        "--guild",
        type=int,
        required=required,
        help="The guild (server) id the statistics belong to.",
    )


def range_option(func: F) -> F:
    return click.option(
        "--range",
        "range_text",
        metavar="TEXT",
        help="A date or 'date1 to date2' (date2 excluded), e.g. '2018-01-12', 'yesterday', "
        "'3 days ago to yesterday'. Days start at midnight UTC. Default: last full month.",
    )(func)


def output_option(func: F) -> F:
    return click.option(
        "-o", "--output", type=click.Path(dir_okay=False), help="File to write (see default)."
    )(func)


@cli.command()
@click.option(
    "--api-base",
    envvar="GUILDMETER_DISCORD_API_BASE",
    help="Discord REST API base URL (a proxy, or the test emulator). Default: Discord's.",
)
@click.option(
    "--gateway",
    envvar="GUILDMETER_DISCORD_GATEWAY",
    help="Discord gateway websocket URL (a proxy, or the test emulator). Default: Discord's.",
)
@click.option("--prefix", default=".", show_default=True, help="Prefix for text commands.")
@click.pass_obj
def run(obj: _Context, api_base: str | None, gateway: str | None, prefix: str) -> None:
    """Start the bot; its token comes from the DISCORD_TOKEN environment variable.

    The bot needs the privileged Server Members and Message Content intents, enabled in
    the Discord developer portal (see the README).
    """
    import os

    from guildmeter.activity import ActivityStats
    from guildmeter.bot import create_bot, use_endpoints

    token = os.environ.get("DISCORD_TOKEN", "").strip()
    if not token:
        raise GuildmeterError("set DISCORD_TOKEN to the bot's token (Discord developer portal)")
    stats = ActivityStats.from_config(obj.config)
    use_endpoints(api_base, gateway)
    create_bot(obj.config, stats, prefix=prefix).run(token, log_level=logging.INFO)


@cli.command()
@guild_option()
@range_option
@output_option
@click.pass_obj
def export(obj: _Context, guild: int, range_text: str | None, output: str | None) -> None:
    """Write the raw dump (what `.userstats` uploads) as gzip CSV.

    Columns: Period, Event, User hash, Channel, Count. Default file:
    userstats-GUILD-START-to-END.csv.gz in the working directory.
    """
    from guildmeter.export import write_dump
    from guildmeter.reports import parse_daterange

    daterange = parse_daterange(range_text)
    path = output or (
        f"userstats-{guild}-{daterange.start:%Y-%m-%d}-to-{daterange.end:%Y-%m-%d}.csv.gz"
    )
    store = obj.open_store()
    with _atomic_file(path) as handle, Progress(console=console, transient=True) as progress:
        task = progress.add_task("Exporting rows", total=None)
        result = write_dump(
            store, guild, daterange, handle, progress=lambda n: progress.update(task, completed=n)
        )
    store.close()
    console.print(f"Wrote {result.rows:,} rows for {daterange.describe()} to {path}")
    if result.warning:
        console.print(f"[bold yellow]warning:[/bold yellow] {result.warning}", highlight=False)


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
    help="text: a table on the terminal; csv: gzip CSV (the seed's 12 columns); json.",
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
    figures cannot span two. CSV goes to report-KIND-GUILD-START.csv.gz unless -o is
    given; text and JSON go to the terminal unless -o is given.
    """
    from guildmeter.export import report_json, write_report_csv
    from guildmeter.reports import compute_report, parse_daterange

    daterange = parse_daterange(range_text)
    store = obj.open_store()
    result = compute_report(store, guild, kind, daterange, channel)  # type: ignore[arg-type]
    if fmt == "csv":
        path = output or f"report-{kind}-{guild}-{daterange.start:%Y-%m-%d}.csv.gz"
        with _atomic_file(path) as handle:
            write_report_csv(result, handle)
        console.print(f"Wrote the {kind} report for {daterange.describe()} to {path}")
    elif fmt == "json":
        _emit_text(report_json(result), output)
    elif output:
        with open(output, "w", encoding="utf-8") as handle:
            Console(file=handle, width=170).print(_report_table(result))
        console.print(f"Wrote {output}")
    else:
        Console(width=max(console.width, 170)).print(_report_table(result))
    if chart:
        from guildmeter.charts import render_activity_png
        from guildmeter.reports.series import activity_series

        render_activity_png(activity_series(store, guild, daterange, channel), chart)
        console.print(f"Wrote charts to {chart}")
    store.close()


@cli.command("stats")
@guild_option(required=False)
@click.option(
    "--days", type=click.IntRange(1, 3660), default=7, show_default=True,
    help="Days to cover, today (UTC) included.",
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

    store = obj.open_store()
    summary = usage_summary(store, guild, days)
    store.close()
    if fmt == "json":
        click.echo(json.dumps(summary.to_json(), indent=2))
    else:
        where = "all guilds" if guild is None else f"guild {guild}"
        console.print(f"[bold]Bot usage, {where}, {summary.start} to {summary.end} (UTC)[/]")
        console.print(
            f"Images: {summary.images:,} (mean {summary.image_seconds_mean:.1f} s)   "
            f"Videos: {summary.videos:,} (mean {summary.video_seconds_mean:.1f} s)\n"
            f"Commands: {summary.commands_total:,} ({summary.commands_failed:,} failed)   "
            f"Total {summary.users_label}: {summary.total_users:,}   "
            f"Active (2+ days): {summary.active_users:,}"
        )
        table = Table("Command", "Uses", "Failed", "Median ms", "p95 ms", "Mean ms")
        for c in summary.commands:
            table.add_row(
                c.command, f"{c.uses:,}", f"{100 * c.failure_rate:.1f} %",
                f"{c.median_ms:,.1f}", f"{c.p95_ms:,.1f}", f"{c.mean_ms:,.1f}",
            )  # fmt: skip
        console.print(table)
        resolutions = Table("Resolution", "Jobs")
        for resolution, jobs in summary.resolutions:
            resolutions.add_row(resolution, f"{jobs:,}")
        console.print(resolutions)
    if chart:
        from guildmeter.charts import render_usage_png

        with _atomic_file(chart) as handle:
            handle.write(render_usage_png(summary))
        console.print(f"Wrote the chart to {chart}")


@cli.command("import-kaztron")
@guild_option()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
def import_kaztron(obj: _Context, guild: int, paths: tuple[str, ...]) -> None:
    """Import KazTron userstats/YYYY-MM-DD.csv.gz files or .userstats dumps.

    All files are imported in one transaction: a malformed row stops the import, names
    its file and line, and nothing is kept. A file imported before is recognised by its
    SHA-256 and skipped. Months that are over are anonymised afterwards.
    """
    from guildmeter.activity import anonymise_finished_months
    from guildmeter.export import import_files

    store = obj.open_store()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Importing", total=None)
        result = import_files(
            store,
            guild,
            paths,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    for path, when in result.files_skipped:
        console.print(f"Skipped {path}: already imported on {when:%Y-%m-%d %H:%M} UTC")
    console.print(f"Imported {result.rows:,} rows from {len(result.files_imported)} file(s).")
    for done in anonymise_finished_months(store, utcnow()):
        console.print(
            f"Anonymised {done.month // 100}-{done.month % 100:02d}: "
            f"{done.pseudonyms_replaced:,} user hashes replaced by random tokens."
        )
    store.close()


@cli.command()
@click.option("--guild", type=int, default=None, help="Guild id to simulate (default: a demo id).")
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
@click.option("--seed", type=int, default=2018, show_default=True, help="Random seed.")
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
    from guildmeter.activity import ActivityStats
    from guildmeter.demo import DEMO_GUILD_ID, default_demo_period, simulate

    guild_id = guild or DEMO_GUILD_ID
    store = obj.open_store()
    store.delete_guild(guild_id)
    stats = ActivityStats(store)
    start, end = default_demo_period(utcnow())
    with Progress(console=console, transient=True) as progress:
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
    console.print(
        f"Simulated guild [bold]{guild_id}[/bold] from {start:%Y-%m-%d %H:%M} to "
        f"{end:%Y-%m-%d %H:%M} UTC ({summary.flushes} hourly flushes) into {obj.config.db}"
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
    from guildmeter.charts import render_activity_png
    from guildmeter.reports import DateRange, compute_report
    from guildmeter.reports.series import activity_series

    month = DateRange.last_full_month(end)
    console.print(_report_table(compute_report(store, guild_id, "full", month)))
    render_activity_png(activity_series(store, guild_id, month), chart)
    console.print(f"Charts of {month.describe()} written to {chart}")
    console.print(
        f"Next: guildmeter report weekday --guild {guild_id}   guildmeter export --guild {guild_id}"
    )
    store.close()


cli.add_command(forget)
