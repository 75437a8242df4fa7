"""A local Discord emulator on 127.0.0.1 that the real, unpatched discord.py connects to.

Gateway v10: HELLO, heartbeat/ACK, IDENTIFY → READY and one GUILD_CREATE per guild (with
every member, so the client does not ask for chunks), RESUME → RESUMED, and dispatches,
including INTERACTION_CREATE for slash commands. REST: the routes the bot uses — messages
(JSON or multipart with files), interaction callbacks, follow-ups and edits of the
original response, command sync. Facts it honours: discord.py parses a body as JSON only
when Content-Type is exactly ``application/json``; it retries a 429 only with a ``Via``
header and a ``retry_after``. A payload Discord would refuse (see `limits`) gets a 400 and
is recorded in ``errors``.

Privileged intents: ``allowed_intents`` are those the application was granted. An
IDENTIFY asking for another privileged one is closed with 4014 ("Disallowed intent(s)"),
as Discord does. A session without MESSAGE_CONTENT gets MESSAGE_CREATE with empty
content (unless the message mentions the bot); one without GUILD_MEMBERS gets no
GUILD_MEMBER_ADD/REMOVE and no member list in GUILD_CREATE (``member_count`` stays), and
learns member totals from ``GET /guilds/{id}?with_counts=true``.

OAuth2 (the dashboard's Login with Discord): ``/oauth2/authorize`` approves at once as
``oauth_user`` and redirects back with a one-use code and the ``state``; ``POST
/api/v10/oauth2/token`` trades the code (client id and secret in Basic auth, the same
redirect URI) for a bearer token; ``/users/@me`` and ``/users/@me/guilds`` (with each
guild's ``permissions``) answer for the bearer; ``/guilds/{id}/members/{user}`` and
``/guilds/{id}/roles`` answer the bot's token.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from tests.discord_emulator.limits import (
    FILE_BYTES_MAX,
    command_problems,
    message_problems,
    would_ping,
)

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


MANAGE_GUILD = 1 << 5
ADMINISTRATOR = 1 << 3
VIEW_CHANNEL = 1 << 10
EVERYONE_PERMISSIONS = 104324673  # Discord's default for @everyone: no Manage Server
GUILD_MEMBERS = 1 << 1  # privileged
GUILD_PRESENCES = 1 << 8  # privileged
MESSAGE_CONTENT = 1 << 15  # privileged
PRIVILEGED_INTENTS = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT


@dataclass
class Sent:
    """A message the bot made visible: in a channel, or as an interaction response."""

    channel_id: int
    content: str
    embeds: list[dict[str, Any]]
    files: dict[str, bytes]
    ephemeral: bool = False
    interaction_id: int | None = None
    pings: bool = False  # a mention Discord would notify (allowed_mentions not off)
    allowed_mentions: dict[str, Any] | None = None  # as sent; None: the client sent none
    edit_of: int | None = None  # the id of the message this edit replaced; None: a new post


@dataclass
class FakeInteraction:
    """A slash command sent to the bot, and what the bot answered."""

    id: int
    token: str
    channel_id: int
    callbacks: list[int] = field(default_factory=list)  # response types (4 reply, 5 defer)
    replies: list[Sent] = field(default_factory=list)  # the response and follow-ups
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    deferred_ephemeral: bool = False


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
    roles: dict[int, tuple[str, int]] = field(default_factory=dict)  # id -> (name, perms)
    member_roles: dict[int, list[int]] = field(default_factory=dict)
    #: Channels that @everyone cannot see (an overwrite denies View Channel).
    private_channels: set[int] = field(default_factory=set)
    #: When members joined (ISO 8601); 2020-01-01 for those not listed.
    joined_at: dict[int, str] = field(default_factory=dict)

    def overwrites(self, channel_id: int) -> list[dict[str, Any]]:
        if channel_id not in self.private_channels:
            return []
        return [{"id": str(self.id), "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)}]

    def add_role(self, name: str, permissions: int) -> int:
        role_id = snowflake()
        self.roles[role_id] = (name, permissions)
        return role_id

    def permissions(self, user_id: int) -> int:
        value = EVERYONE_PERMISSIONS
        for role_id in self.member_roles.get(user_id, []):
            value |= self.roles[role_id][1]
        return value

    def role_payload(
        self, role_id: int, name: str, permissions: int, position: int
    ) -> dict[str, Any]:
        return {"id": str(role_id), "name": name, "permissions": str(permissions),
                "position": position, "color": 0, "hoist": False, "managed": False,
                "mentionable": False, "flags": 0}  # fmt: skip

    def member_payload(self, user_id: int) -> dict[str, Any]:
        return {
            "user": self.members[user_id],
            "roles": [str(r) for r in self.member_roles.get(user_id, [])],
            "joined_at": self.joined_at.get(user_id, "2020-01-01T00:00:00+00:00"),
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

    def create_payload(self, *, with_members: bool = True) -> dict[str, Any]:
        """GUILD_CREATE; without GUILD_MEMBERS, only the bot and voice members are listed."""
        listed = [
            uid for uid in self.members
            if with_members or uid in self.voice or self.members[uid].get("bot")
        ]  # fmt: skip
        channels = [
            {"id": str(cid), "type": 0, "name": name, "position": i, "guild_id": str(self.id),
             "permission_overwrites": self.overwrites(cid), "nsfw": False, "parent_id": None}
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
            "members": [self.member_payload(uid) for uid in listed],
            "channels": channels,
            "threads": [],
            "roles": [self.role_payload(self.id, "@everyone", EVERYONE_PERMISSIONS, 0)]
            + [
                self.role_payload(rid, name, perms, i + 1)
                for i, (rid, (name, perms)) in enumerate(self.roles.items())
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
        self.sent: list[Sent] = []
        self.errors: list[str] = []
        self.interactions: dict[int, FakeInteraction] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.rate_limited_posts = 0  # the next N message posts get a 429
        self.dm_channels: dict[int, int] = {}  # DM channel id -> the user it reaches
        self.closed_dms: set[int] = set()  # users who do not accept DMs from the bot
        self.message_posted = asyncio.Condition()
        self.identified = asyncio.Event()
        #: The privileged intents the application was granted (all, by default).
        self.allowed_intents = PRIVILEGED_INTENTS
        #: Every IDENTIFY's intents, refused or not, in order.
        self.identify_intents: list[int] = []
        #: Guild fetches with counts (the bot's approximate member totals).
        self.count_fetches = 0
        self._session_intents = 0
        self._intents_of: dict[web.WebSocketResponse, int] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._sequence = 0
        self._runner: web.AppRunner | None = None
        self.port = 0
        #: OAuth2: the application's client, and who approves at /oauth2/authorize.
        self.oauth_client_id = str(self.application_id)
        self.oauth_client_secret = "emulated-client-secret"
        self.oauth_user: int | None = None
        self._oauth_codes: dict[str, tuple[int, str]] = {}  # code -> (user, redirect URI)
        self._oauth_tokens: dict[str, int] = {}  # bearer token -> user
        #: Member lookups with the bot's token (the dashboard's live moderator checks).
        self.member_fetches = 0
        #: When set, ``/users/@me`` refuses any other bot token with 401 (a reset token).
        self.bot_token: str | None = None

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

    async def start(self, extra_routes: Callable[[web.Application], None] | None = None) -> None:
        """Listen on an ephemeral port of 127.0.0.1; ``extra_routes`` may add control routes."""
        app = web.Application(client_max_size=FILE_BYTES_MAX + 1024 * 1024)
        if extra_routes is not None:
            extra_routes(app)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/oauth2/authorize", self._authorize)
        api = "/api/v10"
        app.router.add_post(f"{api}/oauth2/token", self._token)
        app.router.add_get(f"{api}/users/@me", self._me)
        app.router.add_get(f"{api}/users/@me/guilds", self._my_guilds)
        app.router.add_get(api + "/guilds/{guild_id}/members/{user_id}", self._get_member)
        app.router.add_get(api + "/guilds/{guild_id}/roles", self._get_roles)
        app.router.add_get(f"{api}/gateway/bot", self._gateway_bot)
        app.router.add_get(f"{api}/oauth2/applications/@me", self._application)
        app.router.add_get(api + "/guilds/{guild_id}", self._get_guild)
        app.router.add_post(api + "/channels/{channel_id}/messages", self._post_message)
        app.router.add_post(api + "/users/@me/channels", self._create_dm)
        app.router.add_post(api + "/channels/{channel_id}/typing", self._typing)
        app.router.add_post(api + "/interactions/{id}/{token}/callback", self._callback)
        webhook = api + "/webhooks/{application_id}/{token}"
        app.router.add_post(webhook, self._followup)
        app.router.add_patch(webhook + "/messages/@original", self._edit_original)
        app.router.add_put(api + "/applications/{application_id}/commands", self._sync_commands)
        app.router.add_put(
            api + "/applications/{application_id}/guilds/{guild_id}/commands", self._sync_commands
        )
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
        """Send an event to every session, as each session's intents let Discord send it."""
        self._sequence += 1
        frames: dict[int, str | None] = {}
        for socket in list(self._sockets):
            intents = self._intents_of.get(socket, 0)
            if intents not in frames:
                shown = self._as_seen(event, data, intents)
                frames[intents] = (
                    None if shown is None
                    else json.dumps({"op": 0, "t": event, "s": self._sequence, "d": shown})
                )  # fmt: skip
            frame = frames[intents]
            if frame is not None and not socket.closed:
                await socket.send_str(frame)

    def _as_seen(self, event: str, data: dict[str, Any], intents: int) -> dict[str, Any] | None:
        """``data`` as a session with ``intents`` receives it; None: not sent at all."""
        if event in ("GUILD_MEMBER_ADD", "GUILD_MEMBER_REMOVE") and not intents & GUILD_MEMBERS:
            return None
        if event == "MESSAGE_CREATE" and not intents & MESSAGE_CONTENT:
            mentioned = any(m.get("id") == self.bot_user["id"] for m in data.get("mentions", []))
            if not mentioned:
                return {**data, "content": "", "embeds": [], "attachments": [], "components": []}
        return data

    def message_payload(
        self, guild: FakeGuild, channel_id: int, user_id: int, when: datetime | None = None,
        content: str = "hello", *, bot: bool = False, mentions_bot: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        """A MESSAGE_CREATE payload as Discord sends it."""
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
            "mentions": [self.bot_user] if mentions_bot else [],
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
        return data

    async def message(
        self, guild: FakeGuild, channel_id: int, user_id: int, when: datetime | None = None,
        content: str = "hello", *, bot: bool = False, mentions_bot: bool = False,
    ) -> None:  # fmt: skip
        payload = self.message_payload(
            guild, channel_id, user_id, when, content, bot=bot, mentions_bot=mentions_bot
        )
        await self.dispatch("MESSAGE_CREATE", payload)

    async def member_add(self, guild: FakeGuild, user_id: int, name: str) -> None:
        guild.members[user_id] = user_payload(user_id, name)
        await self.dispatch(
            "GUILD_MEMBER_ADD", {"guild_id": str(guild.id), **guild.member_payload(user_id)}
        )

    async def role_create(self, guild: FakeGuild, name: str, permissions: int) -> int:
        """A new role, announced to the bot (GUILD_ROLE_CREATE)."""
        role_id = guild.add_role(name, permissions)
        role = guild.role_payload(role_id, name, permissions, len(guild.roles))
        await self.dispatch("GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": role})
        return role_id

    async def set_roles(self, guild: FakeGuild, user_id: int, roles: list[int]) -> None:
        """Change a member's roles, announced to the bot (GUILD_MEMBER_UPDATE)."""
        guild.member_roles[user_id] = roles
        await self.dispatch(
            "GUILD_MEMBER_UPDATE", {"guild_id": str(guild.id), **guild.member_payload(user_id)}
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

    async def slash(
        self,
        guild: FakeGuild,
        channel_id: int,
        user_id: int,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        subcommand: str | None = None,
    ) -> FakeInteraction:
        """Send a chat-input command as INTERACTION_CREATE; await `answered` on the result."""
        interaction = FakeInteraction(snowflake(), f"token{next(_counter)}", channel_id)
        self.interactions[interaction.id] = interaction
        given = [
            {"name": k, "value": v, "type": _option_type(v)} for k, v in (options or {}).items()
        ]
        if subcommand is not None:
            given = [{"name": subcommand, "type": 1, "options": given}]
        channel_name = guild.text_channels.get(channel_id, "general")
        permissions = str(guild.permissions(user_id))
        data = {
            "id": str(interaction.id),
            "application_id": str(self.application_id),
            "type": 2,
            "token": interaction.token,
            "version": 1,
            "guild_id": str(guild.id),
            "channel_id": str(channel_id),
            "channel": {"id": str(channel_id), "type": 0, "name": channel_name,
                        "guild_id": str(guild.id), "position": 0, "permission_overwrites": [],
                        "nsfw": False, "parent_id": None},
            "member": {**guild.member_payload(user_id), "permissions": permissions},
            "app_permissions": str(EVERYONE_PERMISSIONS),
            "attachment_size_limit": FILE_BYTES_MAX,
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "data": {"id": str(snowflake()), "name": name, "type": 1, "options": given,
                     "guild_id": str(guild.id)},
        }  # fmt: skip
        await self.dispatch("INTERACTION_CREATE", data)
        return interaction

    async def wait_for_post(self, count: int, timeout: float = 10.0) -> list[Sent]:
        """Wait until at least ``count`` messages were sent in total; returns them all."""
        async with self.message_posted:
            await asyncio.wait_for(
                self.message_posted.wait_for(lambda: len(self.sent) >= count), timeout
            )
        return self.sent

    async def wait_for_new_post(self, after: int, timeout: float = 10.0) -> Sent:
        """The first new message (not an edit) sent after the first ``after`` ones."""

        def found() -> Sent | None:
            return next((s for s in self.sent[after:] if s.edit_of is None), None)

        async with self.message_posted:
            await asyncio.wait_for(self.message_posted.wait_for(lambda: found() is not None),
                                   timeout)  # fmt: skip
        post = found()
        assert post is not None
        return post

    async def drop_connections(self) -> None:
        """Close every gateway socket (the client reconnects and resumes)."""
        for socket in list(self._sockets):
            await socket.close(code=4000)

    # -- REST ----------------------------------------------------------------------------------

    async def _me(self, request: web.Request) -> web.Response:
        """The bot, for its token; the member who logged in, for a bearer token."""
        if request.headers.get("Authorization", "").startswith("Bearer "):
            user_id = self._bearer(request)
            if user_id is None:
                return _json({"message": "401: Unauthorized", "code": 0}, status=401)
            return _json(self._user(user_id))
        given = request.headers.get("Authorization", "").removeprefix("Bot ")
        if self.bot_token is not None and given != self.bot_token:
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json(self.bot_user)

    # -- OAuth2 --------------------------------------------------------------------------------

    @property
    def oauth_authorize_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/oauth2/authorize"

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        """Discord's consent page, approved at once as ``oauth_user``."""
        query = request.query
        if query.get("client_id") != self.oauth_client_id or query.get("response_type") != "code":
            return web.Response(status=400, text="invalid client or response type")
        if set(query.get("scope", "").split()) != {"identify", "guilds"}:
            return web.Response(status=400, text="invalid scope")
        redirect = query.get("redirect_uri", "")
        if self.oauth_user is None or not redirect.startswith("http://127.0.0.1:"):
            return web.Response(status=400, text="no user to approve, or a foreign redirect")
        code = secrets.token_urlsafe(16)
        self._oauth_codes[code] = (self.oauth_user, redirect)
        state = query.get("state")
        target = f"{redirect}?code={code}" + (f"&state={state}" if state is not None else "")
        raise web.HTTPFound(target)

    async def _token(self, request: web.Request) -> web.Response:
        """The authorization code (once) for a bearer token."""
        expected = base64.b64encode(
            f"{self.oauth_client_id}:{self.oauth_client_secret}".encode()
        ).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return _json({"error": "invalid_client"}, status=401)
        form = await request.post()
        found = self._oauth_codes.pop(str(form.get("code", "")), None)
        if (
            form.get("grant_type") != "authorization_code"
            or found is None
            or found[1] != form.get("redirect_uri")
        ):
            return _json({"error": "invalid_grant"}, status=400)
        token = secrets.token_urlsafe(24)
        self._oauth_tokens[token] = found[0]
        return _json({"access_token": token, "token_type": "Bearer", "expires_in": 604800,
                      "refresh_token": secrets.token_urlsafe(24),
                      "scope": "identify guilds"})  # fmt: skip

    def _bearer(self, request: web.Request) -> int | None:
        header = request.headers.get("Authorization", "")
        return self._oauth_tokens.get(header.removeprefix("Bearer ")) if header else None

    def _user(self, user_id: int) -> dict[str, Any]:
        return next(
            (g.members[user_id] for g in self.guilds.values() if user_id in g.members),
            user_payload(user_id, f"user{user_id}"),
        )

    async def _my_guilds(self, request: web.Request) -> web.Response:
        user_id = self._bearer(request)
        if user_id is None:
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json([
            {"id": str(g.id), "name": g.name, "icon": None, "owner": False,
             "permissions": str(g.permissions(user_id)), "features": []}
            for g in self.guilds.values() if user_id in g.members
        ])  # fmt: skip

    def _bot_guild(self, request: web.Request) -> FakeGuild | None:
        if not request.headers.get("Authorization", "").startswith("Bot "):
            return None
        return self.guilds.get(int(request.match_info["guild_id"]))

    async def _get_member(self, request: web.Request) -> web.Response:
        """GET /guilds/{id}/members/{user}: with the bot's token only."""
        self.member_fetches += 1
        guild = self._bot_guild(request)
        if guild is None:
            return _json({"message": "Unknown Guild", "code": 10004}, status=404)
        user_id = int(request.match_info["user_id"])
        if user_id not in guild.members:
            return _json({"message": "Unknown Member", "code": 10007}, status=404)
        return _json(guild.member_payload(user_id))

    async def _get_roles(self, request: web.Request) -> web.Response:
        guild = self._bot_guild(request)
        if guild is None:
            return _json({"message": "Unknown Guild", "code": 10004}, status=404)
        return _json(guild.create_payload()["roles"])

    async def _gateway_bot(self, _request: web.Request) -> web.Response:
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": {
            "total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}})  # fmt: skip

    async def _get_guild(self, request: web.Request) -> web.Response:
        """GET /guilds/{id}: the guild; ``with_counts=true`` adds the approximate counts."""
        guild = self.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            return _json({"message": "Unknown Guild", "code": 10004}, status=404)
        payload = guild.create_payload(with_members=False)
        for key in ("members", "channels", "threads", "voice_states", "presences",
                    "stage_instances", "guild_scheduled_events", "member_count", "joined_at",
                    "large", "unavailable"):  # fmt: skip
            payload.pop(key, None)
        if request.query.get("with_counts", "").lower() in ("true", "1"):
            self.count_fetches += 1
            payload["approximate_member_count"] = len(guild.members)
            payload["approximate_presence_count"] = 0
        return _json(payload)

    async def _application(self, _request: web.Request) -> web.Response:
        return _json({"id": str(self.application_id), "name": "guildmeter", "icon": None,
                      "description": "", "bot_public": True, "bot_require_code_grant": False,
                      "owner": self.bot_user, "verify_key": "0", "flags": 0})  # fmt: skip

    async def _read_message(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        """The JSON payload and files of a message request (JSON or multipart)."""
        if request.content_type != "multipart/form-data":
            return await request.json(), {}
        payload: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if part.name == "payload_json":
                payload = json.loads(await part.text())  # type: ignore[union-attr]
            else:
                files[part.filename or part.name or "file"] = bytes(await part.read())  # type: ignore[union-attr]
        return payload, files

    async def _record(
        self, channel_id: int, payload: dict[str, Any], files: dict[str, bytes],
        interaction: FakeInteraction | None = None,
    ) -> web.Response:  # fmt: skip
        problems = message_problems(payload, files)
        if problems:
            self.errors.extend(problems)
            return _json({"message": "Invalid Form Body", "code": 50035,
                          "errors": problems}, status=400)  # fmt: skip
        sent = Sent(
            channel_id,
            payload.get("content") or "",
            payload.get("embeds") or [],
            files,
            ephemeral=bool((payload.get("flags") or 0) & 64),
            interaction_id=None if interaction is None else interaction.id,
            pings=would_ping(payload),
            allowed_mentions=payload.get("allowed_mentions"),
        )
        async with self.message_posted:
            self.sent.append(sent)
            if interaction is not None:
                interaction.replies.append(sent)
                interaction.answered.set()
            self.message_posted.notify_all()
        return _json(self._message(channel_id, payload, files))

    def _message(
        self, channel_id: int, payload: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        return {
            "id": str(snowflake()), "channel_id": str(channel_id), "author": self.bot_user,
            "content": payload.get("content") or "", "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
            "mention_roles": [], "embeds": payload.get("embeds") or [],
            "attachments": [{"id": str(snowflake()), "filename": name, "size": len(data),
                             "url": f"{self.api_base}/files/{name}",
                             "proxy_url": f"{self.api_base}/files/{name}"}
                            for name, data in files.items()],
            "pinned": False, "type": 0, "flags": payload.get("flags") or 0, "components": [],
        }  # fmt: skip

    async def _post_message(self, request: web.Request) -> web.Response:
        if self.rate_limited_posts > 0:
            self.rate_limited_posts -= 1
            return web.Response(
                body=json.dumps({"message": "You are being rate limited.",
                                 "retry_after": 0.05, "global": False}).encode(),
                status=429,
                headers={"Content-Type": "application/json", "Via": "1.1 google",
                         "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                         "X-RateLimit-Reset-After": "0.05", "X-RateLimit-Bucket": "messages"},
            )  # fmt: skip
        channel_id = int(request.match_info["channel_id"])
        if self.dm_channels.get(channel_id) in self.closed_dms:
            return _json({"message": "Cannot send messages to this user", "code": 50007}, 403)
        payload, files = await self._read_message(request)
        return await self._record(channel_id, payload, files)

    async def _create_dm(self, request: web.Request) -> web.Response:
        """POST /users/@me/channels: the DM channel with a user (one per user)."""
        user_id = int((await request.json())["recipient_id"])
        channel_id = next((c for c, u in self.dm_channels.items() if u == user_id), None)
        if channel_id is None:
            channel_id = snowflake()
            self.dm_channels[channel_id] = user_id
        user = next(
            (g.members[user_id] for g in self.guilds.values() if user_id in g.members),
            user_payload(user_id, f"user{user_id}"),
        )
        return _json({"id": str(channel_id), "type": 1, "recipients": [user],
                      "last_message_id": None})  # fmt: skip

    async def _typing(self, _request: web.Request) -> web.Response:
        return web.Response(status=204)

    def _interaction(self, request: web.Request, key: str) -> FakeInteraction | None:
        token = request.match_info["token"]
        for interaction in self.interactions.values():
            if interaction.token == token and (
                key != "id" or str(interaction.id) == request.match_info["id"]
            ):
                return interaction
        self.errors.append(f"unknown interaction {request.path}")
        return None  # fmt: skip

    async def _callback(self, request: web.Request) -> web.Response:
        interaction = self._interaction(request, "id")
        if interaction is None:
            return _json({"message": "Unknown interaction", "code": 10062}, status=404)
        if interaction.callbacks:
            self.errors.append("interaction acknowledged twice")
            return _json({"message": "Interaction has already been acknowledged.",
                          "code": 40060}, status=400)  # fmt: skip
        body, files = await self._read_message(request)
        kind, data = body.get("type"), body.get("data") or {}
        interaction.callbacks.append(kind)
        ephemeral = bool((data.get("flags") or 0) & 64)
        interaction.deferred_ephemeral = kind == 5 and ephemeral
        info = {"id": str(interaction.id), "type": 2, "response_message_loading": kind == 5,
                "response_message_ephemeral": ephemeral}  # fmt: skip
        if kind == 4:
            response = await self._record(interaction.channel_id, data, files, interaction)
            if response.status != 200:
                return response
            message = json.loads(response.body)  # type: ignore[arg-type]
            return _json({"interaction": {**info, "response_message_id": message["id"]},
                          "resource": {"type": 4, "message": message}})  # fmt: skip
        return _json({"interaction": info, "resource": {"type": kind}})

    async def _followup(self, request: web.Request) -> web.Response:
        interaction = self._interaction(request, "token")
        if interaction is None or not interaction.callbacks:
            self.errors.append("follow-up before the interaction was acknowledged")
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        payload, files = await self._read_message(request)
        return await self._record(interaction.channel_id, payload, files, interaction)

    async def _edit_original(self, request: web.Request) -> web.Response:
        """The deferred response's content: ephemeral if the defer was."""
        interaction = self._interaction(request, "token")
        if interaction is None or not interaction.callbacks:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        payload, files = await self._read_message(request)
        if interaction.deferred_ephemeral:
            payload = {**payload, "flags": (payload.get("flags") or 0) | 64}
        return await self._record(interaction.channel_id, payload, files, interaction)

    async def _sync_commands(self, request: web.Request) -> web.Response:
        commands = await request.json()
        problems = [p for command in commands for p in command_problems(command)]
        if problems:
            self.errors.extend(problems)
            return _json({"message": "Invalid Form Body", "code": 50035,
                          "errors": problems}, status=400)  # fmt: skip
        synced = [{**c, "id": str(snowflake()), "application_id": str(self.application_id),
                   "version": str(snowflake())} for c in commands]  # fmt: skip
        if "guild_id" not in request.match_info:
            self.global_commands = synced
        return _json(synced)

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
                intents = int(message["d"].get("intents", 0))
                self.identify_intents.append(intents)
                if intents & PRIVILEGED_INTENTS & ~self.allowed_intents:
                    await socket.close(code=4014, message=b"Disallowed intent(s).")
                    break
                self._session_intents = intents
                self._intents_of[socket] = intents
                self._sockets.append(socket)
                await self._ready(socket)
                self.identified.set()
            elif op == 6:
                self._intents_of[socket] = self._session_intents
                self._sockets.append(socket)
                self._sequence += 1
                await socket.send_str(
                    json.dumps({"op": 0, "t": "RESUMED", "s": self._sequence, "d": {}})
                )
        if socket in self._sockets:
            self._sockets.remove(socket)
        self._intents_of.pop(socket, None)
        return socket

    async def _ready(self, socket: web.WebSocketResponse) -> None:
        with_members = bool(self._intents_of.get(socket, 0) & GUILD_MEMBERS)
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
                    {
                        "op": 0,
                        "t": "GUILD_CREATE",
                        "s": self._sequence,
                        "d": guild.create_payload(with_members=with_members),
                    }
                )
            )


def _option_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    return 3
