"""A local Discord emulator on 127.0.0.1 that the real, unpatched discord.py connects to.

Gateway v10: HELLO, heartbeat/ACK, IDENTIFY → READY and one GUILD_CREATE per guild (with
every member, so the client does not ask for chunks), RESUME → RESUMED, and dispatches.
REST: the routes the bot uses. Facts it honours: discord.py parses a body as JSON only when
Content-Type is exactly ``application/json``; message content is limited to 2,000
characters. A payload Discord would refuse gets a 400 and is recorded in ``errors``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

DISCORD_EPOCH_MS = 1_420_070_400_000
_counter = itertools.count(1)


def snowflake(when: datetime | None = None) -> int:
    """A snowflake id carrying ``when`` (discord.py derives created_at from it)."""
    moment = when or datetime.now(UTC)
    return (int(moment.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22 | (next(_counter) % 4096)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": None,
        "avatar": None,
        "bot": bot,
    }


@dataclass
class FakeGuild:
    id: int
    name: str
    text_channels: dict[int, str]
    voice_channels: dict[int, str]
    members: dict[int, dict[str, Any]] = field(default_factory=dict)
    voice: dict[int, int] = field(default_factory=dict)  # user -> voice channel

    def member_payload(self, user_id: int) -> dict[str, Any]:
        return {
            "user": self.members[user_id],
            "roles": [],
            "joined_at": "2020-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
        }

    def voice_payload(self, user_id: int, channel_id: int | None) -> dict[str, Any]:
        return {
            "guild_id": str(self.id),
            "channel_id": None if channel_id is None else str(channel_id),
            "user_id": str(user_id),
            "member": self.member_payload(user_id),
            "session_id": f"s{user_id}",
            "deaf": False,
            "mute": False,
            "self_deaf": False,
            "self_mute": False,
            "self_video": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }

    def create_payload(self) -> dict[str, Any]:
        channels = [
            {"id": str(cid), "type": 0, "name": name, "position": i, "guild_id": str(self.id),
             "permission_overwrites": [], "nsfw": False, "parent_id": None}
            for i, (cid, name) in enumerate(self.text_channels.items())
        ] + [
            {"id": str(cid), "type": 2, "name": name, "position": i, "guild_id": str(self.id),
             "permission_overwrites": [], "bitrate": 64000, "user_limit": 0, "parent_id": None}
            for i, (cid, name) in enumerate(self.voice_channels.items())
        ]  # fmt: skip
        return {
            "id": str(self.id),
            "name": self.name,
            "owner_id": next(iter(self.members)),
            "unavailable": False,
            "large": False,
            "member_count": len(self.members),
            "members": [self.member_payload(uid) for uid in self.members],
            "channels": channels,
            "threads": [],
            "roles": [
                {
                    "id": str(self.id),
                    "name": "@everyone",
                    "permissions": "104324673",
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "voice_states": [self.voice_payload(u, c) for u, c in self.voice.items()],
            "presences": [],
            "emojis": [],
            "stickers": [],
            "features": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "afk_channel_id": None,
            "afk_timeout": 300,
            "system_channel_id": None,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "premium_tier": 0,
            "nsfw_level": 0,
            "preferred_locale": "en-US",
            "icon": None,
            "joined_at": "2020-01-01T00:00:00+00:00",
        }


class Emulator:
    """Start with `start()`; drive with `message`, `member_add`, `member_remove`, `voice`."""

    def __init__(self) -> None:
        self.bot_user = user_payload(snowflake(), "guildmeter", bot=True)
        self.application_id = snowflake()
        self.guilds: dict[int, FakeGuild] = {}
        self.sent_messages: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.identified = asyncio.Event()
        self._sockets: list[web.WebSocketResponse] = []
        self._sequence = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- set-up --------------------------------------------------------------------------------

    def add_guild(
        self, name: str, text: list[str], voice: list[str], users: list[tuple[int, str]]
    ) -> FakeGuild:
        guild = FakeGuild(
            snowflake(),
            name,
            {snowflake(): n for n in text},
            {snowflake(): n for n in voice},
        )
        guild.members[int(self.bot_user["id"])] = self.bot_user
        for user_id, user_name in users:
            guild.members[user_id] = user_payload(user_id, user_name)
        self.guilds[guild.id] = guild
        return guild

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        api = "/api/v10"
        app.router.add_get(f"{api}/users/@me", self._me)
        app.router.add_get(f"{api}/gateway/bot", self._gateway_bot)
        app.router.add_get(f"{api}/oauth2/applications/@me", self._application)
        app.router.add_post(api + "/channels/{channel_id}/messages", self._post_message)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # -- driving the bot -------------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        self._sequence += 1
        frame = json.dumps({"op": 0, "t": event, "s": self._sequence, "d": data})
        for socket in list(self._sockets):
            if not socket.closed:
                await socket.send_str(frame)

    async def message(
        self, guild: FakeGuild, channel_id: int, user_id: int, when: datetime | None = None,
        content: str = "hello", *, bot: bool = False,
    ) -> None:  # fmt: skip
        author = guild.members.get(user_id) or user_payload(user_id, f"user{user_id}", bot=bot)
        data = {
            "id": str(snowflake(when)),
            "channel_id": str(channel_id),
            "guild_id": str(guild.id),
            "author": author,
            "content": content,
            "timestamp": (when or datetime.now(UTC)).isoformat(),
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
        if user_id in guild.members:
            data["member"] = {k: v for k, v in guild.member_payload(user_id).items() if k != "user"}
        await self.dispatch("MESSAGE_CREATE", data)

    async def member_add(self, guild: FakeGuild, user_id: int, name: str) -> None:
        guild.members[user_id] = user_payload(user_id, name)
        await self.dispatch(
            "GUILD_MEMBER_ADD", {"guild_id": str(guild.id), **guild.member_payload(user_id)}
        )

    async def member_remove(self, guild: FakeGuild, user_id: int) -> None:
        user = guild.members.pop(user_id)
        await self.dispatch("GUILD_MEMBER_REMOVE", {"guild_id": str(guild.id), "user": user})

    async def voice(self, guild: FakeGuild, user_id: int, channel_id: int | None) -> None:
        if channel_id is None:
            guild.voice.pop(user_id, None)
        else:
            guild.voice[user_id] = channel_id
        await self.dispatch("VOICE_STATE_UPDATE", guild.voice_payload(user_id, channel_id))

    async def drop_connections(self) -> None:
        """Close every gateway socket (the client reconnects and resumes)."""
        for socket in list(self._sockets):
            await socket.close(code=4000)

    # -- REST ----------------------------------------------------------------------------------

    async def _me(self, _request: web.Request) -> web.Response:
        return _json(self.bot_user)

    async def _gateway_bot(self, _request: web.Request) -> web.Response:
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": {
            "total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}})  # fmt: skip

    async def _application(self, _request: web.Request) -> web.Response:
        return _json({"id": str(self.application_id), "name": "guildmeter", "icon": None,
                      "description": "", "bot_public": True, "bot_require_code_grant": False,
                      "owner": self.bot_user, "verify_key": "0", "flags": 0})  # fmt: skip

    async def _post_message(self, request: web.Request) -> web.Response:
        payload = await request.json()
        content = payload.get("content") or ""
        if len(content) > 2000:
            self.errors.append(f"content of {len(content)} characters")
            return _json({"message": "Invalid Form Body", "code": 50035}, status=400)
        channel_id = int(request.match_info["channel_id"])
        message = {
            "id": str(snowflake()), "channel_id": str(channel_id), "author": self.bot_user,
            "content": content, "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
            "mention_roles": [], "attachments": [], "embeds": payload.get("embeds", []),
            "pinned": False, "type": 0, "flags": 0, "components": [],
        }  # fmt: skip
        self.sent_messages.append(message)
        return _json(message)

    # -- gateway -------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        async for frame in socket:
            if frame.type != WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            op = message.get("op")
            if op == 1:
                await socket.send_str(json.dumps({"op": 11}))
            elif op == 2:
                self._sockets.append(socket)
                await self._ready(socket)
                self.identified.set()
            elif op == 6:
                self._sockets.append(socket)
                self._sequence += 1
                await socket.send_str(
                    json.dumps({"op": 0, "t": "RESUMED", "s": self._sequence, "d": {}})
                )
        if socket in self._sockets:
            self._sockets.remove(socket)
        return socket

    async def _ready(self, socket: web.WebSocketResponse) -> None:
        self._sequence += 1
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds],
            "session_id": "emulated-session",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
        }
        await socket.send_str(json.dumps({"op": 0, "t": "READY", "s": self._sequence, "d": ready}))
        for guild in self.guilds.values():
            self._sequence += 1
            await socket.send_str(
                json.dumps(
                    {"op": 0, "t": "GUILD_CREATE", "s": self._sequence, "d": guild.create_payload()}
                )
            )
