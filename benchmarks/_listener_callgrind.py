"""The listener's per-message cost in instructions, for ``valgrind --tool=callgrind``
(instruction counts stay stable on a loaded machine, where timings do not).

Offline (no gateway): five cached guilds, the real `StatsCog` on an in-memory store,
every pseudonym cached, then ``N`` calls of ``on_message`` over the 20,000 messages of
``bench_gateway_load.py`` (its frames, parsed), exactly as it times them. Run it with
``N`` = 0 and, say, 200,000 and divide the difference of the "Collected" totals by ``N``::

    PYTHONHASHSEED=0 valgrind --tool=callgrind python benchmarks/_listener_callgrind.py 0
    PYTHONHASHSEED=0 valgrind --tool=callgrind python benchmarks/_listener_callgrind.py 200000

(with ``PYTHONPATH`` pointing at another checkout's ``src`` to compare two versions).
Without valgrind it prints the microseconds per message (noisy on a shared machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Any

import discord
from discord.ext import commands

from bench_gateway_load import sample_frames
from guildmeter.activity import ActivityStats
from guildmeter.bot import INTENTS
from guildmeter.config import Config
from guildmeter.ext.cog import StatsCog
from guildmeter.ext.runtime import Runtime
from guildmeter.store import Store
from guildmeter.store.settings import SettingsStore

GUILDS, CHANNELS, MEMBERS = 5, 4, 200


def _guild(state: Any, guild_id: int) -> discord.Guild:
    everyone = {"id": str(guild_id), "name": "@everyone", "permissions": "0", "position": 0,
                "color": 0, "hoist": False, "managed": False, "mentionable": False}  # fmt: skip
    data = {
        "id": str(guild_id), "name": "g", "owner_id": "1", "features": [], "emojis": [],
        "stickers": [], "roles": [everyone], "member_count": MEMBERS,
        "channels": [{"id": str(guild_id * 100 + c), "type": 0, "name": f"c{c}", "position": c,
                      "permission_overwrites": []} for c in range(CHANNELS)],
        "members": [{"user": {"id": str(5000 + m), "username": f"u{m}", "discriminator": "0",
                              "global_name": None, "avatar": None, "bot": False},
                     "roles": [], "joined_at": "2020-01-01T00:00:00+00:00", "deaf": False,
                     "mute": False, "flags": 0} for m in range(MEMBERS)],
    }  # fmt: skip
    guild = discord.Guild(data=data, state=state)  # type: ignore[arg-type]
    state._add_guild(guild)
    return guild


def _messages(bot: commands.Bot) -> list[discord.Message]:
    """The benchmark's own MESSAGE_CREATE frames, parsed as discord.py parses them."""
    state = bot._connection
    out = []
    for frame in sample_frames(bot):
        data = json.loads(frame)["d"]
        channel = bot.get_channel(int(data["channel_id"]))
        out.append(discord.Message(state=state, channel=channel, data=data))  # type: ignore[arg-type]
    return out


def _feed(cog: StatsCog, messages: list[discord.Message], order: list[int]) -> None:
    for i in order:
        with contextlib.suppress(StopIteration):  # it never awaits: one step runs it whole
            cog.on_message(messages[i]).send(None)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    bot = commands.Bot(command_prefix=".", intents=INTENTS)
    state = bot._connection
    for g in range(GUILDS):
        _guild(state, 10_000 + g)
    store = Store.open(":memory:")
    stats = ActivityStats(store)
    runtime = Runtime(Config(db=":memory:"), SettingsStore(store))
    cog = StatsCog(bot, stats, runtime)
    messages = _messages(bot)
    warm = list(range(1000))
    _feed(cog, messages, warm)  # the months' keys asked for
    stats.load_keys()
    _feed(cog, messages, warm)  # every pseudonym cached, every channel seen
    order = [i % len(messages) for i in range(n)]
    start = time.perf_counter()
    _feed(cog, messages, order)
    took = time.perf_counter() - start
    if n:
        print(f"{took / n * 1e6:.3f} us per message", file=sys.stderr)
    os._exit(0)  # no teardown: both runs of a pair end the same way


if __name__ == "__main__":
    main()
