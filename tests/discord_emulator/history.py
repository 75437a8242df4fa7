"""Channel history for the emulator: the routes that read it, and Discord's rate limits.

Routes (bot token): ``GET /channels/{id}/messages`` (``before``/``after``/``around``, one
at most; ``limit`` 1-100, newest first), ``GET /guilds/{id}/channels``, ``GET
/guilds/{id}/threads/active``, ``GET /channels/{id}/threads/archived/public`` (``before``
an ISO 8601 time, ``limit`` 2-100, ``has_more``), ``GET /guilds/{id}/members`` (``limit``
1-1000, ``after``; 403 without the Server Members intent) and ``PATCH
/channels/{id}/messages/{id}`` (the bot edits its own message). What Discord would refuse
(a limit out of range, two anchors, a forum's messages, a message of another author) gets
Discord's 400 and is recorded in the emulator's ``errors``; a channel the bot cannot read
(``unreadable``) answers 403 Missing Access, as Discord does.

Rate limits as Discord states them: each route (per major parameter: the channel or the
guild) is a bucket of ``bucket_limit`` requests per ``bucket_window`` seconds, told in
``X-RateLimit-*`` headers; beyond it a 429 with ``retry_after``. Every request of the bot
counts against the global limit (``global_per_second``): beyond it a 429 with ``"global":
true``. ``force_429`` makes the next N history reads answer 429 whatever the buckets say.
"""

from __future__ import annotations

import json
import time
from array import array
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.discord_emulator.limits import message_problems
from tests.discord_emulator.server import (
    DISCORD_EPOCH_MS,
    GUILD_MEMBERS,
    Emulator,
    FakeGuild,
    Sent,
    user_payload,
)

__all__ = ["History", "HistoryChannel"]

TEXT, VOICE, ANNOUNCEMENT, ANNOUNCEMENT_THREAD, PUBLIC_THREAD, PRIVATE_THREAD = 0, 2, 5, 10, 11, 12
FORUM = 15


@dataclass
class HistoryChannel:
    """A channel or thread and its messages (ids ascending; flags: 1 bot, 2 webhook)."""

    id: int
    guild_id: int
    name: str
    type: int
    parent_id: int | None = None
    archived_at: datetime | None = None  # threads only: None while active
    ids: array[int] = field(default_factory=lambda: array("q"))
    authors: array[int] = field(default_factory=lambda: array("q"))
    flags: bytearray = field(default_factory=bytearray)

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "name": self.name,
            "guild_id": str(self.guild_id),
            "position": 0,
            "permission_overwrites": [],
            "parent_id": None if self.parent_id is None else str(self.parent_id),
            "last_message_id": str(self.ids[-1]) if self.ids else None,
        }
        if self.type in (ANNOUNCEMENT_THREAD, PUBLIC_THREAD, PRIVATE_THREAD):
            stamp = self.archived_at or datetime(2020, 1, 1, tzinfo=UTC)
            data["thread_metadata"] = {
                "archived": self.archived_at is not None,
                "archive_timestamp": stamp.isoformat(),
                "auto_archive_duration": 1440,
                "locked": False,
            }
            data["owner_id"] = str(self.authors[0]) if self.authors else "0"
            data["message_count"] = len(self.ids)
            data["member_count"] = 1
        return data


class History:
    """Install with ``await emulator.start(history.routes)``."""

    def __init__(
        self,
        emulator: Emulator,
        *,
        global_per_second: int = 50,
        bucket_limit: int = 50,
        bucket_window: float = 1.0,
    ) -> None:
        self.emulator = emulator
        self.global_per_second = global_per_second
        self.bucket_limit = bucket_limit
        self.bucket_window = bucket_window
        self.channels: dict[int, HistoryChannel] = {}
        self.unreadable: set[int] = set()
        self.force_429 = 0
        #: What the bot asked: history reads, 429s answered (bucket and global).
        self.message_requests = 0
        self.bucket_429s = 0
        self.global_429s = 0
        self._recent: deque[float] = deque()
        self._buckets: dict[tuple[str, int], tuple[float, int]] = {}
        self._sequence = 0

    # -- set-up -----------------------------------------------------------------------------------

    def _next_id(self, when: datetime) -> int:
        self._sequence = (self._sequence + 1) % 4096
        return (int(when.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22 | self._sequence

    def adopt(self, guild: FakeGuild) -> None:
        """Give the guild's text and voice channels a history."""
        for cid, name in guild.text_channels.items():
            self.channels.setdefault(cid, HistoryChannel(cid, guild.id, name, TEXT))
        for cid, name in guild.voice_channels.items():
            self.channels.setdefault(cid, HistoryChannel(cid, guild.id, name, VOICE))

    def add_channel(
        self,
        guild: FakeGuild,
        name: str,
        type: int,
        *,
        parent: int | None = None,
        created: datetime,
        archived_at: datetime | None = None,
    ) -> HistoryChannel:
        """A channel, forum or thread created at ``created`` (its id carries the time)."""
        channel = HistoryChannel(
            self._next_id(created), guild.id, name, type, parent, archived_at=archived_at
        )
        self.channels[channel.id] = channel
        if type in (TEXT, ANNOUNCEMENT):  # the gateway's GUILD_CREATE lists it too
            guild.text_channels[channel.id] = name
        elif type == VOICE:
            guild.voice_channels[channel.id] = name
        return channel

    def add(
        self, channel_id: int, user_id: int, when: datetime, *, bot: bool = False,
        webhook: bool = False, message_id: int | None = None,
    ) -> int:  # fmt: skip
        """A message in the channel's history; returns its id."""
        channel = self.channels[channel_id]
        mid = message_id if message_id is not None else self._next_id(when)
        at = bisect_left(channel.ids, mid)
        channel.ids.insert(at, mid)
        channel.authors.insert(at, user_id)
        channel.flags.insert(at, (1 if bot else 0) | (2 if webhook else 0))
        return mid

    def extend(self, channel_id: int, ids: array[int], authors: array[int], flags: bytes) -> None:
        """Many messages at once (ids ascending, all newer than the channel's last)."""
        channel = self.channels[channel_id]
        assert not channel.ids or not ids or ids[0] > channel.ids[-1]
        channel.ids.extend(ids)
        channel.authors.extend(authors)
        channel.flags.extend(flags)

    async def live(
        self, guild: FakeGuild, channel_id: int, user_id: int, when: datetime, *,
        bot: bool = False,
    ) -> int:  # fmt: skip
        """A message sent now: into the history, and to the bot as MESSAGE_CREATE."""
        payload = self.emulator.message_payload(guild, channel_id, user_id, when, bot=bot)
        mid = self.add(channel_id, user_id, when, bot=bot)
        payload["id"] = str(mid)
        await self.emulator.dispatch("MESSAGE_CREATE", payload)
        return mid

    # -- rate limits ------------------------------------------------------------------------------

    def _limited(self, route: str, major: int) -> web.Response | None:
        """The 429 Discord would answer now, or None (the request is counted)."""
        now = time.monotonic()
        recent = self._recent
        while recent and now - recent[0] >= 1.0:
            recent.popleft()
        if len(recent) >= self.global_per_second:
            self.global_429s += 1
            wait = max(0.001, 1.0 - (now - recent[0]))
            return _too_many(
                wait, True, {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"}
            )
        started, used = self._buckets.get((route, major), (now, 0))
        if now - started >= self.bucket_window:
            started, used = now, 0
        if used >= self.bucket_limit or (self.force_429 > 0 and "messages" in route):
            if self.force_429 > 0 and "messages" in route:
                self.force_429 -= 1
            self.bucket_429s += 1
            wait = max(0.001, self.bucket_window - (now - started))
            return _too_many(wait, False, self._bucket_headers(route, 0, wait))
        recent.append(now)
        self._buckets[(route, major)] = (started, used + 1)
        return None

    def _bucket_headers(self, route: str, remaining: int, reset_after: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.bucket_limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": f"bucket-{abs(hash(route)) % 10**8}",
            "X-RateLimit-Scope": "user",
        }

    def _ok(self, data: Any, route: str, major: int) -> web.Response:
        now = time.monotonic()
        started, used = self._buckets.get((route, major), (now, 0))
        reset_after = max(0.0, self.bucket_window - (now - started))
        headers = {
            "Content-Type": "application/json",
            **self._bucket_headers(route, max(0, self.bucket_limit - used), reset_after),
        }
        return web.Response(body=json.dumps(data).encode(), headers=headers)

    def _refuse(self, problem: str, code: int = 50035, status: int = 400) -> web.Response:
        self.emulator.errors.append(problem)
        return _error(problem, code, status)

    # -- routes -----------------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        api = "/api/v10"
        app.router.add_get(api + "/channels/{channel_id}/messages", self._messages)
        app.router.add_patch(api + "/channels/{channel_id}/messages/{message_id}", self._edit)
        app.router.add_get(api + "/guilds/{guild_id}/channels", self._guild_channels)
        app.router.add_get(api + "/guilds/{guild_id}/threads/active", self._active)
        app.router.add_get(api + "/channels/{channel_id}/threads/archived/public", self._archived)
        app.router.add_get(api + "/guilds/{guild_id}/members", self._members)

    async def _messages(self, request: web.Request) -> web.Response:
        cid = int(request.match_info["channel_id"])
        limited = self._limited("messages", cid)
        if limited is not None:
            return limited
        self.message_requests += 1
        channel = self.channels.get(cid)
        if channel is None:
            return _error("Unknown Channel", 10003, 404)
        if cid in self.unreadable:
            return _error("Missing Access", 50001, 403)
        if channel.type == FORUM:
            return self._refuse("Cannot execute action on this channel type", 50024)
        query = request.query
        anchors = [k for k in ("before", "after", "around") if k in query]
        if len(anchors) > 1:
            return self._refuse(f"messages: only one of before/after/around ({anchors})")
        try:
            limit = int(query.get("limit", "50"))
            anchor = int(query[anchors[0]]) if anchors else None
        except ValueError:
            return self._refuse("messages: limit and anchors must be integers")
        if not 1 <= limit <= 100:
            return self._refuse(f"messages: limit must be 1 to 100 (got {limit})")
        ids = channel.ids
        if not anchors or anchors[0] == "before":
            end = len(ids) if anchor is None else bisect_left(ids, anchor)
            picked = range(end - 1, max(-1, end - 1 - limit), -1)
        elif anchors[0] == "after":
            start = bisect_left(ids, anchor + 1)  # type: ignore[operator]
            picked = range(min(len(ids), start + limit) - 1, start - 1, -1)
        else:
            middle = bisect_left(ids, anchor)  # type: ignore[arg-type]
            low = max(0, middle - limit // 2)
            picked = range(min(len(ids), low + limit) - 1, low - 1, -1)
        return self._ok([self._message(channel, i) for i in picked], "messages", cid)

    def _message(self, channel: HistoryChannel, index: int) -> dict[str, Any]:
        mid, author, flags = channel.ids[index], channel.authors[index], channel.flags[index]
        when = datetime.fromtimestamp(((mid >> 22) + DISCORD_EPOCH_MS) / 1000, UTC)
        data: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel.id),
            "author": user_payload(author, f"user{author}", bot=bool(flags & 1)),
            "content": "",
            "timestamp": when.isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
            "components": [],
        }
        if flags & 2:
            data["webhook_id"] = str(author)
        return data

    async def _edit(self, request: web.Request) -> web.Response:
        """The bot edits one of its own messages (a progress message)."""
        cid, mid = int(request.match_info["channel_id"]), int(request.match_info["message_id"])
        limited = self._limited("edit", cid)
        if limited is not None:
            return limited
        payload = await request.json()
        problems = message_problems(payload, {})
        if problems:
            self.emulator.errors.extend(problems)
            return _error("Invalid Form Body", 50035, 400)
        emulator = self.emulator
        async with emulator.message_posted:
            emulator.sent.append(
                Sent(cid, payload.get("content") or "", payload.get("embeds") or [], {},
                     allowed_mentions=payload.get("allowed_mentions"), edit_of=mid)
            )  # fmt: skip
            emulator.message_posted.notify_all()
        message = emulator._message(cid, payload, {})
        message["id"] = str(mid)
        return self._ok(message, "edit", cid)

    def _guild(self, request: web.Request) -> FakeGuild | None:
        return self.emulator.guilds.get(int(request.match_info["guild_id"]))

    async def _guild_channels(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        limited = self._limited("guild_channels", guild.id if guild else 0)
        if limited is not None:
            return limited
        if guild is None:
            return _error("Unknown Guild", 10004, 404)
        listed = [
            c.payload()
            for c in self.channels.values()
            if c.guild_id == guild.id and c.type not in (ANNOUNCEMENT_THREAD, PUBLIC_THREAD,
                                                          PRIVATE_THREAD)
        ]  # fmt: skip
        return self._ok(listed, "guild_channels", guild.id)

    async def _active(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        limited = self._limited("active_threads", guild.id if guild else 0)
        if limited is not None:
            return limited
        if guild is None:
            return _error("Unknown Guild", 10004, 404)
        threads = [
            c.payload()
            for c in self.channels.values()
            if c.guild_id == guild.id and c.parent_id is not None and c.archived_at is None
            and c.type in (ANNOUNCEMENT_THREAD, PUBLIC_THREAD, PRIVATE_THREAD)
        ]  # fmt: skip
        return self._ok({"threads": threads, "members": []}, "active_threads", guild.id)

    async def _archived(self, request: web.Request) -> web.Response:
        cid = int(request.match_info["channel_id"])
        limited = self._limited("archived_threads", cid)
        if limited is not None:
            return limited
        if cid not in self.channels:
            return _error("Unknown Channel", 10003, 404)
        if cid in self.unreadable:
            return _error("Missing Access", 50001, 403)
        try:
            limit = int(request.query.get("limit", "50"))
            before = (
                datetime.fromisoformat(request.query["before"])
                if "before" in request.query
                else None
            )
        except ValueError:
            return self._refuse("archived threads: limit must be an integer, before a time")
        if not 2 <= limit <= 100:
            return self._refuse(f"archived threads: limit must be 2 to 100 (got {limit})")
        archived = sorted(
            (
                c
                for c in self.channels.values()
                if c.parent_id == cid and c.archived_at is not None and c.type != PRIVATE_THREAD
                and (before is None or c.archived_at < before)
            ),
            key=lambda c: c.archived_at or datetime.min.replace(tzinfo=UTC),
            reverse=True,
        )  # fmt: skip
        page = archived[:limit]
        return self._ok(
            {"threads": [c.payload() for c in page], "members": [],
             "has_more": len(archived) > limit},
            "archived_threads",
            cid,
        )  # fmt: skip

    async def _members(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        limited = self._limited("members", guild.id if guild else 0)
        if limited is not None:
            return limited
        if guild is None:
            return _error("Unknown Guild", 10004, 404)
        if not self.emulator.allowed_intents & GUILD_MEMBERS:
            return _error("Missing Access", 50001, 403)
        try:
            limit = int(request.query.get("limit", "1"))
            after = int(request.query.get("after", "0"))
        except ValueError:
            return self._refuse("members: limit and after must be integers")
        if not 1 <= limit <= 1000:
            return self._refuse(f"members: limit must be 1 to 1000 (got {limit})")
        ids = sorted(uid for uid in guild.members if uid > after)[:limit]
        return self._ok([guild.member_payload(uid) for uid in ids], "members", guild.id)


def _error(message: str, code: int, status: int) -> web.Response:
    return web.Response(
        body=json.dumps({"message": message, "code": code}).encode(),
        status=status,
        headers={"Content-Type": "application/json"},
    )


def _too_many(retry_after: float, is_global: bool, headers: dict[str, str]) -> web.Response:
    return web.Response(
        body=json.dumps(
            {"message": "You are being rate limited.", "retry_after": round(retry_after, 3),
             "global": is_global}
        ).encode(),
        status=429,
        headers={"Content-Type": "application/json", "Via": "1.1 google",
                 "Retry-After": str(max(1, round(retry_after))), **headers},
    )  # fmt: skip
