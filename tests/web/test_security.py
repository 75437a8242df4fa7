"""The obvious attacks on the dashboard get 401, 403, 400 or 404 — never data."""

from __future__ import annotations

import gzip
import time

from guildmeter.web.auth import SESSION_COOKIE, STATE_COOKIE

from tests.web.conftest import ALPHA, BETA, MEMBER, MOD, ROLE_MOD, Site, dashboard_of

API = "/api/tiles?period=30d"


async def _status(site: Site, client: object, path: str, **kwargs: object) -> int:
    async with client.get(site.url + path, allow_redirects=False, **kwargs) as r:  # type: ignore[attr-defined]
        return int(r.status)


async def test_moderator_sees_own_guild_not_another(site: Site) -> None:
    async with site.client() as client:
        await site.login(client, MOD)
        async with client.get(f"{site.url}/") as r:
            page = await r.text()
        assert f"/g/{ALPHA}" in page and f"/g/{BETA}" not in page  # a plain member of Beta
        assert await _status(site, client, f"/g/{ALPHA}{API}") == 200
        assert await _status(site, client, f"/g/{BETA}{API}") == 403
        assert await _status(site, client, f"/g/{BETA}") == 403
        assert await _status(site, client, f"/g/{BETA}/dump?period=30d") == 403
        assert await _status(site, client, f"/g/{BETA}/csv?period=30d") == 403
        assert await _status(site, client, f"/g/424242{API}") == 403  # a guild we do not know
        async with client.get(f"{site.url}/g/{ALPHA}/dump?period=7d") as r:  # theirs: the dump
            assert r.status == 200 and r.content_type == "application/gzip"
            lines = gzip.decompress(await r.read()).decode("utf-8-sig").splitlines()
        assert lines[0] == "Period,Event,User hash,Channel,Count" and len(lines) > 100


async def test_plain_member_sees_no_guild(site: Site) -> None:
    async with site.client() as client:
        await site.login(client, MEMBER)
        async with client.get(f"{site.url}/") as r:
            page = await r.text()
        assert 'id="no-guilds"' in page and f"/g/{ALPHA}" not in page
        assert await _status(site, client, f"/g/{ALPHA}{API}") == 403


async def test_mod_role_counts_and_its_loss_counts_at_once(site: Site) -> None:
    async with site.client() as client:
        await site.login(client, ROLE_MOD)
        assert await _status(site, client, f"/g/{ALPHA}{API}") == 200
        site.alpha.member_roles[ROLE_MOD] = []  # the role is taken away, on Discord
        assert await _status(site, client, f"/g/{ALPHA}{API}") == 403
        assert await _status(site, client, f"/g/{ALPHA}") == 403


async def test_moderator_checked_on_every_request(site: Site) -> None:
    async with site.client() as client:
        await site.login(client, MOD)
        before = site.emulator.member_fetches
        for _ in range(3):
            assert await _status(site, client, f"/g/{ALPHA}{API}") == 200
        assert site.emulator.member_fetches - before == 3


async def test_member_who_left_the_guild_is_refused(site: Site) -> None:
    async with site.client() as client:
        await site.login(client, MOD)
        del site.alpha.members[MOD]
        assert await _status(site, client, f"/g/{ALPHA}{API}") == 403


async def test_forged_expired_and_replayed_cookies(site: Site) -> None:
    sessions = dashboard_of(site).sessions
    async with site.client() as client:
        assert await _status(site, client, f"/g/{ALPHA}{API}") == 401  # no cookie at all
        await site.login(client, MOD)
        cookie = next(c.value for c in client.cookie_jar if c.key == SESSION_COOKIE)
        body, _, mac = cookie.rpartition(".")
        forged = f"{body}.{'0' * len(mac)}"
        headers = {"Cookie": f"{SESSION_COOKIE}={forged}"}
    async with site.client() as fresh:
        assert await _status(site, fresh, f"/g/{ALPHA}{API}", headers=headers) == 401
        # A validly signed cookie whose expiry passed:
        session_id = sessions.unsign(cookie)["sid"]
        old = sessions.sign({"sid": session_id, "exp": int(time.time()) - 1})
        headers = {"Cookie": f"{SESSION_COOKIE}={old}"}
        assert await _status(site, fresh, f"/g/{ALPHA}{API}", headers=headers) == 401
        # The real cookie works, until logout; replayed afterwards it opens nothing.
        headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
        assert await _status(site, fresh, f"/g/{ALPHA}{API}", headers=headers) == 200
        csrf = next(s.csrf for s in sessions._sessions.values() if s.id == session_id)
        async with fresh.post(f"{site.url}/logout", data={"csrf": csrf}, headers=headers,
                              allow_redirects=False) as r:  # fmt: skip
            assert r.status == 302
        assert await _status(site, fresh, f"/g/{ALPHA}{API}", headers=headers) == 401


async def test_state_missing_wrong_or_replayed(site: Site) -> None:
    async with site.client() as client:
        site.emulator.oauth_user = MOD
        async with client.get(f"{site.url}/login", allow_redirects=False) as r:
            authorize = r.headers["Location"]
        async with client.get(authorize, allow_redirects=False) as r:
            callback = r.headers["Location"]
        code = callback.split("code=")[1].split("&")[0]
        assert await _status(site, client, f"/callback?code={code}") == 400  # no state
        assert await _status(site, client, f"/callback?code={code}&state=forged") == 400
        async with site.client() as other:  # the right state, in another browser
            assert await _status(site, other, callback.removeprefix(site.url)) == 400
        assert await _status(site, client, callback.removeprefix(site.url)) == 302
        # The same callback again (replayed): the state was used.
        client.cookie_jar.clear(lambda c: c.key == SESSION_COOKIE)
        assert await _status(site, client, callback.removeprefix(site.url)) == 400
        assert await _status(site, client, f"/g/{ALPHA}{API}") == 401
        assert STATE_COOKIE  # the state cookie binds the state to the browser


async def test_cross_site_posts_are_refused(site: Site) -> None:
    sessions = dashboard_of(site).sessions
    async with site.client() as client:
        await site.login(client, MOD)
        csrf = next(iter(sessions._sessions.values())).csrf
        for data, origin in (({}, None), ({"csrf": "wrong"}, None),
                             ({"csrf": csrf}, "https://evil.example")):  # fmt: skip
            headers = {"Origin": origin} if origin else {}
            async with client.post(f"{site.url}/logout", data=data, headers=headers,
                                   allow_redirects=False) as r:  # fmt: skip
                assert r.status == 403
        assert await _status(site, client, f"/g/{ALPHA}{API}") == 200  # still logged in
        same_site = {"Origin": site.url}
        async with client.post(
            f"{site.url}/logout", data={"csrf": csrf}, headers=same_site, allow_redirects=False
        ) as r:
            assert r.status == 302
        assert await _status(site, client, f"/g/{ALPHA}{API}") == 401


async def test_oversized_and_malformed_queries(site: Site) -> None:
    async with site.client() as client:
        await site.login(client, MOD)
        long = "x" * 5000
        assert await _status(site, client, f"/g/{ALPHA}{API}&junk={long}") == 400
        for query in ("period=forever", "period=custom&start=2026-02-30&end=2026-03-01",
                      "period=custom&start=1900-01-01&end=1900-02-01", "period=month&month=13",
                      "period=30d&channel=123", "period=30d&channel=-1"):  # fmt: skip
            async with client.get(f"{site.url}/g/{ALPHA}/api/tiles?{query}") as r:
                assert r.status == 400, query
                assert "error" in await r.json()
        assert await _status(site, client, f"/g/{ALPHA}/api/nosuchpanel") == 404
        assert await _status(site, client, f"/g/{'9' * 30}{API}") == 404


async def test_local_link_once_and_from_this_machine_only(site: Site) -> None:
    sessions = dashboard_of(site).sessions
    token = sessions.local_token
    async with site.client() as client:
        forwarded = {"X-Forwarded-For": "203.0.113.9"}
        path = f"/login/local?token={token}"
        assert await _status(site, client, path, headers=forwarded) == 403
        assert await _status(site, client, "/login/local?token=guess") == 403
        assert await _status(site, client, path) == 302
        assert await _status(site, client, f"/g/{ALPHA}{API}") == 200
        assert await _status(site, client, f"/g/{BETA}{API}") == 200  # every guild
    async with site.client() as other:
        assert await _status(site, other, path) == 403  # used once already


async def test_public_view_is_opt_in_and_has_no_dump(site: Site) -> None:
    async with site.client() as client:
        assert await _status(site, client, f"/public/{ALPHA}") == 404
        assert await _status(site, client, f"/public/{ALPHA}{API}") == 404
        site.public(ALPHA)
        assert await _status(site, client, f"/public/{ALPHA}") == 200
        async with client.get(f"{site.url}/public/{ALPHA}") as r:
            assert "Server " in await r.text()  # no name known yet: the id
        async with site.client() as moderator:
            await site.login(moderator, MOD)  # the bot's REST answers name the guild
        async with client.get(f"{site.url}/public/{ALPHA}") as r:
            assert "<h1>Alpha" in await r.text()
        assert await _status(site, client, f"/public/{ALPHA}{API}") == 200
        assert await _status(site, client, f"/public/{ALPHA}/dump?period=30d") == 404
        assert await _status(site, client, f"/public/{ALPHA}/api/usage?period=30d") == 404
        assert await _status(site, client, f"/g/{ALPHA}{API}") == 401  # not a moderator view
        site.public(ALPHA, on=False)
        assert await _status(site, client, f"/public/{ALPHA}{API}") == 404


async def test_pages_carry_security_headers(site: Site) -> None:
    async with site.client() as client, client.get(f"{site.url}/") as r:
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY"
        await site.login(client, MOD)
        cookie = next(c for c in client.cookie_jar if c.key == SESSION_COOKIE)
        assert cookie["httponly"] and cookie["samesite"] == "Lax"


async def test_behind_https_cookies_are_secure(site: Site) -> None:
    from aiohttp import web

    from guildmeter.web.app import create_app
    from guildmeter.web.app import dashboard_of as dashboard

    app = create_app(site.store, public_url="https://stats.example.org/")
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with site.client() as client:
            token = dashboard(app).sessions.local_token
            url = f"http://127.0.0.1:{port}/login/local?token={token}"
            async with client.get(url, allow_redirects=False) as r:
                cookie = r.headers["Set-Cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    finally:
        await runner.cleanup()
