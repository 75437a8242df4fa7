"""The listener's per-message cost in instructions, for ``valgrind --tool=callgrind``
(instruction counts stay stable on a loaded machine, where timings do not).

Offline (no gateway): five cached guilds, the real `StatsCog` on an in-memory store,
every pseudonym cached, then ``N`` calls of ``on_message`` over 21,000 prebuilt messages
exactly as ``bench_gateway_load.py`` times them. Run it with ``N`` = 0 and, say, 200,000
and divide the difference of the "Collected" totals by ``N``::

    PYTHONHASHSEED=0 valgrind --tool=callgrind python benchmarks/_listener_callgrind.py 0
    PYTHONHASHSEED=0 valgrind --tool=callgrind python benchmarks/_listener_callgrind.py 200000

(with ``PYTHONPATH`` pointing at another checkout's ``src`` to compare two versions).
Without valgrind it prints the microseconds per message (noisy on a shared machine).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

import discord
from discord.ext import commands

from guildmeter.activity import ActivityStats
from guildmeter.bot import INTENTS
from guildmeter.config import Config
from guildmeter.ext.cog import StatsCog
from guildmeter.ext.runtime import Runtime
from guildmeter.store import Store
from guildmeter.store.settings import SettingsStore

GUILDS, CHANNELS, MEMBERS, PREBUILT = 5, 4, 200, 21_000


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


def _messages(state: Any, guilds: list[discord.Guild]) -> list[discord.Message]:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    out = []
    for i in range(PREBUILT):
        guild = guilds[i % len(guilds)]
        channel = guild.text_channels[i % len(guild.text_channels)]
        member = guild.members[i % len(guild.members)]
        data = {
            "id": str(((now_ms - 60_000 + i % 1000 - 1_420_070_400_000) << 22) | (i % 4096)),
            "channel_id": str(channel.id), "guild_id": str(guild.id),
            "author": {"id": str(member.id), "username": member.name, "discriminator": "0",
                       "global_name": None, "avatar": None, "bot": False},
            "member": {"roles": [], "joined_at": "2020-01-01T00:00:00+00:00", "deaf": False,
                       "mute": False, "flags": 0},
            "content": "hello", "timestamp": "2026-05-10T12:00:00+00:00",
            "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
            "mention_roles": [], "attachments": [], "embeds": [], "pinned": False, "type": 0,
            "flags": 0, "components": [],
        }  # fmt: skip
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
    guilds = [_guild(state, 10_000 + g) for g in range(GUILDS)]
    store = Store.open(":memory:")
    stats = ActivityStats(store)
    runtime = Runtime(Config(db=":memory:"), SettingsStore(store))
    cog = StatsCog(bot, stats, runtime)
    messages = _messages(state, guilds)
    warm = list(range(1000))
    _feed(cog, messages, warm)  # the months' keys asked for
    stats.load_keys()
    _feed(cog, messages, warm)  # every pseudonym cached, every channel seen
    order = [i % PREBUILT for i in range(n)]
    start = time.perf_counter()
    _feed(cog, messages, order)
    took = time.perf_counter() - start
    if n:
        print(f"{took / n * 1e6:.3f} us per message", file=sys.stderr)
    os._exit(0)  # no teardown: both runs of a pair end the same way


if __name__ == "__main__":
    main()
