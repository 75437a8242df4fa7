"""The dashboard's data endpoints on twelve months of a large server, over real HTTP.

The server is bench_history's year (bench_reports' month, about 1,000,000 activity rows a
month: 20,000 posting users, 50 text and 5 voice channels, for twelve months). A page
load fetches four panels at once (tiles, series, heatmap, channels); ``dashboard_page_s``
is the wall time of those four requests for one calendar month (March 2026), best of
three, through aiohttp and a local session. Each panel's own time is given beside it, one
channel's page, and the 12-month view's page (weekly chart), best of three:
``dashboard_page_12m_s`` once the closed months' weekly distinct users are stored (what
the bot's monthly job does, `guildmeter.store.spans.build_missing`, timed as
``span_users_build_s``), ``dashboard_page_12m_s_unstored`` before (counted from the day
bits of every month, as on the first load after an upgrade). ``dashboard_page_30d_s``: the
last 30 days (a suffix of November and today).

Baseline, same run: the same four panels computed live from the hourly rows, four at once
as a page does (`live_figures` for the tiles and the daily series, `activity_series` for
the heatmap, `live_channel_figures` for the channels), as the dashboard did before day
summaries; also ``guildmeter report full`` of the month. The run checks that the tiles
equal the live figures. SQLite; PostgreSQL (keys with ``_postgresql``) when reachable and
GUILDMETER_BENCH_PG_YEAR is set.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from concurrent.futures import ThreadPoolExecutor

import aiohttp
from aiohttp import web

from bench_history import populate_year
from bench_reports import GUILD, MONTH
from guildmeter.reports import compute_report
from guildmeter.reports.dashboard import dashboard_period, live_channel_figures, live_figures
from guildmeter.reports.dashboard import tiles as dashboard_tiles
from guildmeter.reports.series import activity_series
from guildmeter.store import Store
from guildmeter.store.spans import build_missing
from guildmeter.timeutil import utcnow
from guildmeter.web.app import create_app, dashboard_of

from _common import best_of, emit_year_figures

PAGE = ("tiles", "series", "heatmap", "channels")


async def _measure(store: Store, suffix: str) -> dict[str, Any]:
    app = create_app(store, public_url="http://127.0.0.1")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    figures: dict[str, Any] = {}
    try:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as client:
            token = dashboard_of(app).sessions.local_token
            async with client.get(f"{url}/login/local?token={token}") as r:
                assert r.status == 200

            async def fetch(panel: str, query: str) -> float:
                start = time.perf_counter()
                async with client.get(f"{url}/g/{GUILD}/api/{panel}?{query}") as r:
                    assert r.status == 200, await r.text()
                    await r.read()
                return time.perf_counter() - start

            async def page(query: str) -> float:
                start = time.perf_counter()
                await asyncio.gather(*(fetch(panel, query) for panel in PAGE))
                return time.perf_counter() - start

            async def answers(query: str) -> list[Any]:
                found = []
                for panel in PAGE:
                    async with client.get(f"{url}/g/{GUILD}/api/{panel}?{query}") as r:
                        found.append(await r.json())
                return found

            times = [await page("period=12m") for _ in range(3)]
            figures[f"dashboard_page_12m_s{suffix}_unstored"] = min(times)
            unstored = await answers("period=12m")
            start = time.perf_counter()
            built = await asyncio.to_thread(build_missing, store, utcnow())
            figures[f"span_users_build_s{suffix}"] = time.perf_counter() - start
            assert built, "no closed month to store"
            assert await answers("period=12m") == unstored, "stored spans differ from the bits"

            month = f"period=month&month={MONTH.start:%Y-%m}"
            figures[f"dashboard_page_s{suffix}"] = min([await page(month) for _ in range(3)])
            for panel in PAGE:
                times = [await fetch(panel, month) for _ in range(3)]
                figures[f"dashboard_{panel}_s{suffix}"] = min(times)
            channel = f"{month}&channel=103"
            times = [await page(channel) for _ in range(3)]
            figures[f"dashboard_page_one_channel_s{suffix}"] = min(times)
            times = [await page("period=12m") for _ in range(3)]
            figures[f"dashboard_page_12m_s{suffix}"] = min(times)
            times = [await page("period=30d") for _ in range(3)]
            figures[f"dashboard_page_30d_s{suffix}"] = min(times)
    finally:
        await runner.cleanup()
    return figures


def live_page(store: Store) -> None:
    """The month's four panels from the hourly rows, four at once (the baseline)."""
    period = dashboard_period("month", month=f"{MONTH.start:%Y-%m}")
    with ThreadPoolExecutor(4) as pool:
        jobs = [
            pool.submit(live_figures, store, GUILD, period.range, None, None),
            pool.submit(live_figures, store, GUILD, period.previous, None, None),
            pool.submit(live_figures, store, GUILD, period.range, None, "day"),
            pool.submit(activity_series, store, GUILD, period.range),
            pool.submit(live_channel_figures, store, GUILD, period.range),
        ]
        for job in jobs:
            job.result()


def measure(store: Store, suffix: str) -> dict[str, Any]:
    start = time.perf_counter()
    rows = populate_year(store)
    store.analyze()  # a bulk load, as after an import
    print(f"populated {rows:,} rows in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    period = dashboard_period("month", month=f"{MONTH.start:%Y-%m}")
    shown = {t.key: t.value for t in dashboard_tiles(store, GUILD, period)}
    live = live_figures(store, GUILD, period.range, None, None)[0]
    expected = (live.messages, live.active_users, live.member_total)
    got = (shown["messages"], shown["active_users"], shown["member_total"])
    assert got == expected, f"tiles {got} differ from the rows {expected}"
    figures = asyncio.run(_measure(store, suffix))
    figures[f"dashboard_page_s{suffix}_baseline"] = best_of(2, lambda: live_page(store))
    figures[f"report_full_s{suffix}"] = best_of(
        3, lambda: compute_report(store, GUILD, "full", MONTH)
    )
    figures[f"activity_rows{suffix}"] = rows
    return figures


def main() -> None:
    emit_year_figures(measure)


if __name__ == "__main__":
    main()
