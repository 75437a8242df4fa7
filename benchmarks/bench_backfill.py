"""The history backfill against the emulator playing Discord's limits.

The emulator (`_history_emulator_process.py`, its own process) holds 1,000,000 messages in
20 channels over 300 days and answers as Discord does: at most 100 messages a request and
50 requests a second (global 429s beyond, per-channel buckets in the headers). This
process runs the real runner (`guildmeter.backfill.Backfill`, what ``guildmeter backfill``
and ``/userstats backfill`` run) with discord.py's HTTP client, on a fresh SQLite database.

Figures: ``backfill_messages_per_s`` (messages read from the history, all of them, per
second of the whole run) beside the ceiling the limits allow (``…_baseline``: 100 × 50 =
5,000 a second), its share of that ceiling, and the resident memory at checkpoints every
250,000 messages (``rss_mb_at_…``: it must stay flat, the history is never held).
Argument: the number of messages (default 1,000,000).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
from discord.http import HTTPClient
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from guildmeter.backfill import Backfill, HistorySource
from guildmeter.bot import use_endpoints
from guildmeter.events import EventKind
from guildmeter.store import Store, schema

from _common import emit, peak_rss_mb

CEILING = 100 * 50  # messages a request × requests a second
CHECKPOINT = 250_000


def rss_mb() -> float:
    """The resident set now (not the peak): what "flat" is about."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        pages = int(handle.read().split()[1])
    return pages * 4096 / 1024 / 1024


async def run(port: int, guild: int, messages: int, db: str) -> dict[str, float]:
    use_endpoints(f"http://127.0.0.1:{port}/api/v10", None)
    store = Store.open(db)
    executor = ThreadPoolExecutor(1, thread_name_prefix="guildmeter-backfill")
    http = HTTPClient(asyncio.get_running_loop())
    await http.static_login("emulated-token")
    figures: dict[str, float] = {}
    try:
        source = HistorySource(http, guild, requests_per_second=46)
        runner = Backfill(store, source, guild, 301, executor=executor, members=None)
        started, cpu = time.perf_counter(), time.process_time()
        task = asyncio.create_task(runner.run())
        next_mark = CHECKPOINT
        while not task.done():
            await asyncio.wait({task}, timeout=0.5)
            read = runner.progress.messages_read
            while read >= next_mark:
                figures[f"rss_mb_at_{next_mark // 1000}k"] = round(rss_mb(), 1)
                print(f"{read:,} messages read, {time.perf_counter() - started:.0f} s, "
                      f"rss {rss_mb():.0f} MB", file=sys.stderr, flush=True)  # fmt: skip
                next_mark += CHECKPOINT
        progress = await task
        elapsed = time.perf_counter() - started
        figures["cpu_s"] = round(time.process_time() - cpu, 1)
    finally:
        await http.close()
        executor.shutdown(wait=True)
    peak_run = peak_rss_mb()  # before the check below reads every row back
    act = schema.activity
    with store.engine.connect() as conn:
        counted = conn.scalar(
            select(func.sum(act.c.count)).where(
                act.c.guild_id == guild, act.c.event == int(EventKind.MSG)
            )
        )
    store.close()
    rate = progress.messages_read / elapsed
    figures = {
        "backfill_messages_per_s": round(rate, 1),
        "backfill_messages_per_s_baseline": CEILING,
        "backfill_share_of_ceiling_pct": round(100 * rate / CEILING, 1),
        "messages_read": progress.messages_read,
        "messages_counted": int(counted or 0),
        "messages_in_history": messages,
        "requests": progress.requests,
        "seconds": round(elapsed, 1),
        **figures,
        "peak_rss_mb": round(peak_run, 1),
    }
    return figures


def main() -> None:
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    emulator = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_history_emulator_process.py")),
         "--messages", str(messages)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert emulator.stdout is not None
        info = json.loads(emulator.stdout.readline())
        with tempfile.TemporaryDirectory() as folder:
            figures = asyncio.run(run(info["port"], info["guild"], info["messages"],
                                      str(Path(folder) / "backfill.db")))  # fmt: skip
        figures.update(asyncio.run(_emulator_stats(info["port"])))
    finally:
        if emulator.stdin is not None:
            emulator.stdin.close()
        emulator.wait(30)
    emit(figures)


async def _emulator_stats(port: int) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/_bench/stats"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        data = await response.json()
    return {"global_429s": data["global_429s"], "bucket_429s": data["bucket_429s"],
            "emulator_errors": len(data["errors"])}  # fmt: skip


if __name__ == "__main__":
    main()
