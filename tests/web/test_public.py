"""The public view over HTTP: no figure about fewer than ``min_cell_users`` members, the
same answer for every visitor for a minute, and the moderators' view stays exact."""

from __future__ import annotations

from datetime import timedelta

from guildmeter.activity import ActivityStats
from guildmeter.store.settings import SettingsStore
from guildmeter.timeutil import utcnow

from tests.web.conftest import ALPHA, MOD, Site


async def _json(site: Site, client: object, path: str) -> dict[str, object]:
    async with client.get(site.url + path) as r:  # type: ignore[attr-defined]
        assert r.status == 200, path
        return dict(await r.json())


async def test_public_answers_show_no_small_cell(site: Site) -> None:
    site.public(ALPHA)
    SettingsStore(site.store).set_single(ALPHA, "min_cell_users", 8)
    async with site.client() as client:
        for period in ("today", "7d", "30d", "month", "12m"):
            base = f"/public/{ALPHA}/api"
            tiles = await _json(site, client, f"{base}/tiles?period={period}")
            assert tiles["min_cell_users"] == 8
            users = [t["value"] for t in tiles["tiles"] if t["key"] == "active_users"]  # type: ignore[attr-defined, index]
            points = (await _json(site, client, f"{base}/series?period={period}"))["points"]
            channels = (await _json(site, client, f"{base}/channels?period={period}"))["channels"]
            users += [p["active_users"] for p in points]  # type: ignore[attr-defined, index]
            users += [c["active_users"] for c in channels]  # type: ignore[attr-defined, index]
            assert all(u is None or u == 0 or u >= 8 for u in users), period
            hidden = [p for p in points if p["active_users"] is None]  # type: ignore[attr-defined, index]
            assert len(hidden) != 1, "one hidden part of a published sum is no secret"
        hourly = (await _json(site, client, f"{base}/series?period=today"))["points"]
        assert any(p["active_users"] is None for p in hourly)  # type: ignore[attr-defined, index]


async def test_public_answers_are_shared_for_a_minute(site: Site) -> None:
    site.public(ALPHA)
    path = f"/public/{ALPHA}/api/tiles?period=today"
    async with site.client() as visitor, site.client() as moderator:
        await site.login(moderator, MOD)
        before = await _json(site, visitor, path)
        exact = await _json(site, moderator, f"/g/{ALPHA}/api/tiles?period=today")
        stats = ActivityStats(site.store)
        when = utcnow() - timedelta(minutes=1)
        for user in range(50):
            stats.collector.message(ALPHA, ALPHA + 1000, 9_000 + user, when)
        stats.close(utcnow())
        assert await _json(site, visitor, path) == before  # the cached answer
        after = await _json(site, moderator, f"/g/{ALPHA}/api/tiles?period=today")
        messages = [
            next(t["value"] for t in d["tiles"] if t["key"] == "messages")  # type: ignore[attr-defined, index]
            for d in (exact, after)
        ]
        assert messages[1] == messages[0] + 50  # moderators see the database as it is
