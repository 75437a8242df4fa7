"""Heavy-job limits: per member, per guild and in all; a slot is always given back."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest

from guildmeter import jobs
from guildmeter.config import Config
from guildmeter.ext.checks import NotAllowed
from guildmeter.ext.runtime import JobLimits, Runtime
from guildmeter.store import Store
from guildmeter.store.settings import SettingsStore

from tests.ext.conftest import Running

ANN, BOB = 1001, 1002


async def test_limits_per_member_per_guild_and_in_all() -> None:
    limits = JobLimits(per_member=1, per_guild=2, total=3)
    async with limits.slot(1, 10):
        with pytest.raises(NotAllowed, match="You already have"):
            async with limits.slot(1, 10):
                pass
        async with limits.slot(1, 11):
            with pytest.raises(NotAllowed, match="This server already"):
                async with limits.slot(1, 12):
                    pass
            async with limits.slot(2, 10):  # the same member in another guild
                with pytest.raises(NotAllowed, match="The bot is busy"):
                    async with limits.slot(3, 30):
                        pass
                assert limits.running == 3
    assert limits.running == 0


async def test_a_failing_job_gives_its_slot_back() -> None:
    limits = JobLimits(per_member=1, per_guild=1, total=1)
    with pytest.raises(RuntimeError):
        async with limits.slot(1, 10):
            raise RuntimeError("the job failed")
    async with limits.slot(1, 10):
        assert limits.running == 1


async def test_a_killed_worker_process_is_replaced_and_the_job_retried(running: Running) -> None:
    first = await running.slash(BOB, "stats")
    assert first.replies[-1].embeds
    runtime = running.bot.guildmeter_runtime  # type: ignore[attr-defined]
    assert runtime.processes  # the standalone bot: heavy work in worker processes
    for process in list(runtime.heavy_pool._processes.values()):
        os.kill(process.pid, signal.SIGKILL)
    again = await running.slash(ANN, "stats")
    assert again.replies[-1].embeds, again.replies[-1].content


def test_a_host_bot_gets_threads_unless_it_opts_in(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "host.db"))
    settings = SettingsStore(store)
    host = Runtime(Config(), settings)
    assert not host.processes and isinstance(host.heavy_pool, ThreadPoolExecutor)
    opted = Runtime(Config(heavy_work="processes"), settings)
    assert opted.processes and isinstance(opted.heavy_pool, ProcessPoolExecutor)
    for runtime in (host, opted):
        runtime.close()
    store.close()


def test_worker_processes_run_at_a_lower_cpu_priority_than_the_bot(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "nice.db"))
    runtime = Runtime(Config(heavy_work="processes"), SettingsStore(store))
    try:
        # os.nice(0) answers the niceness of the process that runs it.
        worker = runtime.heavy_pool.submit(os.nice, 0).result(timeout=60)
        assert worker >= min(os.nice(0) + jobs.WORKER_NICENESS, 19)
    finally:
        runtime.close()
        store.close()
