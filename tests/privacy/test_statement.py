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


def test_without_privileged_intents_the_statement_claims_only_what_is_counted() -> None:
    from guildmeter.collection import Collection

    def statement(collection: Collection) -> str:
        return privacy_statement(
            guild_name="x" * 500,
            now=datetime(2026, 2, 3, tzinfo=UTC),
            grace=timedelta(0),
            min_cell_users=5,
            aggregates_only=False,
            opted_out=False,
            collection=collection,
        )

    full = statement(Collection())
    assert "your joins and leaves" in full and "Not collected here" not in full
    assert "`.privacy optout`" in full
    minimal = statement(Collection(members=False, message_content=False))
    assert len(minimal) <= 2000
    assert "your joins and leaves" not in minimal
    assert (
        "**Not collected here:** joins and parts: not collected — the bot lacks the Server "
        "Members intent" in minimal
    )
    assert "slash only (prefix commands cannot be read)" in minimal
    assert "`.privacy optout`" not in minimal  # prefix forms cannot be read: not offered
    no_content = statement(Collection(members=True, message_content=False))
    assert "your joins and leaves" in no_content and "`.privacy optout`" not in no_content


def test_the_statement_says_the_retention_in_force() -> None:
    def statement(retention_months: int) -> str:
        return privacy_statement(
            guild_name="x" * 500,
            now=datetime(2026, 2, 3, tzinfo=UTC),
            grace=timedelta(0),
            min_cell_users=5,
            aggregates_only=False,
            opted_out=False,
            retention_months=retention_months,
        )

    assert "no retention period is set" in statement(0)
    kept = statement(6)
    assert len(kept) <= 2000
    assert "for 6 month(s); then they are deleted and only the month's totals" in kept
