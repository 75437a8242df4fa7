"""A simulated server, fed through the real collector, keyring and store.

The clock is simulated: hours are played in order, events inside an hour in time order,
and the counters are flushed at every simulated hour's end, as the bot's flush loop would.
The traffic has a daily rhythm (quiet around 06:00 UTC, busy around 20:00), livelier
weekends, a few heavy posters and many occasional ones, voice sessions that move between
channels, joins and parts (both scaled to the server's size), a bot whose messages must not
be counted, and the bot's own use: commands (prefix and slash, with latencies and a few
failures) and the image and video generations some of them start, so that `guildmeter
stats` and the dashboard's bot-usage tab have something to show. Bot usage draws from its
own random stream: the activity of a given seed is the same with or without it.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from guildmeter.activity import ActivityStats
from guildmeter.store import AnonymisationResult
from guildmeter.timeutil import EPOCH, add_months, month_of, month_start
from guildmeter.usage_records import Generation

__all__ = ["DEMO_GUILD_ID", "DemoSummary", "default_demo_period", "simulate"]

DEMO_GUILD_ID = 100_000_000_000_000_001
_BOT_ID = 100_000_000_000_000_999
_FIRST_USER_ID = 200_000_000_000_000_000
_TEXT_NAMES = [
    "general", "introductions", "art", "music", "gaming", "memes", "help", "off-topic",
    "announcements", "writing", "photography", "food", "pets", "tech", "science", "books",
    "movies", "sports", "travel", "日本語", "español", "bot-spam",
]  # fmt: skip
_VOICE_NAMES = ["Lounge", "Gaming 1", "Gaming 2", "Music 🎵", "Study room"]
#: (command, how it is invoked, share of uses, median latency ms, generation type or None)
_COMMANDS = [
    ("imagine", "slash", 0.42, 380.0, "txt2img"),
    ("upscale", "slash", 0.10, 420.0, "upscale"),
    ("video", "slash", 0.05, 650.0, "txt2vid"),
    ("help", "prefix", 0.13, 35.0, None),
    ("ping", "slash", 0.12, 60.0, None),
    ("userstats report", "prefix", 0.06, 900.0, None),
    ("stats", "slash", 0.07, 140.0, None),
    ("privacy show", "slash", 0.05, 45.0, None),
]  # fmt: skip
_RESOLUTIONS = ["1024x1024", "832x1216", "1216x832", "512x512", "1536x1536"]
_ERRORS = ["CommandOnCooldown", "Timeout", "MissingPermissions", "QueueFull"]


@dataclass
class DemoSummary:
    """What the simulation fed in and what the store did with it."""

    guild_id: int
    start: datetime
    end: datetime
    users: int
    events: Counter[str] = field(default_factory=Counter)
    flushes: int = 0
    rows_written: int = 0
    anonymised: list[AnonymisationResult] = field(default_factory=list)


def default_demo_period(now: datetime) -> tuple[datetime, datetime]:
    """From the first day of last month to the start of the current hour."""
    end = now.replace(minute=0, second=0, microsecond=0)
    return month_start(add_months(month_of(now), -1)), end


def simulate(
    stats: ActivityStats,
    *,
    start: datetime,
    end: datetime,
    guild_id: int = DEMO_GUILD_ID,
    users: int = 400,
    text_channels: int = 20,
    voice_channels: int = 4,
    messages_per_day: int = 3000,
    seed: int = 2018,
    progress: Callable[[int, int], None] | None = None,
    bot_usage: bool = True,
    flush_every_hours: int = 1,
) -> DemoSummary:
    """Play ``start``..``end`` hour by hour; see the module docstring. ``bot_usage`` off:
    no commands or generations (a test that records its own). ``flush_every_hours``: the
    counts are the same, written in fewer, larger flushes (a test on PostgreSQL, where
    each flush is a few round trips)."""
    rng = random.Random(seed)
    sim = _Server(rng, guild_id, users, text_channels, voice_channels, messages_per_day,
                  usage_rng=random.Random(f"bot-usage-{seed}"),
                  command_share=0.03 if bot_usage else 0.0)  # fmt: skip
    for channel_id, name in sim.channel_names.items():
        stats.collector.name_channel(guild_id, channel_id, name)
    summary = DemoSummary(guild_id, start, end, users)
    hours = int((end - start).total_seconds() // 3600)
    queue: list[tuple[float, int, str, tuple[Any, ...]]] = []
    sequence = 0
    for step in range(hours):
        hour_start = start + timedelta(hours=step)
        hour_end = hour_start + timedelta(hours=1)
        for offset, kind, args in sim.events_for_hour(hour_start):
            heapq.heappush(queue, (hour_start.timestamp() + offset, sequence, kind, args))
            sequence += 1
        while queue and queue[0][0] < hour_end.timestamp():
            at, _, kind, args = heapq.heappop(queue)
            when = EPOCH + timedelta(seconds=at)
            follow_up = sim.apply(stats, kind, args, when, summary.events)
            if follow_up is not None:
                delay, next_kind, next_args = follow_up
                heapq.heappush(queue, (at + delay, sequence, next_kind, next_args))
                sequence += 1
        stats.collector.member_total(guild_id, len(sim.members), hour_end - timedelta(seconds=1))
        summary.events["total_users"] += 1
        if (step + 1) % flush_every_hours == 0:
            result = stats.flush(hour_end)
            summary.flushes += 1
            summary.rows_written += result.rows_written
            summary.anonymised.extend(result.anonymised)
        if progress is not None:
            progress(step + 1, hours)
    result = stats.close(end)
    summary.rows_written += result.rows_written
    summary.anonymised.extend(result.anonymised)
    # What the bot's monthly job does next: store the closed months' report snapshots
    # and weekly distinct users.
    from guildmeter.reports.snapshots import build_missing_snapshots
    from guildmeter.store.spans import build_missing

    build_missing_snapshots(stats.store)
    build_missing(stats.store, end)
    return summary


class _Server:
    """The simulated community: who is a member, how active, where they talk."""

    def __init__(
        self,
        rng: random.Random,
        guild_id: int,
        users: int,
        text: int,
        voice: int,
        messages_per_day: int,
        *,
        usage_rng: random.Random,
        command_share: float,
    ) -> None:
        self.rng = rng
        #: Bot usage's own stream: activity does not depend on it.
        self.usage_rng = usage_rng
        #: Commands per message (about 3 %; 0: no bot usage at all).
        self.command_share = command_share
        self.messages_per_day = messages_per_day
        #: Joins, parts and voice sessions scale with the size (tuned for 400 members).
        self.size = users / 400
        self.guild_id = guild_id
        self.text_ids = [guild_id + 1000 + i for i in range(text)]
        self.voice_ids = [guild_id + 2000 + i for i in range(voice)]
        self.channel_names = {
            cid: _TEXT_NAMES[i % len(_TEXT_NAMES)] for i, cid in enumerate(self.text_ids)
        } | {cid: _VOICE_NAMES[i % len(_VOICE_NAMES)] for i, cid in enumerate(self.voice_ids)}
        self.next_user = _FIRST_USER_ID
        self.members: list[int] = []
        self.weight: dict[int, float] = {}
        for _ in range(users):
            self._new_member()
        # Zipf-like channel popularity: #general is busiest.
        self.channel_weights = [1 / (i + 1) ** 0.9 for i in range(text)]
        self.in_voice: set[int] = set()

    def _new_member(self) -> int:
        user = self.next_user
        self.next_user += 1
        self.members.append(user)
        self.weight[user] = self.rng.paretovariate(1.3)  # a few heavy posters
        return user

    def events_for_hour(self, hour: datetime) -> list[tuple[float, str, tuple[Any, ...]]]:
        rng = self.rng
        activity = _rhythm(hour)
        events: list[tuple[float, str, tuple[Any, ...]]] = []
        mean = self.messages_per_day / 24 * activity
        count = max(0, round(rng.gauss(mean, math.sqrt(mean))))
        weights = [self.weight[u] for u in self.members]
        authors = rng.choices(self.members, weights=weights, k=count)
        channels = rng.choices(self.text_ids, weights=self.channel_weights, k=count)
        for author, channel in zip(authors, channels, strict=True):
            events.append((rng.uniform(0, 3600), "msg", (author, channel)))
        if rng.random() < 0.05 * activity:
            events.append((rng.uniform(0, 3600), "bot", (rng.choice(self.text_ids),)))
        for _ in range(_poisson(rng, 0.25 * activity * self.size)):
            events.append((rng.uniform(0, 3600), "join", ()))
        for _ in range(_poisson(rng, 0.18 * activity * self.size)):
            events.append((rng.uniform(0, 3600), "part", ()))
        for _ in range(_poisson(rng, 2.5 * activity * self.size)):
            events.append((rng.uniform(0, 3600), "voice_in", (rng.choice(self.members),)))
        usage = self.usage_rng
        uses = _poisson(usage, mean * self.command_share) if self.command_share else 0
        users = usage.choices(self.members, weights=weights, k=uses)
        for user in users:
            events.append((usage.uniform(0, 3600), "cmd", (user, usage.choice(self.text_ids))))
        return events

    def apply(
        self,
        stats: ActivityStats,
        kind: str,
        args: tuple[Any, ...],
        when: datetime,
        fed: Counter[str],
    ) -> tuple[float, str, tuple[Any, ...]] | None:
        """Feed one simulated event; may schedule a follow-up (voice moves and leaves)."""
        rng, guild = self.rng, self.guild_id
        if kind == "msg":
            author, channel = args
            if author in self.weight:  # may have left the server since it was scheduled
                stats.collector.message(guild, channel, author, when)
                fed["msg"] += 1
        elif kind == "bot":
            stats.collector.message(guild, args[0], _BOT_ID, when, bot=True)
            fed["bot messages (ignored)"] += 1
        elif kind == "join":
            stats.collector.join(guild, self._new_member(), when)
            fed["join"] += 1
        elif kind == "part" and len(self.members) > 10:
            user = self.members.pop(rng.randrange(len(self.members)))
            del self.weight[user]
            if user in self.in_voice:
                self.in_voice.discard(user)
                stats.voice.update(guild, user, None, when)
            stats.collector.part(guild, user, when)
            fed["part"] += 1
        elif kind == "voice_in":
            user = args[0]
            if user in self.in_voice or user not in self.weight:
                return None
            self.in_voice.add(user)
            stats.voice.update(guild, user, rng.choice(self.voice_ids), when)
            fed["voice sessions"] += 1
            return rng.expovariate(1 / 2700), "voice_step", (user,)
        elif kind == "voice_step":
            user = args[0]
            if user not in self.in_voice:
                return None
            choice = rng.random()
            if choice < 0.15:  # moves to another channel
                stats.voice.update(guild, user, rng.choice(self.voice_ids), when)
                return rng.expovariate(1 / 1800), "voice_step", (user,)
            if choice < 0.3:  # mutes: same channel, must change nothing
                stats.voice.update(guild, user, stats.voice.in_voice(guild).get(user), when)
                return rng.expovariate(1 / 1800), "voice_step", (user,)
            self.in_voice.discard(user)
            stats.voice.update(guild, user, None, when)
        elif kind == "cmd":
            self._command(stats, args[0], args[1], when, fed)
        return None

    def _command(
        self, stats: ActivityStats, user: int, channel: int, when: datetime, fed: Counter[str]
    ) -> None:
        """One use of the bot: its latency and outcome, and the generation it may start."""
        usage = self.usage_rng
        name, kind, _share, median_ms, generation = usage.choices(
            _COMMANDS, weights=[c[2] for c in _COMMANDS]
        )[0]
        ok = usage.random() >= 0.03
        stats.usage.command(
            name, guild_id=self.guild_id, channel_id=channel, user_id=user, kind=kind,
            duration_ms=usage.lognormvariate(math.log(median_ms), 0.6), ok=ok,
            error=None if ok else usage.choice(_ERRORS), at=when,
        )  # fmt: skip
        fed["bot commands"] += 1
        if not ok or generation is None:
            return
        video = generation == "txt2vid"
        seconds = usage.lognormvariate(math.log(45.0 if video else 9.0), 0.5)
        stats.usage.generation(
            Generation(
                self.guild_id, user, when, None, usage.choice(_RESOLUTIONS),
                ("detail-tweaker",) if usage.random() < 0.3 else (),
                2.0 if generation == "upscale" else 1.0, seconds, video, generation,
            )
        )  # fmt: skip
        fed["generations"] += 1


def _rhythm(hour: datetime) -> float:
    """Relative activity: a daily wave peaking at 20:00 UTC, weekends 30 % busier."""
    wave = (1 + math.cos(2 * math.pi * (hour.hour - 20) / 24)) / 2
    daily: float = 0.12 + 1.75 * wave**1.6
    return daily * (1.3 if hour.weekday() >= 5 else 1.0)


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method for small means; the normal approximation above 30 (where e^-mean
    would underflow for a big server's commands)."""
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
