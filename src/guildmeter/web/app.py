"""The dashboard's routes: aiohttp's own server, Jinja2 pages, JSON panels the page fetches.

``/`` lists the guilds the visitor moderates (or offers the login); ``/g/{guild}`` is a
guild's page for its moderators, ``/g/{guild}/api/{panel}`` its data, ``/g/{guild}/csv``
the current view and ``/g/{guild}/dump`` the raw dump; ``/public/{guild}`` the read-only
page a guild may opt into (``statsconfig public on``), with small cells suppressed and no
dump. Every guild route asks `auth` again whether the visitor may see it; every POST needs
the session's CSRF token and a same-origin ``Origin``; long query strings are refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import jinja2
from aiohttp import web

from guildmeter.reports.dashboard import METRICS, PERIODS, DashboardError
from guildmeter.reports.daterange import DateRange
from guildmeter.store import Store
from guildmeter.web.auth import (
    CHECK_TTL_S,
    SESSION_COOKIE,
    STATE_COOKIE,
    CachedCheck,
    DiscordOAuth,
    LoginError,
    ModeratorCheck,
    Session,
    Sessions,
    moderates,
)
from guildmeter.web.queries import PANELS, PUBLIC_PANELS, DashboardData, month_labels

__all__ = ["MAX_QUERY_BYTES", "Dashboard", "create_app"]

log = logging.getLogger(__name__)
#: Longer query strings are refused (400): no page needs more.
MAX_QUERY_BYTES = 1024
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Dashboard:
    """What the routes share: data, sessions, the login, the live moderator check."""

    data: DashboardData
    sessions: Sessions
    templates: jinja2.Environment
    public_url: str
    oauth: DiscordOAuth | None
    members: ModeratorCheck | None
    guild_names: Callable[[int], str | None] | None = None

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    def render(self, name: str, status: int = 200, **context: Any) -> web.Response:
        page = self.templates.get_template(name).render(metrics=METRICS, periods=PERIODS, **context)
        return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")


_KEY = web.AppKey("dashboard", Dashboard)


def create_app(
    store: Store,
    *,
    public_url: str,
    secret: bytes | None = None,
    oauth: DiscordOAuth | None = None,
    members: ModeratorCheck | None = None,
    guild_names: Callable[[int], str | None] | None = None,
    check_ttl: float = CHECK_TTL_S,
) -> web.Application:
    """The dashboard as an aiohttp application (``serve``, or mounted in the bot)."""
    templates = jinja2.Environment(
        loader=jinja2.PackageLoader("guildmeter.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app = web.Application(middlewares=[_guard], client_max_size=64 * 1024)
    app[_KEY] = Dashboard(
        DashboardData(store),
        Sessions(secret or secrets.token_bytes(32)),
        templates,
        public_url.rstrip("/"),
        oauth,
        None if members is None else CachedCheck(members, check_ttl),
        guild_names,
    )
    app.router.add_get("/", _index)
    app.router.add_get("/login", _login)
    app.router.add_get("/callback", _callback)
    app.router.add_get("/login/local", _local_login)
    app.router.add_post("/logout", _logout)
    app.router.add_get(r"/g/{guild:\d{1,20}}", _guild_page)
    app.router.add_get(r"/g/{guild:\d{1,20}}/api/{panel:[a-z]{1,20}}", _guild_panel)
    app.router.add_get(r"/g/{guild:\d{1,20}}/csv", _guild_csv)
    app.router.add_get(r"/g/{guild:\d{1,20}}/dump", _guild_dump)
    app.router.add_get(r"/public/{guild:\d{1,20}}", _public_page)
    app.router.add_get(r"/public/{guild:\d{1,20}}/api/{panel:[a-z]{1,20}}", _public_panel)
    app.router.add_get(r"/public/{guild:\d{1,20}}/csv", _public_csv)
    app.router.add_static("/static", Path(str(resources.files("guildmeter.web") / "static")))
    return app


def dashboard_of(app: web.Application) -> Dashboard:
    return app[_KEY]


# -- middleware -----------------------------------------------------------------------------


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Size limits, CSRF on every POST, one-line 400s, security headers on every answer."""
    if len(request.query_string) > MAX_QUERY_BYTES or len(request.path) > 300:
        response: web.StreamResponse = web.Response(status=400, text="request too long")
    elif request.method == "POST" and not await _csrf_ok(request):
        response = web.Response(status=403, text="cross-site request refused (CSRF)")
    else:
        try:
            response = await handler(request)
        except DashboardError as exc:
            response = _error(request, 400, str(exc))
        except LoginError as exc:
            response = _error(request, 400, str(exc))
        except web.HTTPException as exc:
            _protect(request, exc)
            raise
    _protect(request, response)
    return response


def _protect(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


async def _csrf_ok(request: web.Request) -> bool:
    dash = dashboard_of(request.app)
    origin = request.headers.get("Origin")
    if origin is not None and origin != _origin(dash.public_url):
        return False
    session = _session(request)
    if session is None:
        return False
    form = await request.post()
    token = form.get("csrf")
    return isinstance(token, str) and secrets.compare_digest(token, session.csrf)


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _error(request: web.Request, status: int, message: str) -> web.Response:
    if "/api/" in request.path:
        return web.json_response({"error": message}, status=status)
    return dashboard_of(request.app).render(
        "error.html", status=status, message=message, session=None
    )


def _session(request: web.Request) -> Session | None:
    return dashboard_of(request.app).sessions.get(request.cookies.get(SESSION_COOKIE))


def _set_cookie(response: web.StreamResponse, dash: Dashboard, name: str, value: str,
                max_age: int) -> None:  # fmt: skip
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="Lax",
                        secure=dash.secure_cookies, path="/")  # fmt: skip


# -- login ----------------------------------------------------------------------------------


async def _index(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request.app)
    session = _session(request)
    if session is None:
        return dash.render("login.html", session=None, oauth=dash.oauth is not None)
    guilds = await _moderated_guilds(dash, session)
    return dash.render("guilds.html", session=session, guilds=guilds)


async def _moderated_guilds(dash: Dashboard, session: Session) -> list[tuple[str, str]]:
    """(id, name) of the guilds with statistics the visitor moderates, checked now."""
    known = await dash.data.known_guilds()
    if session.local:
        return [(str(g), _guild_name(dash, session, g)) for g in known]
    candidates = [g for g in known if g in session.guilds]
    allowed = await asyncio.gather(*(_may_see(dash, session, g) for g in candidates))
    pairs = zip(candidates, allowed, strict=True)
    return [(str(g), _guild_name(dash, session, g)) for g, ok in pairs if ok]


def _guild_name(dash: Dashboard, session: Session, guild_id: int) -> str:
    name = session.guilds.get(guild_id) or (dash.guild_names and dash.guild_names(guild_id))
    return name or f"Server {guild_id}"


async def _may_see(dash: Dashboard, session: Session, guild_id: int) -> bool:
    """Moderator of ``guild_id`` by our rules, asked of Discord (or the bot) now."""
    if session.local:
        return guild_id in await dash.data.known_guilds()
    if dash.members is None or session.user_id is None:
        return False
    member = await dash.members(guild_id, session.user_id)
    return moderates(member, await dash.data.guild_settings(guild_id))


async def _login(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request.app)
    if dash.oauth is None:
        return _error(request, 400, "Login with Discord is not configured on this server")
    state, cookie = dash.sessions.new_state()
    response = _redirect(dash.oauth.login_url(state))
    _set_cookie(response, dash, STATE_COOKIE, cookie, 600)
    return response


async def _callback(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request.app)
    if dash.oauth is None:
        return _error(request, 400, "Login with Discord is not configured on this server")
    dash.sessions.take_state(request.query.get("state"), request.cookies.get(STATE_COOKIE))
    code = request.query.get("code")
    if not code:
        raise LoginError("Discord sent no authorization code; log in again")
    try:
        token = await dash.oauth.exchange(code)
        user_id, name, guilds = await dash.oauth.identify(token)
    except aiohttp.ClientError:
        raise LoginError("Discord could not be reached; try again") from None
    _, cookie = dash.sessions.create(user_id, name, guilds)
    response = _redirect("/")
    _set_cookie(response, dash, SESSION_COOKIE, cookie, int(dash.sessions.ttl))
    response.del_cookie(STATE_COOKIE, path="/")
    return response


def _from_this_machine(request: web.Request) -> bool:
    """A direct connection from a loopback address (not relayed by a proxy)."""
    if any(h in request.headers for h in ("X-Forwarded-For", "Forwarded", "X-Real-IP")):
        return False
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


async def _local_login(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request.app)
    if not _from_this_machine(request):
        return _error(request, 403, "the one-time link works only from this machine")
    if not dash.sessions.take_local_token(request.query.get("token", "")):
        return _error(request, 403, "this one-time link was used already; restart guildmeter serve")
    _, cookie = dash.sessions.create(None, "this machine", {})
    response = _redirect("/")
    _set_cookie(response, dash, SESSION_COOKIE, cookie, int(dash.sessions.ttl))
    return response


async def _logout(request: web.Request) -> web.StreamResponse:
    dash = dashboard_of(request.app)
    session = _session(request)
    if session is not None:
        dash.sessions.end(session)
    response = _redirect("/")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


# -- a guild, for its moderators ------------------------------------------------------------


async def _moderator(request: web.Request) -> tuple[Dashboard, Session, int]:
    """The visitor, if they moderate the URL's guild now; else 403 (401 when logged out)."""
    dash = dashboard_of(request.app)
    guild_id = int(request.match_info["guild"])
    session = _session(request)
    if session is None:
        raise _refusal(request, 401, "log in first")
    if not await _may_see(dash, session, guild_id):
        raise _refusal(request, 403, "you are not a moderator of this server")
    return dash, session, guild_id


def _refusal(request: web.Request, status: int, message: str) -> web.HTTPException:
    if "/api/" in request.path or request.path.endswith(("/csv", "/dump")):
        return _json_refusal(status, message)
    page = dashboard_of(request.app).templates.get_template("error.html")
    refusal = web.HTTPForbidden if status == 403 else web.HTTPUnauthorized
    return refusal(
        text=page.render(message=message, session=None, metrics=METRICS, periods=PERIODS),
        content_type="text/html",
    )


def _json_refusal(status: int, message: str) -> web.HTTPException:
    refusal = web.HTTPForbidden if status == 403 else web.HTTPUnauthorized
    return refusal(text=json.dumps({"error": message}), content_type="application/json")


async def _guild_page(request: web.Request) -> web.StreamResponse:
    dash, session, guild_id = await _moderator(request)
    channels = await dash.data.channels(guild_id)
    settings = await dash.data.guild_settings(guild_id)
    return _guild_html(
        dash, session, guild_id, _guild_name(dash, session, guild_id), public=False,
        channels=sorted(channels.items(), key=lambda c: c[1].lower()),
        public_on=settings.public_view, min_cell=settings.min_cell_users,
    )  # fmt: skip


def _guild_html(
    dash: Dashboard, session: Session | None, guild_id: int, name: str, *, public: bool,
    channels: list[tuple[int, str]], public_on: bool, min_cell: int,
) -> web.Response:  # fmt: skip
    """The guild's page: the moderators' (every panel, the dump) or the public one."""
    return dash.render(
        "guild.html", session=session, guild_id=str(guild_id), guild_name=name,
        public=public, base=f"/{'public' if public else 'g'}/{guild_id}", channels=channels,
        public_on=public_on, panels=PUBLIC_PANELS if public else PANELS, min_cell=min_cell,
    )  # fmt: skip


async def _guild_panel(request: web.Request) -> web.StreamResponse:
    dash, _, guild_id = await _moderator(request)
    panel = request.match_info["panel"]
    if panel not in PANELS:
        raise web.HTTPNotFound()
    return web.json_response(await dash.data.panel(guild_id, panel, request.query))


async def _guild_csv(request: web.Request) -> web.StreamResponse:
    dash, _, guild_id = await _moderator(request)
    text = await dash.data.view_csv(guild_id, request.query)
    name = f"guildmeter-{guild_id}-view-{_days(dash.data.range_of(guild_id, request.query))}"
    return _download(text.encode("utf-8"), f"{name}.csv", "text/csv")


async def _guild_dump(request: web.Request) -> web.StreamResponse:
    """The raw dump, named as ``guildmeter export`` names it; holding live pseudonyms, it
    says so in its name and in a header (the page says it beside the link)."""
    dash, _, guild_id = await _moderator(request)
    dump = await dash.data.dump(guild_id, request.query)
    name = f"userstats-{guild_id}-{_days(dump.range)}"
    headers = {}
    if dump.unanonymised_months:
        name += "-NOT-ANONYMISED"
        months = ", ".join(month_labels(dump.unanonymised_months))
        headers[DUMP_WARNING_HEADER] = f"{months}: not yet anonymised - do not distribute"
    return _download(dump.body, f"{name}.csv.gz", "application/gzip", headers)


#: The header a raw dump holding live pseudonyms carries (ASCII: a header is Latin-1).
DUMP_WARNING_HEADER = "X-Guildmeter-Warning"


def _days(daterange: DateRange) -> str:
    """Both days of a range, as the command line's file names carry them."""
    return f"{daterange.first_day:%Y-%m-%d}-to-{daterange.last_day:%Y-%m-%d}"


def _download(
    body: bytes, filename: str, content_type: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=body,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **(headers or {})},
    )


# -- the public view ------------------------------------------------------------------------


async def _public(request: web.Request) -> tuple[Dashboard, int, int]:
    """The guild and its small-cell threshold, when it opted into the public view; else 404
    (the same answer as for a guild we do not know, so the page reveals nothing)."""
    dash = dashboard_of(request.app)
    guild_id = int(request.match_info["guild"])
    settings = await dash.data.public_guild(guild_id)
    if settings is None:
        raise web.HTTPNotFound(text="no public statistics here")
    return dash, guild_id, settings.min_cell_users


async def _public_page(request: web.Request) -> web.StreamResponse:
    dash, guild_id, min_cell = await _public(request)
    name = dash.guild_names(guild_id) if dash.guild_names else None
    return _guild_html(
        dash,
        _session(request),
        guild_id,
        name or f"Server {guild_id}",
        public=True,
        channels=[],
        public_on=True,
        min_cell=min_cell,
    )


async def _public_panel(request: web.Request) -> web.StreamResponse:
    dash, guild_id, min_cell = await _public(request)
    panel = request.match_info["panel"]
    if panel not in PUBLIC_PANELS:
        raise web.HTTPNotFound()
    return web.json_response(
        await dash.data.panel(guild_id, panel, request.query, min_cell=min_cell)
    )


async def _public_csv(request: web.Request) -> web.StreamResponse:
    dash, guild_id, min_cell = await _public(request)
    text = await dash.data.view_csv(guild_id, request.query, min_cell=min_cell)
    name = f"guildmeter-{guild_id}-public-{_days(dash.data.range_of(guild_id, request.query))}"
    return _download(text.encode("utf-8"), f"{name}.csv", "text/csv")
