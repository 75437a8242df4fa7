"""A dashboard served on 127.0.0.1 against the Discord emulator, over a simulated server.

The database is simulated once per session (`guildmeter.demo.simulate`: the real collector,
keyring and store) from the first of last month until now, for the emulator's guild
"Alpha"; each test gets a fresh emulator, dashboard and copy of the database.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from guildmeter.activity import ActivityStats
from guildmeter.config import Config
from guildmeter.demo import default_demo_period, simulate
from guildmeter.store import Store
from guildmeter.store.settings import SettingsStore
from guildmeter.timeutil import utcnow
from guildmeter.web import app as web_app
from guildmeter.web.auth import RestMembers
from guildmeter.web.server import build_app

from tests.discord_emulator import Emulator
from tests.discord_emulator.server import MANAGE_GUILD, FakeGuild

#: Guild ids are fixed here (the emulator's are made from the clock): the simulated data
#: must belong to the emulator's guilds.
ALPHA, BETA = 300_000_000_000_000_001, 300_000_000_000_000_101
MOD, MEMBER, ROLE_MOD = 1001, 1002, 1003


@pytest.fixture(scope="session")
def simulated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dashboard") / "stats.db"
    stats = ActivityStats(Store.open(str(path)))
    start, end = default_demo_period(utcnow())
    for i in range(40):  # bot usage of the last days, written by the simulation's flushes
        stats.usage.command(
            "imagine" if i % 4 else "stats", guild_id=ALPHA, channel_id=ALPHA + 1000,
            user_id=2000 + i % 7, kind="slash", duration_ms=80.0 + 15 * i, ok=i % 10 != 3,
            at=end - timedelta(hours=3 * i),
        )  # fmt: skip
    simulate(stats, start=start, end=end, guild_id=ALPHA, users=40, messages_per_day=400,
             text_channels=5, voice_channels=2, seed=15, bot_usage=False)  # fmt: skip
    simulate(stats, start=end.replace(hour=0), end=end, guild_id=BETA, users=20,
             messages_per_day=100, text_channels=2, voice_channels=1, seed=16,
             bot_usage=False)  # fmt: skip
    stats.store.close()
    return path


@dataclass
class Site:
    emulator: Emulator
    store: Store
    db: Path
    url: str
    app: web.Application

    @property
    def alpha(self) -> FakeGuild:
        return self.emulator.guilds[ALPHA]

    def client(self) -> aiohttp.ClientSession:
        """A browser-like client: keeps cookies (for 127.0.0.1 too), does not follow
        redirects by itself."""
        return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def login(self, client: aiohttp.ClientSession, user_id: int) -> None:
        """The whole OAuth2 dance, as a browser follows it."""
        self.emulator.oauth_user = user_id
        async with client.get(f"{self.url}/login") as r:
            assert r.status == 200, await r.text()
            assert str(r.url).startswith(self.url + "/"), "back on the dashboard"

    def public(self, guild_id: int, on: bool = True) -> None:
        SettingsStore(self.store).set_single(guild_id, "public_view", 1 if on else None)


def _add(emulator: Emulator, guild_id: int, name: str, text: list[str],
         users: list[tuple[int, str]]) -> FakeGuild:  # fmt: skip
    guild = emulator.add_guild(name, text, ["Lounge"], users)
    del emulator.guilds[guild.id]
    guild.id = guild_id
    emulator.guilds[guild_id] = guild
    return guild


@pytest.fixture
async def site(simulated_db: Path, tmp_path: Path) -> AsyncIterator[Site]:
    db = tmp_path / "stats.db"
    shutil.copy(simulated_db, db)
    emulator = Emulator()
    alpha = _add(emulator, ALPHA, "Alpha", ["general"],
                 [(MOD, "ann"), (MEMBER, "bob"), (ROLE_MOD, "cyd")])  # fmt: skip
    alpha.member_roles[MOD] = [alpha.add_role("Moderators", MANAGE_GUILD)]
    helpers = alpha.add_role("Helpers", 0)
    alpha.member_roles[ROLE_MOD] = [helpers]
    _add(emulator, BETA, "Beta", ["general"], [(MOD, "ann"), (MEMBER, "bob")])
    await emulator.start()
    store = Store.open(str(db))
    SettingsStore(store).toggle(ALPHA, "mod_role", helpers)  # Helpers moderate Alpha
    runner: web.AppRunner | None = None
    async with aiohttp.ClientSession() as http:
        config = Config(
            db=str(db),
            oauth_client_id=emulator.oauth_client_id,
            oauth_client_secret=emulator.oauth_client_secret,
            oauth_authorize_url=emulator.oauth_authorize_url,
            discord_api_base=emulator.api_base,
        )
        members = RestMembers(http, emulator.api_base, "emulated-token")
        # The port is known only once listening: bind first, then build the app on it.
        probe = web.AppRunner(web.Application())
        await probe.setup()
        site_ = web.TCPSite(probe, "127.0.0.1", 0)
        await site_.start()
        port = site_._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        await probe.cleanup()
        url = f"http://127.0.0.1:{port}"
        app = build_app(config, store, http, url, members=members, check_ttl=0.0,
                        guild_names=members.names.get)  # fmt: skip
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield Site(emulator, store, db, url, app)
        finally:
            await runner.cleanup()
            await emulator.stop()
            store.close()


def dashboard_of(site: Site) -> Any:
    return web_app.dashboard_of(site.app)
