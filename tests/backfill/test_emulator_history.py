"""The emulator's history routes answer as Discord does, refuse what Discord refuses, and
rate-limit as Discord says it does — so the backfill's end-to-end tests mean something."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from tests.discord_emulator import Emulator
from tests.discord_emulator.history import FORUM, PUBLIC_THREAD, TEXT, History

T0 = datetime(2026, 3, 1, tzinfo=UTC)
BOT = {"Authorization": "Bot emulated-token"}


@pytest.fixture
async def served() -> AsyncIterator[tuple[Emulator, History, aiohttp.ClientSession, int]]:
    emulator = Emulator()
    guild = emulator.add_guild("Alpha", [], [], [(1001, "ann")])
    history = History(emulator, global_per_second=30, bucket_limit=3, bucket_window=0.5)
    general = history.add_channel(guild, "general", TEXT, created=T0 - timedelta(days=9))
    for minute in range(250):
        history.add(general.id, 1001, T0 + timedelta(minutes=minute), bot=minute % 50 == 0)
    forum = history.add_channel(guild, "help", FORUM, created=T0 - timedelta(days=8))
    for day in range(5):
        history.add_channel(
            guild, f"post-{day}", PUBLIC_THREAD, parent=forum.id, created=T0,
            archived_at=T0 + timedelta(days=day) if day < 4 else None,
        )  # fmt: skip
    await emulator.start(history.routes)
    async with aiohttp.ClientSession(headers=BOT) as session:
        yield emulator, history, session, general.id
    await emulator.stop()


async def test_history_pages_newest_first_with_before_and_after(
    served: tuple[Emulator, History, aiohttp.ClientSession, int],
) -> None:
    emulator, history, session, general = served
    url = f"{emulator.api_base}/channels/{general}/messages"
    async with session.get(url, params={"limit": "100"}) as response:
        page = await response.json()
        assert response.headers["X-RateLimit-Limit"] == "3"
    ids = [int(m["id"]) for m in page]
    assert len(ids) == 100 and ids == sorted(ids, reverse=True)
    assert ids[0] == history.channels[general].ids[-1]
    async with session.get(url, params={"limit": "100", "before": str(ids[-1])}) as response:
        older = [int(m["id"]) for m in await response.json()]
    assert max(older) < min(ids) and len(older) == 100
    first = history.channels[general].ids[0]
    async with session.get(url, params={"limit": "5", "after": str(first)}) as response:
        after = [int(m["id"]) for m in await response.json()]
    assert after == list(reversed(history.channels[general].ids[1:6]))
    assert sum(1 for m in page if m["author"]["bot"]) == 2
    assert emulator.errors == []


@pytest.mark.parametrize(
    "params",
    [{"limit": "101"}, {"limit": "0"}, {"before": "5", "after": "3"}, {"limit": "ten"}],
)
async def test_what_discord_refuses_is_refused_and_recorded(
    served: tuple[Emulator, History, aiohttp.ClientSession, int], params: dict[str, str]
) -> None:
    emulator, _history, session, general = served
    async with session.get(f"{emulator.api_base}/channels/{general}/messages", params=params) as r:
        assert r.status == 400
        assert (await r.json())["code"] == 50035
    assert len(emulator.errors) == 1
    emulator.errors.clear()


async def test_forum_posts_are_threads_and_a_forum_has_no_messages(
    served: tuple[Emulator, History, aiohttp.ClientSession, int],
) -> None:
    emulator, history, session, _general = served
    forum = next(c for c in history.channels.values() if c.type == FORUM)
    guild = forum.guild_id
    async with session.get(f"{emulator.api_base}/guilds/{guild}/threads/active") as r:
        active = (await r.json())["threads"]
    assert [t["name"] for t in active] == ["post-4"]
    archived = f"{emulator.api_base}/channels/{forum.id}/threads/archived/public"
    async with session.get(archived, params={"limit": "2"}) as r:
        answer = await r.json()
    assert [t["name"] for t in answer["threads"]] == ["post-3", "post-2"] and answer["has_more"]
    before = answer["threads"][-1]["thread_metadata"]["archive_timestamp"]
    async with session.get(archived, params={"limit": "2", "before": before}) as r:
        answer = await r.json()
    assert [t["name"] for t in answer["threads"]] == ["post-1", "post-0"]
    assert not answer["has_more"]
    async with session.get(f"{emulator.api_base}/channels/{forum.id}/messages") as r:
        assert r.status == 400 and (await r.json())["code"] == 50024
    emulator.errors.clear()


async def test_buckets_and_the_global_limit_answer_429_with_retry_after(
    served: tuple[Emulator, History, aiohttp.ClientSession, int],
) -> None:
    emulator, history, session, general = served
    url = f"{emulator.api_base}/channels/{general}/messages"
    statuses = []
    for _ in range(4):
        async with session.get(url, params={"limit": "1"}) as r:
            statuses.append(r.status)
            if r.status == 429:
                body = await r.json()
                assert r.headers["Via"] and 0 < body["retry_after"] <= 0.5
                assert body["global"] is False and r.headers["X-RateLimit-Remaining"] == "0"
            else:
                remaining = int(r.headers["X-RateLimit-Remaining"])
    assert statuses == [200, 200, 200, 429] and remaining == 0
    # Many channels, one bot: the global limit (30 a second here) stops them all.
    others = [
        history.add_channel(
            emulator.guilds[history.channels[general].guild_id], f"c{i}", TEXT, created=T0
        ).id
        for i in range(12)
    ]
    global_hits = 0
    for channel in others * 3:
        async with session.get(f"{emulator.api_base}/channels/{channel}/messages") as r:
            if r.status == 429 and (await r.json())["global"]:
                global_hits += 1
    assert global_hits > 0 and history.global_429s == global_hits
