"""The emulator's OAuth2 and member routes refuse what Discord refuses, so that the
dashboard's tests would notice a client that gets them wrong."""

from __future__ import annotations

import base64

import aiohttp

from tests.web.conftest import ALPHA, MEMBER, MOD, Site


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_codes_are_single_use_and_need_the_client_secret(site: Site) -> None:
    emulator = site.emulator
    emulator.oauth_user = MOD
    redirect = f"{site.url}/callback"
    query = {"client_id": emulator.oauth_client_id, "response_type": "code",
             "scope": "identify guilds", "state": "s", "redirect_uri": redirect}  # fmt: skip
    async with aiohttp.ClientSession() as http:
        async with http.get(emulator.oauth_authorize_url, params={**query, "scope": "identify"},
                            allow_redirects=False) as r:  # fmt: skip
            assert r.status == 400  # the dashboard must ask for guilds too
        async with http.get(emulator.oauth_authorize_url, params=query,
                            allow_redirects=False) as r:  # fmt: skip
            code = r.headers["Location"].split("code=")[1].split("&")[0]
        token_url = f"{emulator.api_base}/oauth2/token"
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect}
        wrong = _basic(emulator.oauth_client_id, "wrong")
        async with http.post(token_url, data=form, headers=wrong) as r:
            assert r.status == 401
        right = _basic(emulator.oauth_client_id, emulator.oauth_client_secret)
        async with http.post(token_url, data=form, headers=right) as r:
            token = (await r.json())["access_token"]
        async with http.post(token_url, data=form, headers=right) as r:
            assert r.status == 400  # the code was used
        bearer = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{emulator.api_base}/users/@me", headers=bearer) as r:
            assert (await r.json())["id"] == str(MOD)
        async with http.get(f"{emulator.api_base}/users/@me/guilds", headers=bearer) as r:
            guilds = {g["id"]: int(g["permissions"]) for g in await r.json()}
        assert guilds[str(ALPHA)] & (1 << 5)  # Manage Server in Alpha


async def test_member_routes_need_the_bot_token(site: Site) -> None:
    base = f"{site.emulator.api_base}/guilds/{ALPHA}"
    bot = {"Authorization": "Bot emulated-token"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/members/{MEMBER}") as r:
            assert r.status == 404
        async with http.get(f"{base}/members/{MEMBER}", headers=bot) as r:
            assert (await r.json())["user"]["id"] == str(MEMBER)
        async with http.get(f"{base}/members/424242", headers=bot) as r:
            assert r.status == 404 and (await r.json())["code"] == 10007
        async with http.get(f"{base}/roles", headers=bot) as r:
            names = {role["name"] for role in await r.json()}
        assert {"@everyone", "Moderators", "Helpers"} <= names
