"""The ``guildmeter`` command line: a thin layer over the library."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from guildmeter import __version__
from guildmeter.config import Config, load_config
from guildmeter.errors import GuildmeterError
from guildmeter.store import Store
from guildmeter.timeutil import utcnow

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
@click.pass_obj
def demo(obj: _Context, guild: int | None, users: int, messages_per_day: int, seed: int) -> None:
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
    store.close()
