"""``guildmeter backfill`` from the command line, against the emulator (in a thread of its
own: the command runs its own event loop): it refuses a missing database, and nothing is
written before Discord has answered — a refused token, an unknown server or an API that
cannot be reached leave the database file byte for byte as it was."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from guildmeter.cli import cli
from guildmeter.store import Store
from guildmeter.store.backfill import backfill_runs, live_starts

from tests.discord_emulator import Emulator
from tests.discord_emulator.history import TEXT, History
from tests.discord_emulator.server import FakeGuild
from tests.test_cli_errors import assert_one_line_refusal


@pytest.fixture(autouse=True)
def _restore_discord_endpoints() -> Iterator[None]:
    """The command points discord.py at the emulator; other tests must not inherit it."""
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    base, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    yield
    Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


@pytest.fixture
def discord() -> Iterator[tuple[Emulator, FakeGuild]]:
    """The emulator on a loop in its own thread, a guild with a week of messages."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    emulator = Emulator()
    guild = emulator.add_guild("Alpha", [], [], [(1001, "ann")])
    history = History(emulator)
    now = datetime.now(UTC)
    channel = history.add_channel(guild, "general", TEXT, created=now - timedelta(days=30))
    for hour in range(1, 24 * 7, 3):
        history.add(channel.id, 2000 + hour % 5, now - timedelta(hours=hour))
    asyncio.run_coroutine_threadsafe(emulator.start(history.routes), loop).result(15)
    try:
        yield emulator, guild
    finally:
        asyncio.run_coroutine_threadsafe(emulator.stop(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        loop.close()


def backfill(db: Path | str, guild: int, api_base: str, token: str = "emulated") -> Result:
    args = ["--db", str(db), "backfill", "--guild", str(guild), "--days", "5"]
    return CliRunner().invoke(cli, [*args, "--api-base", api_base], env={"DISCORD_TOKEN": token})


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "bot.db"
    Store.open(str(path)).close()
    return path


def _recorded(db: Path) -> tuple[int, int]:
    store = Store.open(str(db))
    try:
        with store.engine.connect() as conn:
            runs = conn.execute(select(func.count()).select_from(backfill_runs)).scalar()
            starts = conn.execute(select(func.count()).select_from(live_starts)).scalar()
    finally:
        store.close()
    return int(runs or 0), int(starts or 0)


def test_a_backfill_counts_and_records_its_run(
    discord: tuple[Emulator, FakeGuild], db: Path
) -> None:
    emulator, guild = discord
    result = backfill(db, guild.id, emulator.api_base)
    assert result.exit_code == 0, result.output + result.stderr
    assert "Backfill done: 40 messages counted (56 read) in 1/1 channels" in result.output
    assert _recorded(db) == (1, 1)


def test_a_missing_database_is_refused_not_created(
    discord: tuple[Emulator, FakeGuild], tmp_path: Path
) -> None:
    emulator, guild = discord
    typo = tmp_path / "bto.db"
    result = backfill(typo, guild.id, emulator.api_base)
    assert_one_line_refusal(result)
    assert f"no database at {typo}" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failure", ["refused token", "unknown server", "unreachable"])
def test_nothing_is_written_before_discord_has_answered(
    discord: tuple[Emulator, FakeGuild], db: Path, failure: str
) -> None:
    emulator, guild = discord
    before = db.read_bytes()
    if failure == "refused token":
        emulator.bot_token = "the-real-one"
        result = backfill(db, guild.id, emulator.api_base, token="an-old-one")
        message = "Discord refused the token in DISCORD_TOKEN"
    elif failure == "unknown server":
        result = backfill(db, guild.id + 1, emulator.api_base)
        message = "Discord answered 404: Unknown Guild"
    else:
        result = backfill(db, guild.id, "http://127.0.0.1:9/api/v10")
        message = "cannot reach Discord (http://127.0.0.1:9/api/v10)"
    assert_one_line_refusal(result)
    assert message in result.stderr
    assert db.read_bytes() == before
    assert _recorded(db) == (0, 0)
