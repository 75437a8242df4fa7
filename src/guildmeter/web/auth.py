"""Who is looking: Discord OAuth2 login, signed sessions, CSRF tokens, live moderator checks.

A session lives in this process's memory (an id, the member's Discord user id, a CSRF
token, an expiry); the browser holds only a cookie naming it, signed with HMAC-SHA256 and
carrying its own expiry, HttpOnly and SameSite=Lax. A forged cookie fails the signature, an
old one its expiry, one replayed after logout finds no session. The session never says
which guilds its member moderates: that is asked again (of the bot's own view of the
member, or of Discord's REST API with the bot's token) at every request, cached at most
`CHECK_TTL_S` seconds, so a member who lost their moderator role is refused at once.

Without an OAuth2 application, `serve` prints a one-time local link (like Jupyter's): its
token opens a session that sees every guild in the database, from this machine only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from guildmeter.store.settings import GuildSettings

__all__ = [
    "CHECK_TTL_S",
    "SESSION_COOKIE",
    "SESSION_TTL_S",
    "STATE_COOKIE",
    "BotMembers",
    "CachedCheck",
    "DiscordOAuth",
    "LoginError",
    "MemberRoles",
    "ModeratorCheck",
    "RestMembers",
    "Session",
    "Sessions",
    "moderates",
]

SESSION_COOKIE = "gm_session"
STATE_COOKIE = "gm_state"
#: A session lasts at most this long (seconds), whatever the browser does with the cookie.
SESSION_TTL_S = 8 * 3600
#: How long a moderator check may be reused (seconds).
CHECK_TTL_S = 3.0
STATE_TTL_S = 600
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5


class LoginError(Exception):
    """A login that cannot go on (bad state, refused code): a 400 with this text."""


@dataclass
class Session:
    id: str
    user_id: int | None  # None: the local one-time link (every guild)
    name: str
    csrf: str
    expires: float
    #: Guilds Discord says the member is in (from the login); checked again every request.
    guilds: dict[int, str] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        return self.user_id is None


class Sessions:
    """Sessions in memory, named by HMAC-signed cookies (see the module docstring)."""

    def __init__(self, secret: bytes, *, ttl: float = SESSION_TTL_S) -> None:
        self._secret = secret
        self.ttl = ttl
        self._sessions: dict[str, Session] = {}
        self._states: dict[str, float] = {}
        self.local_token = secrets.token_urlsafe(32)

    # -- signing ----------------------------------------------------------------------------

    def sign(self, payload: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
        mac = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        return f"{body.decode()}.{mac}"

    def unsign(self, value: str | None) -> dict[str, Any] | None:
        """The payload of a cookie we signed and that has not expired; None otherwise."""
        if not value or len(value) > 1000 or "." not in value:
            return None
        body, _, mac = value.rpartition(".")
        expected = hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, expected):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body.encode()))
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int | float):
            return None
        if payload["exp"] < time.time():
            return None
        return payload

    # -- sessions ---------------------------------------------------------------------------

    def create(self, user_id: int | None, name: str, guilds: dict[int, str]) -> tuple[Session, str]:
        """A new session and its cookie value."""
        self._prune()
        expires = time.time() + self.ttl
        session = Session(
            secrets.token_urlsafe(24), user_id, name, secrets.token_urlsafe(24), expires, guilds
        )
        self._sessions[session.id] = session
        return session, self.sign({"sid": session.id, "exp": int(expires)})

    def get(self, cookie: str | None) -> Session | None:
        payload = self.unsign(cookie)
        if payload is None:
            return None
        session = self._sessions.get(str(payload.get("sid")))
        if session is None or session.expires < time.time():
            return None
        return session

    def end(self, session: Session) -> None:
        self._sessions.pop(session.id, None)

    def take_local_token(self, token: str) -> bool:
        """The one-time link's token: right once, then replaced by one nobody knows."""
        if not hmac.compare_digest(token.encode(), self.local_token.encode()):
            return False
        self.local_token = secrets.token_urlsafe(32)
        return True

    # -- OAuth2 state -----------------------------------------------------------------------

    def new_state(self) -> tuple[str, str]:
        """A one-use ``state`` for an authorization request, and its cookie (binds it to
        this browser)."""
        self._prune()
        state = secrets.token_urlsafe(24)
        self._states[state] = time.time() + STATE_TTL_S
        return state, self.sign({"state": state, "exp": int(time.time() + STATE_TTL_S)})

    def take_state(self, state: str | None, cookie: str | None) -> None:
        """Refuse a missing, unknown, reused or foreign ``state`` (LoginError)."""
        payload = self.unsign(cookie)
        if (
            not state
            or payload is None
            or not hmac.compare_digest(str(payload.get("state", "")).encode(), state.encode())
        ):
            raise LoginError("the login's state does not match this browser; log in again")
        if self._states.pop(state, 0) < time.time():
            raise LoginError("this login link was used or has expired; log in again")

    def _prune(self) -> None:
        now = time.time()
        for sid in [s for s, v in self._sessions.items() if v.expires < now]:
            del self._sessions[sid]
        for state in [s for s, exp in self._states.items() if exp < now]:
            del self._states[state]


# -- Discord OAuth2 -----------------------------------------------------------------------


class DiscordOAuth:
    """The authorization-code flow with scopes ``identify guilds``."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        authorize_url: str,
        api_base: str,
    ) -> None:
        self.http = http
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.authorize_url = authorize_url
        self.api_base = api_base.rstrip("/")

    def login_url(self, state: str) -> str:
        from urllib.parse import urlencode

        query = urlencode({
            "client_id": self.client_id, "response_type": "code", "scope": "identify guilds",
            "state": state, "redirect_uri": self.redirect_uri, "prompt": "none",
        })  # fmt: skip
        return f"{self.authorize_url}?{query}"

    async def exchange(self, code: str) -> str:
        """The access token for an authorization ``code``."""
        data = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": self.redirect_uri}  # fmt: skip
        pair = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        headers = {"Authorization": f"Basic {pair}"}
        async with self.http.post(f"{self.api_base}/oauth2/token", data=data, headers=headers) as r:
            if r.status != 200:
                raise LoginError(f"Discord refused the login (HTTP {r.status}); try again")
            body = await r.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise LoginError("Discord's answer held no access token; try again")
        return token

    async def identify(self, token: str) -> tuple[int, str, dict[int, str]]:
        """The member's id, name, and the guilds they are in (id → name)."""
        headers = {"Authorization": f"Bearer {token}"}
        async with self.http.get(f"{self.api_base}/users/@me", headers=headers) as r:
            if r.status != 200:
                raise LoginError(f"Discord did not say who you are (HTTP {r.status})")
            user = await r.json()
        async with self.http.get(f"{self.api_base}/users/@me/guilds", headers=headers) as r:
            if r.status != 200:
                raise LoginError(f"Discord did not list your servers (HTTP {r.status})")
            guilds = await r.json()
        name = str(user.get("global_name") or user.get("username") or "member")
        return int(user["id"]), name, {int(g["id"]): str(g.get("name", "")) for g in guilds}


# -- moderators, checked live -------------------------------------------------------------


@dataclass(frozen=True)
class MemberRoles:
    """What the moderator rule needs of a member: permission bits and role ids."""

    permissions: int
    role_ids: frozenset[int]
    owner: bool = False


class ModeratorCheck(Protocol):
    async def __call__(self, guild_id: int, user_id: int) -> MemberRoles | None: ...


def moderates(member: MemberRoles | None, settings: GuildSettings) -> bool:
    """`guildmeter.ext.checks.is_moderator`, the rule every face uses (the guild's owner
    holds every permission)."""
    from guildmeter.ext.checks import Viewer, is_moderator

    if member is None:
        return False
    viewer = Viewer(
        administrator=member.owner or bool(member.permissions & ADMINISTRATOR),
        manage_guild=bool(member.permissions & MANAGE_GUILD),
        role_ids=member.role_ids,
    )
    return is_moderator(viewer, settings)


class RestMembers:
    """A member's roles as Discord's REST API tells the bot (standalone dashboard)."""

    def __init__(self, http: aiohttp.ClientSession, api_base: str, bot_token: str) -> None:
        self.http = http
        self.api_base = api_base.rstrip("/")
        self.headers = {"Authorization": f"Bot {bot_token}"}
        #: Guild names seen in the answers, for pages that have no session to name them.
        self.names: dict[int, str] = {}

    async def __call__(self, guild_id: int, user_id: int) -> MemberRoles | None:
        base = f"{self.api_base}/guilds/{guild_id}"
        async with self.http.get(f"{base}/members/{user_id}", headers=self.headers) as r:
            if r.status != 200:
                return None  # not a member (404), or the bot is not in the guild
            member = await r.json()
        async with self.http.get(base, headers=self.headers) as r:
            if r.status != 200:
                return None
            guild = await r.json()
        if len(self.names) < 10_000:
            self.names[guild_id] = str(guild.get("name", ""))
        roles = frozenset(int(role) for role in member.get("roles", []))
        permissions = 0
        for role in guild.get("roles", []):
            if int(role["id"]) in roles or int(role["id"]) == guild_id:  # @everyone's id
                permissions |= int(role.get("permissions", 0))
        return MemberRoles(permissions, roles, owner=str(guild.get("owner_id")) == str(user_id))


class BotMembers:
    """A member's roles from the running bot's own cache (dashboard inside the bot)."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot

    async def __call__(self, guild_id: int, user_id: int) -> MemberRoles | None:
        import discord

        guild = self.bot.get_guild(guild_id)
        if guild is None:
            return None
        member = guild.get_member(user_id)
        if member is None:
            try:
                member = await guild.fetch_member(user_id)
            except discord.HTTPException:
                return None
        return MemberRoles(
            member.guild_permissions.value,
            frozenset(role.id for role in member.roles),
            owner=guild.owner_id == user_id,
        )


class CachedCheck:
    """A `ModeratorCheck` whose answers are reused for at most ``ttl`` seconds."""

    def __init__(self, check: ModeratorCheck, ttl: float = CHECK_TTL_S) -> None:
        self.check = check
        self.ttl = ttl
        self._answers: dict[tuple[int, int], tuple[float, MemberRoles | None]] = {}

    async def __call__(self, guild_id: int, user_id: int) -> MemberRoles | None:
        now = time.monotonic()
        cached = self._answers.get((guild_id, user_id))
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        answer = await self.check(guild_id, user_id)
        if len(self._answers) > 10_000:
            self._answers.clear()
        self._answers[(guild_id, user_id)] = (now, answer)
        return answer
