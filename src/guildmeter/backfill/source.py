"""Channel history through Discord's REST API, with discord.py's own HTTP client.

discord.py's client honours Discord's rate limits: per-route buckets (it waits when a
bucket's ``X-RateLimit-Remaining`` reaches 0), 429 answers (it sleeps ``retry_after`` and
retries) and the global limit (a global 429 stops every request until it passes). On top
of it a `Pacer` spaces our own requests below the global limit (50 a second), so that a
backfill does not make the host bot's replies wait behind global 429s.

Only plain values leave this module: channel descriptions and ``(message id, author id)``
pairs of messages written by people (bots and webhooks are dropped here).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import discord
from discord.http import HTTPClient

__all__ = ["PAGE_SIZE", "Channel", "HistorySource", "Pacer", "Page"]

#: Messages per request: Discord's maximum.
PAGE_SIZE = 100
_ATTEMPTS = 5  # our retries of a request discord.py gave up on
log = logging.getLogger(__name__)
_THREADS_PER_PAGE = 100

#: Channel types with a message history of their own: text, voice (its chat),
#: announcement, stage; public threads and announcement threads.
_HISTORY_TYPES = {0, 2, 5, 13}
_THREAD_TYPES = {10, 11}
#: Channels whose public threads (forum posts) are read: text, announcement, forum, media.
_THREAD_PARENTS = {0, 5, 15, 16}


@dataclass(frozen=True)
class Channel:
    id: int
    name: str
    type: int
    parent_id: int | None = None

    @property
    def is_thread(self) -> bool:
        return self.type in _THREAD_TYPES


@dataclass(frozen=True)
class Page:
    """One request's answer: people's messages, and where the page ended."""

    rows: list[tuple[int, int]]  # (message id, author id), newest first
    oldest_id: int | None  # the oldest message of the page, whoever wrote it
    size: int  # messages in the page, bots and webhooks included

    @property
    def last(self) -> bool:
        return self.size < PAGE_SIZE


class Pacer:
    """At most ``per_second`` requests a second, evenly spaced, however many tasks ask."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = 0.0

    def slow_down(self) -> None:
        """After a 429 that discord.py's retries did not absorb: a quarter slower."""
        self.interval = min(1.0, max(self.interval, 0.02) * 1.25)

    async def wait(self) -> None:
        if not self.interval:
            return
        now = asyncio.get_running_loop().time()
        at = max(now, self._next)
        self._next = at + self.interval
        if at > now:
            await asyncio.sleep(at - now)


class HistorySource:
    """A guild's channels, threads, messages and members, read with ``http``."""

    def __init__(self, http: HTTPClient, guild_id: int, *, requests_per_second: float = 46.0):
        self.http = http
        self.guild_id = guild_id
        self.pacer = Pacer(requests_per_second)
        self.requests = 0

    async def _call(self, make: Callable[[], Any]) -> Any:
        """One request; when discord.py gives up on it (429s on every retry, or Discord
        failing), wait and try again a few times, slowing our pace."""
        for attempt in range(_ATTEMPTS):
            await self.pacer.wait()
            self.requests += 1
            try:
                return await make()
            except discord.HTTPException as exc:
                if attempt == _ATTEMPTS - 1 or not (exc.status == 429 or exc.status >= 500):
                    raise
                self.pacer.slow_down()
                log.warning("Discord answered %d; retrying in %.0f s", exc.status, 2**attempt)
                await asyncio.sleep(2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def channels(self, oldest: datetime) -> list[Channel]:
        """Every channel and public thread with a history, threads archived before
        ``oldest`` left out (they hold nothing newer)."""
        found: list[Channel] = []
        listed = await self._call(lambda: self.http.get_all_guild_channels(self.guild_id))
        parents = []
        for data in listed:
            kind = int(data.get("type", -1))
            channel = Channel(int(data["id"]), str(data.get("name") or ""), kind)
            if kind in _HISTORY_TYPES:
                found.append(channel)
            if kind in _THREAD_PARENTS:
                parents.append(channel)
        threads: dict[int, Channel] = {}
        active = await self._call(lambda: self.http.get_active_threads(self.guild_id))
        for data in active.get("threads", []):
            self._add_thread(threads, data)
        for parent in parents:
            await self._archived(parent, oldest, threads)
        return found + sorted(threads.values(), key=lambda c: c.id)

    async def _archived(self, parent: Channel, oldest: datetime, into: dict[int, Channel]) -> None:
        before: str | None = None
        while True:
            try:
                answer = await self._call(
                    functools.partial(
                        self.http.get_public_archived_threads, parent.id, before, _THREADS_PER_PAGE
                    )
                )
            except (discord.Forbidden, discord.NotFound):
                return  # a channel the bot cannot read
            listed = answer.get("threads", [])
            stamps = []
            for data in listed:
                stamp = (data.get("thread_metadata") or {}).get("archive_timestamp")
                if stamp:
                    stamps.append(stamp)
                    if datetime.fromisoformat(stamp) < oldest:
                        continue  # archived before the window: nothing to count in it
                self._add_thread(into, data)
            if not answer.get("has_more") or not stamps:
                return
            earliest = min(stamps, key=datetime.fromisoformat)
            if datetime.fromisoformat(earliest) < oldest:
                return
            before = earliest

    @staticmethod
    def _add_thread(into: dict[int, Channel], data: dict[str, Any]) -> None:
        kind = int(data.get("type", -1))
        if kind not in _THREAD_TYPES:
            return  # private threads are not read
        parent = data.get("parent_id")
        into[int(data["id"])] = Channel(
            int(data["id"]),
            str(data.get("name") or ""),
            kind,
            int(parent) if parent is not None else None,
        )

    async def page(self, channel_id: int, before: int) -> Page | None:
        """Up to 100 messages older than ``before``; None when the bot cannot read them."""
        try:
            listed: Sequence[dict[str, Any]] = await self._call(
                lambda: self.http.logs_from(channel_id, PAGE_SIZE, before=before)
            )
        except (discord.Forbidden, discord.NotFound):
            return None
        rows = []
        oldest: int | None = None
        for data in listed:
            mid = int(data["id"])
            if oldest is None or mid < oldest:
                oldest = mid
            author = data.get("author") or {}
            if author.get("bot") or data.get("webhook_id") is not None:
                continue
            rows.append((mid, int(author["id"])))
        return Page(rows, oldest, len(listed))

    async def members(self) -> AsyncIterator[tuple[int, datetime, bool]]:
        """``(user id, joined at, is a bot)`` of every current member (REST, 1,000 a page);
        `discord.Forbidden` without the Server Members intent."""
        after: int | None = None
        while True:
            listed = await self._call(
                functools.partial(self.http.get_members, self.guild_id, 1000, after)
            )
            for data in listed:
                user = data.get("user") or {}
                joined = data.get("joined_at")
                if joined:
                    yield int(user["id"]), datetime.fromisoformat(joined), bool(user.get("bot"))
            if len(listed) < 1000:
                return
            after = max(int((d.get("user") or {})["id"]) for d in listed)
