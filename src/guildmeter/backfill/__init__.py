"""History backfill: counting the messages sent before live counting began, privately.

`Backfill` runs one guild's backfill (the bot's ``/userstats backfill`` and the CLI's
``guildmeter backfill``); `HistorySource` reads Discord through discord.py's HTTP client;
`guildmeter.store.backfill` keeps live starts, cursors and runs.
"""

from __future__ import annotations

from guildmeter.backfill.runner import MAX_DAYS, Backfill, BackfillBusy, Progress
from guildmeter.backfill.source import HistorySource

__all__ = ["MAX_DAYS", "Backfill", "BackfillBusy", "HistorySource", "Progress", "describe"]


def describe(progress: Progress) -> str:
    """One progress or result line for a reply or the log (counts only, no names)."""
    reached = f", back to {progress.reached:%Y-%m-%d}" if progress.reached else ""
    text = (
        f"{progress.messages_counted:,} messages counted ({progress.messages_read:,} read) in "
        f"{progress.channels_done}/{progress.channels_total} channels and threads{reached}"
    )
    if progress.channels_unreadable:
        text += f"; {progress.channels_unreadable} the bot cannot read"
    if progress.skipped_span is not None:
        first, end = progress.skipped_span
        joins = progress.joins_skipped
        also = f" and {joins:,} joins" if joins else ""
        text += (
            f"; {progress.messages_skipped:,} messages{also} of the hours from "
            f"{first:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC not counted again: a KazTron "
            "import had filled them"
        )
    if progress.past_retention is not None:
        joins = progress.joins_discarded
        also = f" and {joins:,} joins" if joins else ""
        text += (
            f"; {progress.messages_discarded:,} messages{also} read but discarded: "
            f"{progress.past_retention.describe()}"
        )
    return text
