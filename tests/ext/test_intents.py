"""Running without privileged intents: Discord refuses them (close 4014), the bot goes on.

The real discord.py bot against the emulator, started the way ``guildmeter run`` starts
it (`guildmeter.intents.start_with_fallback`), with the application granted fewer
privileged intents than asked for.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import discord
import pytest
from discord.ext import commands

from guildmeter.activity import ActivityStats
from guildmeter.bot import create_bot, use_endpoints
from guildmeter.config import Config
from guildmeter.events import EventKind
from guildmeter.intents import start_with_fallback
from guildmeter.reports import compute_report
from guildmeter.store import Store

from tests.discord_emulator import Emulator
from tests.discord_emulator.server import (
    GUILD_MEMBERS,
    MANAGE_GUILD,
    MESSAGE_CONTENT,
    FakeGuild,
    FakeInteraction,
)
from tests.ext.conftest import MAY, START
from tests.helpers import Clock

ANN, BOB = 1001, 1002
DAY = f"{START:%Y-%m-%d}"
ALL = GUILD_MEMBERS | MESSAGE_CONTENT


@dataclass
class Started:
    emulator: Emulator
    bots: list[commands.Bot]
    stats: ActivityStats
    clock: Clock

    @property
    def bot(self) -> commands.Bot:
        return self.bots[-1]

    @property
    def guild(self) -> FakeGuild:
        return next(iter(self.emulator.guilds.values()))

    def channel(self, name: str) -> int:
        return next(c for c, n in self.guild.text_channels.items() if n == name)

    @property
    def cog(self) -> Any:
        cog = self.bot.get_cog("Statistics")
        assert cog is not None
        return cog

    async def settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0.01)

    async def slash(self, name: str, subcommand: str | None = None, **options: Any) -> Any:
        interaction: FakeInteraction = await self.emulator.slash(
            self.guild, self.channel("mods"), ANN, name, dict(options), subcommand=subcommand
        )
        await asyncio.wait_for(interaction.answered.wait(), 15)
        await self.settle()
        return interaction


Starter = Callable[[int], Coroutine[Any, Any, Started]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Starter]:
    """``await start(allowed)``: the bot, with the application granted ``allowed`` intents."""
    emulator = Emulator()
    guild = emulator.add_guild(
        "Alpha", ["general", "mods"], ["Lounge"], [(ANN, "ann"), (BOB, "bob")]
    )
    guild.member_roles[ANN] = [guild.add_role("Moderators", MANAGE_GUILD)]
    await emulator.start()
    use_endpoints(emulator.api_base, emulator.gateway_url)
    clock = Clock(START)
    config = Config(db=str(tmp_path / "intents.db"), flush_interval_seconds=3600)
    stats = ActivityStats(Store.open(config.db), clock=clock)
    bots: list[commands.Bot] = []
    tasks: list[asyncio.Task[None]] = []

    def make_bot(intents: discord.Intents) -> commands.Bot:
        bot = create_bot(config, stats, intents=intents, guild_ready_timeout=0.05)
        bots.append(bot)
        return bot

    async def starter(allowed: int) -> Started:
        emulator.allowed_intents = allowed
        tasks.append(asyncio.create_task(start_with_fallback(make_bot, "emulated-token")))
        await asyncio.wait_for(emulator.identified.wait(), 15)
        await asyncio.wait_for(bots[-1].wait_until_ready(), 15)
        started = Started(emulator, bots, stats, clock)
        await started.settle()
        return started

    yield starter
    for bot in bots:
        await bot.close()
    for task in tasks:
        await asyncio.wait_for(task, 15)
    await emulator.stop()
    stats.store.close()
    assert emulator.errors == []


async def test_both_privileged_intents_refused_reconnects_and_keeps_counting(
    start: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    run = await start(0)
    emu, guild = run.emulator, run.guild
    # asked for both, then Server Members alone, then neither: each refused but the last
    assert emu.identify_intents[0] & ALL == ALL
    assert [i & ALL for i in emu.identify_intents] == [ALL, GUILD_MEMBERS, 0]
    assert not run.bot.intents.members and not run.bot.intents.message_content
    assert "reconnecting without Message Content" in caplog.text
    assert caplog.text.count("guildmeter collects:") == 1  # said once, when connected
    assert "Discord refused the Server Members intent" in caplog.text
    assert "joins and parts: not collected — the bot lacks the Server Members intent" in (
        caplog.text
    )
    for _ in range(100):  # the hourly task's first round, right after connecting
        if emu.count_fetches:
            break
        await asyncio.sleep(0.05)
    assert emu.count_fetches == 1
    (lounge,) = guild.voice_channels
    for minute in range(3):
        await emu.message(guild, run.channel("general"), ANN, START + timedelta(minutes=minute))
    await emu.message(guild, run.channel("general"), BOB, START)
    await emu.member_add(guild, 1003, "dee")  # Discord sends no GUILD_MEMBER_ADD now
    await emu.member_add(guild, 1004, "eve")
    await emu.voice(guild, BOB, lounge)
    await run.settle()
    run.clock.now = START + timedelta(minutes=30)
    await emu.voice(guild, BOB, None)
    fetches = emu.count_fetches
    assert await run.cog.refresh_member_totals() == 1  # what the hourly task does
    assert emu.count_fetches == fetches + 1
    assert (await run.cog.flush()).error is None

    full = compute_report(run.stats.store, guild.id, "full", MAY).rows[0]
    assert (full.messages, full.active_users) == (4, 2)
    assert full.voice_man_hours * 3600 == pytest.approx(30 * 60)
    assert full.total_users == 5  # the approximate count: bot, ann, bob, dee, eve
    assert (full.joins, full.parts) == (None, None)

    interaction = await run.slash("userstats", "report", type="full", channel="all", daterange=DAY)
    (reply,) = interaction.replies
    fields = {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}
    assert fields["Delta users"].startswith("—")
    assert fields["Messages"] == "4" and fields["Total users"] == "5"
    assert "Server Members intent" in reply.embeds[0]["footer"]["text"]


async def test_message_content_refused_keeps_joins_and_answers_slash_commands(
    start: Starter,
) -> None:
    run = await start(GUILD_MEMBERS)
    emu, guild = run.emulator, run.guild
    assert [i & ALL for i in emu.identify_intents] == [ALL, GUILD_MEMBERS]
    assert run.bot.intents.members and not run.bot.intents.message_content
    await emu.message(guild, run.channel("general"), ANN, START)
    await emu.member_add(guild, 1003, "dee")
    await emu.member_remove(guild, BOB)
    await run.settle()
    assert (await run.cog.flush()).error is None
    full = compute_report(run.stats.store, guild.id, "full", MAY).rows[0]
    assert (full.messages, full.joins, full.parts, full.total_users) == (1, 1, 1, 3)

    # A prefix command arrives with empty content: nothing can answer it.
    before = len(emu.sent)
    await emu.message(guild, run.channel("mods"), ANN, START, content=".statsconfig")
    await asyncio.sleep(0.3)
    assert len(emu.sent) == before
    # Discord still shows the bot a message that mentions it: that prefix is read.
    mention = f"<@{emu.bot_user['id']}> statsconfig"
    await emu.message(guild, run.channel("mods"), ANN, START, content=mention, mentions_bot=True)
    answer = (await emu.wait_for_post(before + 1))[before]
    assert "Moderator channels" in answer.content

    interaction = await run.slash("statsconfig", "show")
    text = interaction.replies[0].content
    assert "joins and parts: collected" in text
    assert "commands: slash only (prefix commands cannot be read)" in text
    privacy = await run.slash("privacy", "show")
    assert "prefix" in privacy.replies[0].content
    assert "slash only" in privacy.replies[0].content


async def test_granted_intents_are_used_as_asked(start: Starter) -> None:
    run = await start(ALL)
    assert [i & ALL for i in run.emulator.identify_intents] == [ALL]
    assert run.bot.intents.members and run.bot.intents.message_content
    assert run.emulator.count_fetches == 0  # members are live: no approximate counts


@pytest.mark.parametrize(
    ("config", "identified"),
    [
        ("", [ALL, GUILD_MEMBERS, 0]),
        ('intents = "no-message-content"\n', [GUILD_MEMBERS, 0]),
        ('intents = "minimal"\n', [0]),
    ],
)
async def test_guildmeter_run_falls_back_and_logs_what_is_lost(
    tmp_path: Path, config: str, identified: list[int]
) -> None:
    """The command itself, in its own process, with no privileged intent granted."""
    emulator = Emulator()
    emulator.add_guild("Alpha", ["general"], [], [(ANN, "ann")])
    emulator.allowed_intents = 0
    await emulator.start()
    settings = tmp_path / "guildmeter.toml"
    settings.write_text(config, encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "guildmeter", "--db", str(tmp_path / "run.db"),
        "--config", str(settings), "run",
        "--api-base", emulator.api_base, "--gateway", emulator.gateway_url,
        env={**os.environ, "DISCORD_TOKEN": "emulated-token"},
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    lines: list[str] = []
    try:
        while not any("guildmeter: commands: slash only" in line for line in lines):
            line = await asyncio.wait_for(process.stderr.readline(), 30)
            assert line, "guildmeter run ended early:\n" + "".join(lines)
            lines.append(line.decode())
    finally:
        process.send_signal(signal.SIGINT)
        rest = await asyncio.wait_for(process.communicate(), 30)
        await emulator.stop()
    assert process.returncode == 0, rest
    assert [i & ALL for i in emulator.identify_intents] == identified
    refusals = [line for line in lines if "Discord refused" in line]
    assert len(refusals) == len(identified) - 1, "".join(lines)  # one line per refusal
    if len(identified) > 1:
        assert "Discord refused the Server Members intent" in refusals[-1]
        assert "joins and parts are no longer collected" in refusals[-1]
    text = "".join(lines)
    assert "joins and parts: not collected — the bot lacks the Server Members intent" in text
    assert "Traceback" not in text


async def test_hours_run_without_server_members_are_recorded_once_each(
    start: Starter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import select

    from guildmeter.reports import DateRange
    from guildmeter.store.coverage import uncollected_hours
    from guildmeter.timeutil import hour_index

    run = await start(0)
    module = sys.modules[type(run.cog).__module__]
    written: list[int] = []
    real = module.mark_uncollected

    def spy(store: Store, marks: Any) -> int:
        written.append(len(marks))
        return int(real(store, marks))

    monkeypatch.setattr(module, "mark_uncollected", spy)
    assert (await run.cog.flush()).error is None
    run.clock.now = START + timedelta(hours=2, minutes=5)
    for _ in range(2):
        assert (await run.cog.flush()).error is None
    assert written == [1, 2]  # START's hour, then the two after it; the last flush: nothing
    table = uncollected_hours
    with run.stats.store.engine.connect() as conn:
        hours = list(conn.scalars(select(table.c.hour).where(table.c.guild_id == run.guild.id)))
    first = hour_index(START)
    assert sorted(hours) == [first, first + 1, first + 2]
    # Days no bot ran are not marked: "0 joins" there means what it always meant.
    before = DateRange(START - timedelta(days=5), START - timedelta(days=4))
    assert compute_report(run.stats.store, run.guild.id, "full", before).rows[0].joins == 0


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
async def test_guildmeter_run_flushes_everything_when_stopped(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """``docker stop`` sends SIGTERM: what memory holds must reach the database, as on
    Ctrl-C (the flush interval is an hour, so only the final flush can write them)."""
    emulator = Emulator()
    guild = emulator.add_guild("Alpha", ["general"], [], [(ANN, "ann")])
    await emulator.start()
    settings = tmp_path / "guildmeter.toml"
    settings.write_text("flush_interval_seconds = 3600\n", encoding="utf-8")
    db = tmp_path / "run.db"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "guildmeter", "--db", str(db), "--config", str(settings), "run",
        "--api-base", emulator.api_base, "--gateway", emulator.gateway_url,
        env={**os.environ, "DISCORD_TOKEN": "emulated-token"},
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await asyncio.wait_for(emulator.identified.wait(), 30)
        await asyncio.sleep(1.0)  # the bot handles READY and the guild
        for _ in range(50):
            await emulator.message(guild, next(iter(guild.text_channels)), ANN)
        await asyncio.sleep(1.0)
    finally:
        process.send_signal(stop)
        rest = await asyncio.wait_for(process.communicate(), 60)
        await emulator.stop()
    assert process.returncode == 0, rest
    assert b"voice will NOT be supported" not in rest[1]  # the bot never joins voice
    store = Store.open(str(db))
    try:
        messages = sum(
            count for (_h, event, _c, _l), count in store.activity_totals(guild.id).items()
            if event == int(EventKind.MSG)
        )  # fmt: skip
    finally:
        store.close()
    assert messages == 50
