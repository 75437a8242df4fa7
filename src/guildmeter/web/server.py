"""Running the dashboard: ``guildmeter serve`` on its own, or inside the bot's process.

Standalone, moderators are checked over Discord's REST API with the bot's token
(``DISCORD_TOKEN``); inside the bot, from the bot's own view of the member. With no OAuth2
application configured, a one-time local link is printed instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from guildmeter.config import Config
from guildmeter.errors import GuildmeterError
from guildmeter.store import Store
from guildmeter.store.spans import build_missing
from guildmeter.timeutil import utcnow
from guildmeter.web.app import create_app, dashboard_of
from guildmeter.web.auth import (
    CHECK_TTL_S,
    BotMembers,
    DiscordOAuth,
    ModeratorCheck,
    RestMembers,
)

__all__ = ["build_app", "keep_spans_stored", "public_url_of", "serve", "start_in_bot"]

log = logging.getLogger(__name__)

#: How often a standalone dashboard stores the distinct users of newly closed months.
SPANS_EVERY_S = 3600.0


async def keep_spans_stored(
    store: Store, *, every_s: float = SPANS_EVERY_S, clock: Callable[[], datetime] = utcnow
) -> None:
    """Store the distinct users of closed months that lack them, now and every ``every_s``
    (`guildmeter.store.spans.build_missing`, in a thread: never on a page's path).

    The bot's monthly job does this; a dashboard served on its own, over a database no bot
    writes (an import, a copy), would otherwise count every long period from the members'
    day bits on each page (0.2-0.5 s for a year of a big server instead of 0.03 s).
    """
    while True:
        try:
            built = await asyncio.to_thread(build_missing, store, clock())
            if built:
                log.info("stored the distinct users of %d closed month(s)", len(built))
        except Exception:  # the database may be down or busy: try again later
            log.exception("storing the distinct users of closed months failed")
        await asyncio.sleep(every_s)


def public_url_of(config: Config, host: str, port: int) -> str:
    """The address browsers use: ``dashboard_public_url``, else ``http://host:port``."""
    if config.dashboard_public_url:
        return config.dashboard_public_url.rstrip("/")
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def build_app(
    config: Config,
    store: Store,
    http: aiohttp.ClientSession,
    public_url: str,
    *,
    members: ModeratorCheck | None = None,
    guild_names: Callable[[int], str | None] | None = None,
    check_ttl: float = CHECK_TTL_S,
) -> web.Application:
    """The application with the configured login (OAuth2 when a client is configured);
    ``check_ttl``: how long a moderator check is reused (seconds)."""
    oauth = None
    if config.oauth_client_id:
        if not config.oauth_client_secret:
            raise GuildmeterError(
                "oauth_client_id is set but not its secret: set oauth_client_secret or "
                "GUILDMETER_OAUTH_CLIENT_SECRET"
            )
        if members is None:
            raise GuildmeterError(
                "Login with Discord needs the bot's token to check moderators: set "
                "DISCORD_TOKEN (or leave oauth_client_id empty for the local one-time link)"
            )
        oauth = DiscordOAuth(
            http,
            client_id=config.oauth_client_id,
            client_secret=config.oauth_client_secret,
            redirect_uri=f"{public_url}/callback",
            authorize_url=config.oauth_authorize_url,
            api_base=config.discord_api_base,
        )
    secret = config.dashboard_secret.encode() or None
    return create_app(
        store, public_url=public_url, secret=secret, oauth=oauth, members=members,
        guild_names=guild_names,
        check_ttl=check_ttl,
    )  # fmt: skip


def local_link(app: web.Application) -> str:
    dash = dashboard_of(app)
    return f"{dash.public_url}/login/local?token={dash.sessions.local_token}"


async def _listen(app: web.Application, host: str, port: int) -> web.AppRunner:
    """The app served on host:port (access not logged: URLs carry login codes)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise GuildmeterError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return runner


def serve(
    config: Config,
    store: Store,
    host: str,
    port: int,
    *,
    say: Callable[[str], None] = print,
    ready: Callable[[web.Application], Any] | None = None,
) -> None:
    """Serve until Ctrl-C (see the module docstring)."""

    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            token = os.environ.get("DISCORD_TOKEN", "").strip()
            members = RestMembers(http, config.discord_api_base, token) if token else None
            public_url = public_url_of(config, host, port)
            names = None if members is None else members.names.get
            app = build_app(config, store, http, public_url, members=members, guild_names=names)
            runner = await _listen(app, host, port)
            say(f"Dashboard on {public_url} (Ctrl-C to stop)")
            if dashboard_of(app).oauth is None:
                say(f"One-time login link (this machine only): {local_link(app)}")
            spans = asyncio.create_task(keep_spans_stored(store))
            if ready is not None:
                ready(app)
            try:
                await asyncio.Event().wait()
            finally:
                spans.cancel()
                await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return


async def start_in_bot(bot: Any, config: Config, store: Store) -> web.AppRunner:
    """Serve the dashboard from the bot's own loop (``dashboard = true``); the caller
    cleans the runner up when the extension unloads."""
    http = aiohttp.ClientSession()
    host, port = config.dashboard_host, config.dashboard_port
    public_url = public_url_of(config, host, port)

    def name_of(guild_id: int) -> str | None:
        guild = bot.get_guild(guild_id)
        return None if guild is None else str(guild.name)

    app = build_app(config, store, http, public_url, members=BotMembers(bot), guild_names=name_of)
    app.on_cleanup.append(lambda _app: http.close())
    runner = await _listen(app, host, port)
    log.warning("dashboard on %s", public_url)
    if dashboard_of(app).oauth is None:
        log.warning("one-time dashboard login link (this machine only): %s", local_link(app))
    return runner
