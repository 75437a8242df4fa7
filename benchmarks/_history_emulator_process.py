"""The emulator with a long channel history, in its own process, for bench_backfill.

Plays Discord's limits: 100 messages a request, 50 requests a second in all (the global
limit), per-channel buckets. Holds ``--messages`` messages (default 1,000,000) in
``CHANNELS`` channels over the ``DAYS`` days before now, from ``USERS`` members (2 % by
bots). Prints one JSON line (port, guild id, messages) and serves until stdin closes; GET
``/_bench/stats`` answers the requests served and the 429s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from array import array
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.discord_emulator import Emulator
from tests.discord_emulator.history import TEXT, History
from tests.discord_emulator.server import DISCORD_EPOCH_MS

CHANNELS, USERS, DAYS = 20, 5_000, 300


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    emulator = Emulator()
    guild = emulator.add_guild("Big", [], [], [(10_000 + u, f"m{u}") for u in range(50)])
    history = History(emulator, global_per_second=50, bucket_limit=50, bucket_window=1.0)
    now = datetime.now(UTC)
    first = now - timedelta(days=DAYS)
    rng = random.Random(14)
    per_channel = args.messages // CHANNELS
    step_ms = int((now - first).total_seconds() * 1000) // max(1, per_channel)
    start_ms = int(first.timestamp() * 1000) - DISCORD_EPOCH_MS
    for c in range(CHANNELS):
        channel = history.add_channel(guild, f"chan-{c}", TEXT, created=first - timedelta(days=1))
        ids = array("q", ((start_ms + i * step_ms) << 22 | c for i in range(per_channel)))
        authors = array("q", (10_000 + rng.randrange(USERS) for _ in range(per_channel)))
        flags = bytes(1 if rng.random() < 0.02 else 0 for _ in range(per_channel))
        history.extend(channel.id, ids, authors, flags)

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(
            {"message_requests": history.message_requests, "bucket_429s": history.bucket_429s,
             "global_429s": history.global_429s, "errors": emulator.errors[:5]}
        )  # fmt: skip

    def routes(app: web.Application) -> None:
        app.router.add_get("/_bench/stats", stats)
        history.routes(app)

    await emulator.start(routes)
    print(json.dumps({"port": emulator.port, "guild": guild.id,
                      "messages": per_channel * CHANNELS}), flush=True)  # fmt: skip
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await emulator.stop()


if __name__ == "__main__":
    asyncio.run(main())
