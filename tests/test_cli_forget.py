"""``guildmeter forget`` on SQLite and PostgreSQL: a deletion request relayed by Discord."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from guildmeter.activity import ActivityStats
from guildmeter.cli import cli
from guildmeter.privacy.keyring import pseudonym_of
from guildmeter.reports import DateRange, compute_report
from guildmeter.store import Store
from guildmeter.store.rights import RightsStore

from tests.conftest import PgSchema
from tests.helpers import database_bytes

ANN, BOB = 345_678_901_234_567_890, 456_789_012_345_678_901
T0 = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
MAY = DateRange(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> object:
    if backend == "sqlite":
        yield str(tmp_path / "cli.db")
        return
    schema = PgSchema()
    options = quote(f"-csearch_path={schema.name}")
    yield f"{schema.url}?options={options}"
    schema.drop()


def test_forget_from_the_command_line(db_url: str, backend: str, tmp_path: Path) -> None:
    store = Store.open(db_url)
    stats = ActivityStats(store, clock=lambda: T0)
    for guild in (7, 8):
        for minute in range(3):
            stats.collector.message(guild, 1, BOB, T0 + timedelta(minutes=minute))
        stats.collector.message(guild, 1, ANN, T0)
    stats.flush(T0)
    labels = [pseudonym_of(key, BOB) for _g, _m, key in RightsStore(store).live_keys(None)]
    store.close()

    runner = CliRunner()
    dry = runner.invoke(cli, ["--db", db_url, "forget", "--user", str(BOB), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.count("Would delete") == 2 and "3 messages" in dry.output
    assert str(BOB) not in dry.output

    one = runner.invoke(cli, ["--db", db_url, "forget", "--user", str(BOB), "--guild", "7"])
    assert one.exit_code == 0, one.output
    assert one.output.count("Deleted in guild") == 1 and "guild 7," in one.output
    everywhere = runner.invoke(cli, ["--db", db_url, "forget", "--user", str(BOB)])
    assert everywhere.exit_code == 0, everywhere.output
    assert "Deleted in guild 8," in everywhere.output and "guild 7," not in everywhere.output
    again = runner.invoke(cli, ["--db", db_url, "forget", "--user", str(BOB)])
    assert "Nothing of this member is stored" in again.output
    # One line per statement, whatever the width (not wrapped at 80 columns when piped).
    assert all(line.endswith(".") for line in everywhere.output.splitlines()), everywhere.output
    assert "0 anonymised guild-months hold only random tokens" in again.output

    store = Store.open(db_url)
    for guild in (7, 8):
        row = compute_report(store, guild, "full", MAY).rows[0]
        assert (row.messages, row.active_users) == (1, 1)  # ann's message alone
    store.close()
    if backend == "sqlite":
        data = database_bytes(Path(db_url))
        assert all(label.encode() not in data for label in labels)
