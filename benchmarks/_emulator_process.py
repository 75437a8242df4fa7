"""The Discord emulator in its own process, for the gateway load benchmark.

Prints one JSON line (port, guild and channel ids) and serves until stdin closes. POST
``/_bench/burst?n=N&users=U`` sends N MESSAGE_CREATE frames (round-robin over guilds,
channels and U users, timestamps within one hour) as fast as the socket takes them, then
answers with the time it took. POST ``/_bench/heavy`` sends heavy slash commands to the
first guild — year-long dumps from its three moderators and ``/stats 365`` from others —
and answers at once; ``/_bench/heavy_answers`` tells how many have been answered.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.discord_emulator import Emulator
from tests.discord_emulator.server import MANAGE_GUILD, FakeInteraction

GUILDS, CHANNELS, USERS = 5, 8, 400
BURST_START = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)


MODERATORS = (10_000, 10_001, 10_002)


def frames(emulator: Emulator, count: int, users: int = USERS) -> list[str]:
    guilds = list(emulator.guilds.values())
    out = []
    for i in range(count):
        guild = guilds[i % len(guilds)]
        channels = list(guild.text_channels)
        user = 10_000 + (i * 7) % users
        when = BURST_START + timedelta(seconds=i * 3600 / count)
        data = emulator.message_payload(guild, channels[i % len(channels)], user, when)
        out.append(json.dumps({"op": 0, "t": "MESSAGE_CREATE", "s": i + 1, "d": data}))
    return out


async def main() -> None:
    emulator = Emulator()
    for g in range(GUILDS):
        users = [(10_000 + u, f"member{u}") for u in range(USERS)]
        emulator.add_guild(f"Guild {g}", [f"chan-{c}" for c in range(CHANNELS)], ["Voice"], users)

    first = next(iter(emulator.guilds.values()))
    moderators = first.add_role("Moderators", MANAGE_GUILD)
    for moderator in MODERATORS:
        first.member_roles[moderator] = [moderators]
    heavy: list[FakeInteraction] = []

    async def send_heavy(_request: web.Request) -> web.Response:
        general = next(iter(first.text_channels))
        year = {"daterange": "2025-12-02 to 2026-12-01"}
        for round_ in range(2):
            for moderator in MODERATORS:
                heavy.append(
                    await emulator.slash(
                        first, general, moderator, "userstats", year, subcommand="dump"
                    )
                )
            for member in range(10_010 + 10 * round_, 10_020 + 10 * round_):
                for _ in range(3):
                    heavy.append(
                        await emulator.slash(first, general, member, "stats", {"days": 365})
                    )
        return web.json_response({"sent": len(heavy)})

    async def heavy_answers(_request: web.Request) -> web.Response:
        answered = [i for i in heavy if i.answered.is_set()]
        dumps = sum(1 for i in answered if any(r.files and "Raw" in r.content for r in i.replies))
        kinds = Counter(i.replies[-1].content[:40] or "(embed)" for i in answered)
        return web.json_response(
            {"sent": len(heavy), "answered": len(answered), "dumps": dumps,
             "errors": len(emulator.errors), "answers": dict(kinds)}
        )  # fmt: skip

    def routes(app: web.Application) -> None:
        app.router.add_post("/_bench/burst", burst)
        app.router.add_post("/_bench/heavy", send_heavy)
        app.router.add_get("/_bench/heavy_answers", heavy_answers)

    async def burst(request: web.Request) -> web.Response:
        count = int(request.query.get("n", "50000"))
        prepared = frames(emulator, count, int(request.query.get("users", str(USERS))))
        start = time.perf_counter()
        for socket in list(emulator._sockets):
            for index, frame in enumerate(prepared):
                await socket.send_str(frame)
                if index % 500 == 0:
                    await asyncio.sleep(0)  # let the heartbeat through
        return web.json_response({"sent": count, "seconds": time.perf_counter() - start})

    await emulator.start(routes)
    print(json.dumps({"port": emulator.port}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await emulator.stop()


if __name__ == "__main__":
    asyncio.run(main())
