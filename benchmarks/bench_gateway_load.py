"""A burst of 50,000 messages over five guilds, through a real gateway, counted exactly.

The emulator runs in its own process (`_emulator_process.py`); this process runs the real
discord.py bot with the extension, on a fresh SQLite database, flushing every second. While
the burst lasts, a probe task measures the event loop's lag (how late a 10 ms sleep wakes
up): that is how long any other event or command of the bot would wait.

Heavy commands, same run: a third burst of 150,000 messages from 20,000 members while
the first guild's three moderators ask for year-long dumps (over four months of seeded
history) and other members spam ``/stats 365``. Its figures carry ``_heavy``: how long the
burst took to be stored, the longest gap between two completed flushes (the goal: at most
two flush intervals), the loop lag, and how the commands were answered.

Listener overhead, same run: the extension's on_message cost per message beside
discord.py's own cost of turning the gateway frame into a Message (json.loads and the
Message constructor) — the part every bot pays before any listener runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import discord
from discord.ext import commands
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from guildmeter.activity import ActivityStats
from guildmeter.bot import INTENTS, create_bot, use_endpoints
from guildmeter.config import Config
from guildmeter.events import EventKind
from guildmeter.store import Store, schema
from guildmeter.zones import Calendars

from _common import emit, peak_rss_mb

MESSAGES = 50_000
HEAVY_MESSAGES, HEAVY_USERS = 150_000, 20_000
FLUSH_SECONDS = 1.0
OVERHEAD_SAMPLE = 20_000


class LagProbe:
    """Sleeps 10 ms again and again and records how late each wake-up is."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            self.lags.append(max(0.0, loop.time() - before - 0.01))

    def stop(self) -> list[float]:
        assert self._task is not None
        self._task.cancel()
        return sorted(self.lags)


def counted_messages(store: Store) -> int:
    act = schema.activity
    with store.engine.connect() as conn:
        total = conn.execute(
            select(func.coalesce(func.sum(act.c.count), 0)).where(act.c.event == int(EventKind.MSG))
        ).scalar()
    return int(total or 0)


def listener_overhead(bot: Any, cog: Any, frames: list[str]) -> dict[str, float]:
    """Per-message cost of discord.py's parse and of our listener, on the same frames."""
    state = bot._connection
    datas = [json.loads(frame)["d"] for frame in frames]
    channels = [bot.get_channel(int(d["channel_id"])) for d in datas]

    start = time.perf_counter()
    for frame, channel in zip(frames, channels, strict=True):
        discord.Message(state=state, channel=channel, data=json.loads(frame)["d"])
    parse = (time.perf_counter() - start) / len(frames)

    messages = [
        discord.Message(state=state, channel=c, data=d)
        for d, c in zip(datas, channels, strict=True)
    ]
    start = time.perf_counter()
    for message in messages:
        with contextlib.suppress(StopIteration):  # it never awaits: one step runs it whole
            cog.on_message(message).send(None)
    listener = (time.perf_counter() - start) / len(messages)
    # Again, every pseudonym cached now: the figure the local clock is compared with.
    start = time.perf_counter()
    for message in messages:
        with contextlib.suppress(StopIteration):
            cog.on_message(message).send(None)
    warm = (time.perf_counter() - start) / len(messages)
    # The same messages in guilds that follow Asia/Kolkata (+5:30), pseudonyms cached.
    collector = cog.stats.collector
    utc_calendars = collector.calendars
    guilds = {m.guild.id for m in messages if m.guild is not None}
    collector.install_calendars(Calendars({g: [(0, "Asia/Kolkata")] for g in guilds}))
    start = time.perf_counter()
    for message in messages:
        with contextlib.suppress(StopIteration):
            cog.on_message(message).send(None)
    local = (time.perf_counter() - start) / len(messages)
    collector.install_calendars(utc_calendars)
    return {
        "discord_parse_us_per_message": parse * 1e6,
        "listener_us_per_message": listener * 1e6,
        "listener_overhead_pct": 100 * listener / parse,
        "listener_overhead_pct_warm": 100 * warm / parse,
        "listener_overhead_pct_local_zone": 100 * local / parse,
        "listener_overhead_pct_baseline": 10.0,  # the budget: at most 10 % on top
    }


async def burst(
    port: int,
    bot: commands.Bot,
    counted: Callable[[], Awaitable[int]],
    *,
    messages: int = MESSAGES,
    users: int | None = None,
    heavy: bool = False,
) -> dict[str, Any]:
    """Start ``bot``, send the burst (and heavy commands), wait until ``counted()`` reaches
    it; lag and timings."""
    task = asyncio.create_task(bot.start("bench-token"))
    await asyncio.wait_for(bot.wait_until_ready(), 30)
    probe = LagProbe()
    probe.start()
    start = time.perf_counter()
    base = f"http://127.0.0.1:{port}/_bench"
    async with aiohttp.ClientSession() as session:
        query = f"n={messages}" + (f"&users={users}" if users else "")

        async def post(path: str) -> Any:
            async with session.post(f"{base}/{path}") as response:
                return await response.json()

        posts = [post(f"burst?{query}")] + ([post("heavy")] if heavy else [])
        sent, *_ = await asyncio.gather(*posts)
        total = 0
        while time.perf_counter() - start < 240:
            await asyncio.sleep(0.25)
            total = await counted()
            if total >= messages:
                break
        elapsed = time.perf_counter() - start
        answers: dict[str, Any] = {}
        if heavy:
            while time.perf_counter() - start < 300:
                async with session.get(f"{base}/heavy_answers") as response:
                    answers = await response.json()
                if answers["answered"] >= answers["sent"]:
                    break
                await asyncio.sleep(0.5)
    lags = probe.stop()
    return {
        "task": task, "sent": sent, "counted": total, "elapsed": elapsed, "lags": lags,
        "answers": answers,
    }  # fmt: skip


def _flush_gaps(stats: ActivityStats) -> list[float]:
    """Record when each flush completes (wrapping `finish`, which runs on the loop)."""
    completed: list[float] = []
    finish = stats.finish

    def recording_finish(result: Any, now: Any = None) -> None:
        finish(result, now)
        if result.error is None:
            completed.append(time.monotonic())

    stats.finish = recording_finish  # type: ignore[method-assign]
    return completed


async def _seeded_burst(
    port: int, db_path: Path, first: tuple[int, int], heavy: bool
) -> tuple[dict[str, Any], list[float]]:
    """The high-cardinality burst into a database seeded with history (see `_seed_history`)."""
    config = Config(db=str(db_path), flush_interval_seconds=FLUSH_SECONDS)
    stats = ActivityStats(Store.open(config.db))
    _seed_history(stats.store, *first)
    seeded = counted_messages(stats.store)
    completed = _flush_gaps(stats)
    bot = create_bot(config, stats, guild_ready_timeout=0.2)

    async def stored() -> int:
        return await asyncio.to_thread(counted_messages, stats.store) - seeded

    figures = await burst(
        port, bot, stored, messages=HEAVY_MESSAGES, users=HEAVY_USERS, heavy=heavy
    )
    await bot.close()
    await asyncio.wait_for(figures["task"], 30)
    stats.store.close()
    return figures, completed


def _seed_history(store: Store, guild_id: int, channel_id: int) -> None:
    """Four months of earlier counts in the first guild: work for the year-long dumps."""
    history = ActivityStats(store)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for day in range(120):
        for user in range(2_000):
            when = start + timedelta(days=day, hours=user % 24)
            history.collector.message(guild_id, channel_id, 90_000 + user, when)
        if day % 10 == 9:
            history.flush(start + timedelta(days=day))


def _lag_figures(lags: list[float], suffix: str = "") -> dict[str, float]:
    if not lags:
        return {}
    return {
        f"loop_lag_max_ms{suffix}": lags[-1] * 1000,
        f"loop_lag_p99_ms{suffix}": lags[int(len(lags) * 0.99)] * 1000,
        f"loop_lag_median_ms{suffix}": lags[len(lags) // 2] * 1000,
    }


async def run(db_path: Path) -> dict[str, Any]:
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_emulator_process.py"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        port = json.loads(child.stdout.readline())["port"]
        use_endpoints(f"http://127.0.0.1:{port}/api/v10", f"ws://127.0.0.1:{port}/gateway")

        # Baseline: the same bot without the extension, one trivial listener to count.
        bare = commands.Bot(command_prefix=".", intents=INTENTS, guild_ready_timeout=0.2)
        seen = [0]

        async def on_message(_message: discord.Message) -> None:
            seen[0] += 1

        bare.add_listener(on_message)

        async def bare_count() -> int:
            return seen[0]

        baseline = await burst(port, bare, bare_count)
        await bare.close()
        await asyncio.wait_for(baseline["task"], 30)

        config = Config(db=str(db_path), flush_interval_seconds=1.0)
        stats = ActivityStats(Store.open(config.db))
        bot = create_bot(config, stats, guild_ready_timeout=0.2)

        async def stored() -> int:
            return await asyncio.to_thread(counted_messages, stats.store)

        measured = await burst(port, bot, stored)
        overhead = listener_overhead(bot, bot.get_cog("Statistics"), sample_frames(bot))
        first = min(bot.guilds, key=lambda g: g.id)  # the emulator's first guild: oldest id
        first = (first.id, first.text_channels[0].id)
        await bot.close()
        await asyncio.wait_for(measured["task"], 30)
        stats.store.close()

        # The same high-cardinality burst without, then with, heavy commands.
        quiet, quiet_gaps = await _seeded_burst(port, db_path.with_name("quiet.db"), first, False)
        loaded, completed = await _seeded_burst(port, db_path.with_name("heavy.db"), first, True)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
    return {
        "messages_sent": measured["sent"]["sent"],
        "messages_counted": measured["counted"],
        "counted_exactly": measured["counted"] == MESSAGES,
        "burst_to_counted_s": measured["elapsed"],
        "burst_to_counted_s_baseline": baseline["elapsed"],
        "messages_per_s": MESSAGES / measured["elapsed"],
        **_lag_figures(measured["lags"]),
        **_lag_figures(baseline["lags"], "_baseline"),
        **overhead,
        "messages_heavy": HEAVY_MESSAGES,
        "messages_counted_heavy": loaded["counted"],
        "counted_exactly_heavy": loaded["counted"] == HEAVY_MESSAGES,
        "burst_to_counted_s_heavy": loaded["elapsed"],
        "flush_gap_max_s_heavy": _max_gap(completed),
        "flush_gap_max_s_heavy_baseline": _max_gap(quiet_gaps),  # the same burst, no commands
        "flush_gap_goal_s": 2 * FLUSH_SECONDS,
        "burst_to_counted_s_heavy_baseline": quiet["elapsed"],
        **_lag_figures(loaded["lags"], "_heavy"),
        "heavy_commands_sent": loaded["answers"].get("sent", 0),
        "heavy_commands_answered": loaded["answers"].get("answered", 0),
        "heavy_dumps_delivered": loaded["answers"].get("dumps", 0),
        "emulator_refusals_heavy": loaded["answers"].get("errors", 0),
        "heavy_answers": loaded["answers"].get("answers", {}),
        "peak_rss_mb": peak_rss_mb(),
    }


def _max_gap(completed: list[float]) -> float:
    """The longest time between two completed flushes while the heavy burst ran."""
    gaps = [b - a for a, b in itertools.pairwise(completed)]
    return max(gaps, default=float("nan"))


def sample_frames(bot: commands.Bot) -> list[str]:
    """MESSAGE_CREATE frames like the burst's, for the guilds and channels the bot knows."""
    frames = []
    guilds = list(bot.guilds)
    for i in range(OVERHEAD_SAMPLE):
        guild = guilds[i % len(guilds)]
        channel = guild.text_channels[i % len(guild.text_channels)]
        member = guild.members[1 + i % (len(guild.members) - 1)]
        data = {
            "id": str(((1_778_414_400_000 + i - 1_420_070_400_000) << 22) | (i % 4096)),
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
        frames.append(json.dumps({"op": 0, "t": "MESSAGE_CREATE", "s": i, "d": data}))
    return frames


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(run(Path(tmp) / "load.db"))
    for key, value in figures.items():
        print(f"{key:>32}: {value:,.3f}" if isinstance(value, float) else f"{key:>32}: {value}")
    emit(figures)


if __name__ == "__main__":
    main()
