"""The dashboard's data endpoints on a month of a large server, over real HTTP.

The month is bench_reports' (about 1,000,000 activity rows: 20,000 posting users, 50 text
and 5 voice channels). A page load fetches four panels at once (tiles, series, heatmap,
channels); ``dashboard_page_s`` is the wall time of those four requests for one calendar
month, best of three, through aiohttp and a local session. Each panel's own time is given
beside it, and the 12-month view's page.

Baseline, same run: ``guildmeter report full`` of the same month (`compute_report`), the
single report a moderator would otherwise ask for. SQLite, then PostgreSQL when reachable
(keys with ``_postgresql``).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
from aiohttp import web

from bench_reports import GUILD, MONTH, populate
from guildmeter.reports import compute_report
from guildmeter.store import Store
from guildmeter.web.app import create_app, dashboard_of

from _common import PG_URL, best_of, emit, peak_rss_mb, pg_schema, postgresql_available

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

            month = f"period=month&month={MONTH.start:%Y-%m}"
            figures[f"dashboard_page_s{suffix}"] = min([await page(month) for _ in range(3)])
            for panel in PAGE:
                times = [await fetch(panel, month) for _ in range(3)]
                figures[f"dashboard_{panel}_s{suffix}"] = min(times)
            channel = f"{month}&channel=103"
            times = [await page(channel) for _ in range(3)]
            figures[f"dashboard_page_one_channel_s{suffix}"] = min(times)
            times = [await page("period=12m") for _ in range(2)]
            figures[f"dashboard_page_12m_s{suffix}"] = min(times)
    finally:
        await runner.cleanup()
    return figures


def measure(store: Store, suffix: str) -> dict[str, Any]:
    start = time.perf_counter()
    rows = populate(store)
    store.analyze()  # a bulk load, as after an import
    print(f"populated {rows:,} rows in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    figures = asyncio.run(_measure(store, suffix))
    figures[f"dashboard_page_s{suffix}_baseline"] = best_of(
        3, lambda: compute_report(store, GUILD, "full", MONTH)
    )
    figures[f"activity_rows{suffix}"] = rows
    return figures


def main() -> None:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(str(Path(folder) / "bench.db"))
        figures.update(measure(store, ""))
        store.close()
    figures["peak_rss_mb"] = peak_rss_mb()
    if postgresql_available():
        with pg_schema() as kwargs:
            pg = Store.open(PG_URL, **kwargs)
            figures.update(measure(pg, "_postgresql"))
            pg.close()
    else:
        print(f"PostgreSQL at {PG_URL} not reachable: skipped", file=sys.stderr)
    emit(figures)


if __name__ == "__main__":
    main()
