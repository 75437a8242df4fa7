"""A database that hangs rather than fails: memory stays bounded, the flush says so."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

from guildmeter.errors import StoreUnavailableError

from tests.ext.conftest import START, Running


async def test_the_high_water_mark_holds_while_a_flush_hangs(running: Running) -> None:
    stats, cog = running.stats, running.cog
    release = threading.Event()
    real_write_batch = stats.store.write_batch

    def hanging_write_batch(batch):  # type: ignore[no-untyped-def]
        release.wait(20)  # the database stopped answering
        return real_write_batch(batch)

    stats.store.write_batch = hanging_write_batch  # type: ignore[method-assign]
    stats.max_counters = 50
    emu, alpha, general = running.emulator, running.alpha, running.channel("general")
    for user in range(60):
        await emu.message(alpha, general, 50_000 + user, START + timedelta(seconds=user))
    await running.settle()
    stuck = asyncio.create_task(cog.flush())  # it drains the 60 counters, then hangs
    await asyncio.sleep(0.3)
    assert not stuck.done()
    await cog.watchdog()  # the watchdog applies the mark the stuck flush cannot
    assert stats.collector.saturated
    held = stats.counters_in_memory  # the 60 messages, and the guilds' member totals
    for user in range(60, 90):
        await emu.message(alpha, general, 50_000 + user, START + timedelta(seconds=user))
    await running.settle()
    assert stats.collector.dropped == 30 and stats.counters_in_memory == held
    release.set()
    assert (await asyncio.wait_for(stuck, 20)).error is None
    assert not stats.collector.saturated  # written: accepting again
    assert sum(stats.store.activity_totals(alpha.id).values()) >= 60


async def test_keys_that_cannot_be_loaded_make_a_failed_flush(running: Running) -> None:
    stats = running.stats

    def down(*_args: object) -> bytes | None:
        raise StoreUnavailableError("database unavailable or busy: injected outage")

    stats.store.get_or_create_key = down  # type: ignore[method-assign]
    await running.emulator.message(running.alpha, running.channel("general"), 1001, START)
    await running.settle()
    result = await running.cog.flush()
    assert result.error is not None and "could not load keys" in result.error
