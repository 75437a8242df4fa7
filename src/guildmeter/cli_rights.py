"""``guildmeter forget``: the bot owner's side of members' rights (deletion requests).

Discord relays deletion requests to bot owners; this deletes the member's rows of every
month not yet anonymised, like ``/privacy forget``. The command's options are declared in
``cli.py`` with the others; the work and its report are here. A ``--guild`` the database
knows nothing about is refused, as everywhere (a typo must not read as "nothing stored").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from guildmeter.cli_guilds import require_known_guild

if TYPE_CHECKING:
    from guildmeter.privacy.rights import ForgetReport
    from guildmeter.store import Store

__all__ = ["run_forget"]


def run_forget(store: Store, user_id: int, guild: int | None, dry_run: bool) -> None:
    """Delete (or, with ``dry_run``, only count) a member's rows and say what was done."""
    from guildmeter.privacy.rights import forget_in_store, plan_forget

    try:
        if guild is not None:
            require_known_guild(store, guild)  # a mistyped id is no "nothing stored"
        report = (
            plan_forget(store, user_id, guild)
            if dry_run
            else forget_in_store(store, user_id, guild)
        )
    finally:
        store.close()
    _print(report)


def _print(report: ForgetReport) -> None:
    from guildmeter.cli import _say  # one line each, as written: not wrapped when piped

    verb = "Deleted" if report.done else "Would delete"
    for rows in report.months:
        _say(
            f"{verb} in guild {rows.guild_id}, month {rows.month // 100}-{rows.month % 100:02d}: "
            f"{rows.activity_rows:,} hourly counts ({rows.messages:,} messages, "
            f"{rows.voice_seconds / 3600:,.1f} voice hours, {rows.joins:,} joins, "
            f"{rows.parts:,} parts) and {rows.usage_records:,} bot-usage records."
        )
    if not report.months:
        _say("Nothing of this member is stored in the months not yet anonymised.")
    months = report.anonymised_months
    _say(
        f"{months:,} anonymised guild-{'month holds' if months == 1 else 'months hold'} only "
        "random tokens: nothing there links to the member."
    )
