"""``guildmeter forget``: the bot owner's side of members' rights (deletion requests).

Discord relays deletion requests to bot owners; this deletes the member's rows of every
month not yet anonymised, like ``/privacy forget``. Kept apart from ``cli.py`` so that the
command line's other work merges untouched; registered there with one line.
"""

from __future__ import annotations

from typing import Protocol

import click
from rich.console import Console

from guildmeter.privacy.rights import ForgetReport, forget_in_store, plan_forget
from guildmeter.store import Store

__all__ = ["forget"]

console = Console()


class _Obj(Protocol):
    def open_store(self) -> Store: ...


@click.command()
@click.option("--user", "user_id", type=int, required=True, help="The member's Discord user id.")
@click.option(
    "--guild",
    type=int,
    default=None,
    help="Only this guild (server) id. Default: every guild in the database.",
)
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted; change nothing.")
@click.pass_obj
def forget(obj: _Obj, user_id: int, guild: int | None, dry_run: bool) -> None:
    """Delete a member's statistics of every month not yet anonymised (a deletion request).

    The member's pseudonyms are computed from the months' keys, which exist until a month
    is anonymised; anonymised months hold random tokens that nothing links to anyone, so
    there is nothing of theirs left to delete there. The deleted pseudonyms are scrubbed
    from the database files. A running bot may still hold up to one flush interval of the
    member's counts in memory: `/privacy forget` (or guildmeter.forget_user) covers those.
    """
    store = obj.open_store()
    try:
        report = (
            plan_forget(store, user_id, guild)
            if dry_run
            else forget_in_store(store, user_id, guild)
        )
    finally:
        store.close()
    _print(report)


def _print(report: ForgetReport) -> None:
    verb = "Deleted" if report.done else "Would delete"
    for rows in report.months:
        console.print(
            f"{verb} in guild {rows.guild_id}, month {rows.month // 100}-{rows.month % 100:02d}: "
            f"{rows.activity_rows:,} hourly counts ({rows.messages:,} messages, "
            f"{rows.voice_seconds / 3600:,.1f} voice hours, {rows.joins:,} joins, "
            f"{rows.parts:,} parts) and {rows.usage_records:,} bot-usage records.",
            highlight=False,
        )
    if not report.months:
        console.print("Nothing of this member is stored in the months not yet anonymised.")
    console.print(
        f"{report.anonymised_months:,} anonymised guild-months hold only random tokens: "
        "nothing there links to the member.",
        highlight=False,
    )
