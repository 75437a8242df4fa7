"""The privacy statement: its dates come from one month-end function, it fits Discord."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import guildmeter
from guildmeter.privacy.statement import key_destroyed_at, month_end, privacy_statement

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_key_dies_at_month_end_plus_the_grace() -> None:
    assert month_end(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    assert key_destroyed_at(datetime(2026, 2, 3, tzinfo=UTC), timedelta(minutes=90)) == datetime(
        2026, 3, 1, 1, 30, tzinfo=UTC
    )


def test_the_statement_fits_discord_and_names_the_date() -> None:
    text = privacy_statement(
        guild_name="x" * 500,
        now=datetime(2026, 2, 3, tzinfo=UTC),
        grace=timedelta(minutes=90),
        min_cell_users=7,
        aggregates_only=True,
        opted_out=True,
    )
    assert len(text) <= 2000
    assert "2026-03-01 01:30 UTC" in text and "fewer than 7" in text
    assert "only the month's aggregate counts are kept" in text and "opted out" in text


def test_the_readme_carries_the_host_bots_statement_word_for_word() -> None:
    quoted = " ".join(
        line.removeprefix("> ") for line in README.read_text().splitlines() if line.startswith("> ")
    )
    assert guildmeter.END_USER_DATA_STATEMENT in quoted
