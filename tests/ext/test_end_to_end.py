"""The real discord.py bot, connected to the local emulator, counting two guilds."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from guildmeter.activity import ActivityStats
from guildmeter.bot import create_bot
from guildmeter.config import Config
from guildmeter.reports import compute_report
from guildmeter.store import Store

from tests.ext.conftest import MAY, START, Running


async def test_messages_joins_parts_and_voice_in_two_guilds_are_counted(running: Running) -> None:
    emu, clock = running.emulator, running.clock
    alpha, beta = list(emu.guilds.values())
    a_general, a_art, _mods = list(alpha.text_channels)
    (b_general,) = beta.text_channels
    (a_lounge,) = alpha.voice_channels
    for minute in range(3):
        await emu.message(alpha, a_general, 1001, START + timedelta(minutes=minute))
    await emu.message(alpha, a_art, 1002, START)
    await emu.message(beta, b_general, 1001, START)
    await emu.message(beta, b_general, 9999, START, bot=True)  # another bot: not counted
    await emu.member_add(alpha, 1003, "dee")
    await emu.member_remove(beta, 2002)
    await running.settle()
    await emu.voice(alpha, 1002, a_lounge)
    await running.settle()
    clock.now = START + timedelta(minutes=25)
    await emu.voice(alpha, 1002, None)
    await running.settle()
    result = await running.cog.flush()
    assert result.error is None

    store = running.stats.store
    full_alpha = compute_report(store, alpha.id, "full", MAY).rows[0]
    assert (full_alpha.messages, full_alpha.active_users, full_alpha.joins) == (4, 2, 1)
    assert full_alpha.voice_man_hours == pytest.approx(25 / 60)
    assert full_alpha.total_users == 4  # bot, ann, bob and dee
    assert compute_report(store, alpha.id, "full", MAY, "art").rows[0].messages == 1
    full_beta = compute_report(store, beta.id, "full", MAY).rows[0]
    assert (full_beta.messages, full_beta.active_users, full_beta.parts) == (1, 1, 1)
    assert full_beta.total_users == 2


async def test_a_restart_mid_voice_session_loses_nothing_and_invents_nothing(
    running: Running, tmp_path: Path
) -> None:
    emu, clock = running.emulator, running.clock
    alpha = next(iter(emu.guilds.values()))
    (lounge,) = alpha.voice_channels
    await emu.voice(alpha, 1001, lounge)
    await running.settle()
    clock.now = START + timedelta(minutes=10)
    await running.bot.close()  # the process stops: a clean shutdown flushes the 10 minutes
    await asyncio.sleep(0.1)

    clock.now = START + timedelta(minutes=30)  # 20 minutes with nobody watching
    config = Config(db=str(tmp_path / "e2e.db"), flush_interval_seconds=3600)
    stats = ActivityStats(Store.open(config.db), clock=clock)
    bot = create_bot(config, stats, guild_ready_timeout=0.05)
    task = asyncio.create_task(bot.start("emulated-token"))
    await asyncio.wait_for(bot.wait_until_ready(), 15)  # sees 1001 already in voice
    clock.now = START + timedelta(minutes=35)
    await emu.voice(alpha, 1001, None)
    await asyncio.sleep(0.2)
    await bot.close()
    await asyncio.wait_for(task, 15)
    seconds = compute_report(stats.store, alpha.id, "full", MAY).rows[0].voice_man_hours * 3600
    assert seconds == pytest.approx(10 * 60 + 5 * 60)
    stats.store.close()


async def test_database_down_during_a_burst_then_back_loses_nothing(running: Running) -> None:
    from tests.helpers import FlakyStore

    flaky = FlakyStore(running.stats.store)
    running.stats.store = flaky
    emu = running.emulator
    alpha = next(iter(emu.guilds.values()))
    general = next(iter(alpha.text_channels))
    flaky.plan = ["before", "after"]  # down, then a commit whose reply is lost
    for burst in range(3):
        for i in range(50):
            await emu.message(
                alpha, general, 1001 + i % 2, START + timedelta(seconds=burst * 60 + i)
            )
        await running.settle()
        result = await running.cog.flush()
        assert (result.error is None) == (burst == 2)
    assert running.stats.waiting_batches == 0
    full = compute_report(flaky, alpha.id, "full", MAY).rows[0]
    assert (full.messages, full.active_users) == (150, 2)


async def test_a_dropped_gateway_resumes_and_keeps_counting(running: Running) -> None:
    emu, clock = running.emulator, running.clock
    alpha = next(iter(emu.guilds.values()))
    general = next(iter(alpha.text_channels))
    (lounge,) = alpha.voice_channels
    await emu.voice(alpha, 1002, lounge)
    await emu.message(alpha, general, 1001, START)
    await running.settle()
    emu.identified.clear()
    await emu.drop_connections()
    for _ in range(200):  # discord.py backs off a little, then resumes
        await asyncio.sleep(0.05)
        if emu._sockets:
            break
    assert emu._sockets, "the client did not come back"
    await running.settle()
    await emu.message(alpha, general, 1001, START + timedelta(minutes=1))
    clock.now = START + timedelta(minutes=20)
    await emu.voice(alpha, 1002, None)
    await running.settle()
    await running.cog.flush()
    full = compute_report(running.stats.store, alpha.id, "full", MAY).rows[0]
    assert full.messages == 2
    assert full.voice_man_hours * 3600 == pytest.approx(20 * 60)
