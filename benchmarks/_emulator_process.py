"""The Discord emulator in its own process, for the gateway load benchmark.

Prints one JSON line (port, guild and channel ids) and serves until stdin closes. POST
``/_bench/burst?n=N`` sends N MESSAGE_CREATE frames (round-robin over guilds, channels and
users, timestamps within one hour) as fast as the socket takes them, then answers with the
time it took.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.discord_emulator import Emulator

GUILDS, CHANNELS, USERS = 5, 8, 400
BURST_START = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)


def frames(emulator: Emulator, count: int) -> list[str]:
    guilds = list(emulator.guilds.values())
    out = []
    for i in range(count):
        guild = guilds[i % len(guilds)]
        channels = list(guild.text_channels)
        user = 10_000 + (i * 7) % USERS
        when = BURST_START + timedelta(seconds=i * 3600 / count)
        data = emulator.message_payload(guild, channels[i % len(channels)], user, when)
        out.append(json.dumps({"op": 0, "t": "MESSAGE_CREATE", "s": i + 1, "d": data}))
    return out


async def main() -> None:
    emulator = Emulator()
    for g in range(GUILDS):
        users = [(10_000 + u, f"member{u}") for u in range(USERS)]
        emulator.add_guild(f"Guild {g}", [f"chan-{c}" for c in range(CHANNELS)], ["Voice"], users)

    async def burst(request: web.Request) -> web.Response:
        count = int(request.query.get("n", "50000"))
        prepared = frames(emulator, count)
        start = time.perf_counter()
        for socket in list(emulator._sockets):
            for index, frame in enumerate(prepared):
                await socket.send_str(frame)
                if index % 500 == 0:
                    await asyncio.sleep(0)  # let the heartbeat through
        return web.json_response({"sent": count, "seconds": time.perf_counter() - start})

    await emulator.start(lambda app: app.router.add_post("/_bench/burst", burst))
    print(json.dumps({"port": emulator.port}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await emulator.stop()


if __name__ == "__main__":
    asyncio.run(main())
