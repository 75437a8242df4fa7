"""Voice sessions turned into per-hour voice seconds.

A session is credited to the accumulator in whole seconds, split exactly at the guild's
bucket boundaries — its local hour marks (`guildmeter.zones`) — and so at its local month
boundaries, where the new month's pseudonym applies. Seconds
are counted on integer-second marks so the pieces of a session always add up to its
length. Open sessions are credited up to "now" at every checkpoint, so a long session
shows up hour by hour and a crash loses at most one flush interval.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from guildmeter.collect.accumulator import Accumulator
from guildmeter.errors import InvalidEventError
from guildmeter.events import EventKind

__all__ = ["VoiceTracker"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Session:
    channel_id: int
    since: int  # integer epoch seconds already credited up to


class VoiceTracker:
    """Who is in which voice channel, per guild, and since when."""

    def __init__(self, sink: Accumulator) -> None:
        self._sink = sink
        self._sessions: dict[tuple[int, int], _Session] = {}

    def update(
        self,
        guild_id: int,
        user_id: int,
        channel_id: int | None,
        when: datetime,
        *,
        bot: bool = False,
    ) -> None:
        """A voice state change: ``channel_id`` is the channel now, None when not in voice.

        A mute, deafen or stream toggle arrives with the same channel and changes nothing.
        """
        if bot or user_id in self._sink.ignored_users:
            return
        if channel_id is not None and channel_id in self._sink.ignored_channels:
            channel_id = None
        optouts = self._sink.optouts
        if optouts.active and optouts.blocks(guild_id, user_id):
            channel_id = None  # opted out: an open session ends, none starts
        now = _seconds(when)
        key = (guild_id, user_id)
        session = self._sessions.get(key)
        if session is not None and session.channel_id == channel_id:
            return
        if session is not None:
            self._credit(guild_id, user_id, session, now)
            del self._sessions[key]
        if channel_id is not None:
            self._sessions[key] = _Session(channel_id, now)

    def checkpoint(self, when: datetime) -> None:
        """Credit every open session up to ``when``; sessions stay open."""
        now = _seconds(when)
        for (guild_id, user_id), session in self._sessions.items():
            self._credit(guild_id, user_id, session, now)

    def rebuild(
        self,
        guild_id: int,
        present: Mapping[int, int],
        when: datetime,
        *,
        lost_since: datetime | None = None,
    ) -> None:
        """Reconcile with a snapshot ``{user_id: channel_id}`` of who is in voice now.

        Used on ready and resume. Sessions we still hold for people who are gone are closed
        at ``lost_since`` (when we lost sight of the guild) or ``when``; people found in
        voice whom we did not track start counting now: no time is invented.
        """
        now = _seconds(when)
        close_at = now if lost_since is None else min(now, _seconds(lost_since))
        ignored_channels = self._sink.ignored_channels
        optouts = self._sink.optouts
        wanted = {
            user: channel
            for user, channel in present.items()
            if user not in self._sink.ignored_users
            and channel not in ignored_channels
            and not (optouts.active and optouts.blocks(guild_id, user))
        }
        for key in [k for k in self._sessions if k[0] == guild_id]:
            session = self._sessions[key]
            channel = wanted.get(key[1])
            if channel == session.channel_id:
                continue
            self._credit(guild_id, key[1], session, close_at if channel is None else now)
            del self._sessions[key]
        for user_id, channel_id in wanted.items():
            if (guild_id, user_id) not in self._sessions:
                self._sessions[(guild_id, user_id)] = _Session(channel_id, now)

    def close_all(self, when: datetime) -> None:
        """Credit and end every session (shutdown)."""
        self.checkpoint(when)
        self._sessions.clear()

    def forget(self, guild_id: int | None, user_id: int) -> int:
        """Drop a member's open sessions without crediting them (forget-me)."""
        keys = [k for k in self._sessions if k[1] == user_id and guild_id in (None, k[0])]
        for key in keys:
            del self._sessions[key]
        return len(keys)

    def in_voice(self, guild_id: int) -> dict[int, int]:
        """``{user_id: channel_id}`` of the open sessions in a guild."""
        return {
            user: s.channel_id for (guild, user), s in self._sessions.items() if guild == guild_id
        }

    def __len__(self) -> int:
        return len(self._sessions)

    def _credit(self, guild_id: int, user_id: int, session: _Session, now: int) -> None:
        start = session.since
        if now < start:
            # The clock went backwards: credit nothing now; time resumes from the old mark.
            log.warning("voice clock went back %d s; nothing credited", start - now)
            return
        session.since = now
        calendar = self._sink.calendar(guild_id)
        while start < now:
            bucket = calendar.bucket_of_s(start)
            boundary = min(now, calendar.bucket_end_s(bucket))
            self._sink.add_at_hour(
                EventKind.VOICE, guild_id, session.channel_id, user_id, bucket, boundary - start
            )
            start = boundary


def _seconds(when: datetime) -> int:
    if when.tzinfo is None:
        raise InvalidEventError(
            f"naive datetime {when.isoformat()} — events need a timezone-aware time"
        )
    return math.floor(when.timestamp())
