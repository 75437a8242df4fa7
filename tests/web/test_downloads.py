"""Downloads are named after the guild and the days, and a dump of a month not yet
anonymised says so (its name, a header, and the page beside its link)."""

from __future__ import annotations

import gzip
from datetime import timedelta

from guildmeter.timeutil import add_months, month_of, month_start, utcnow
from guildmeter.web.app import DUMP_WARNING_HEADER

from tests.web.conftest import ALPHA, MOD, Site


def _attachment(headers: object) -> str:
    disposition = headers["Content-Disposition"]  # type: ignore[index]
    assert disposition.startswith('attachment; filename="') and disposition.endswith('"')
    return str(disposition.removeprefix('attachment; filename="').removesuffix('"'))


async def test_a_dump_of_the_month_in_progress_is_named_and_marked_not_anonymised(
    site: Site,
) -> None:
    today = f"{utcnow():%Y-%m-%d}"
    async with site.client() as client:
        await site.login(client, MOD)
        async with client.get(f"{site.url}/g/{ALPHA}/dump?period=today") as r:
            assert r.status == 200
            name, warning = _attachment(r.headers), r.headers.get(DUMP_WARNING_HEADER)
            assert gzip.decompress(await r.read()).startswith("\ufeffPeriod".encode())
        assert name == f"userstats-{ALPHA}-{today}-to-{today}-NOT-ANONYMISED.csv.gz"
        assert warning == f"{today[:7]}: not yet anonymised - do not distribute"
        async with client.get(f"{site.url}/g/{ALPHA}/api/tiles?period=today") as r:
            assert (await r.json())["unanonymised_months"] == [today[:7]]


async def test_a_dump_of_an_anonymised_month_carries_no_warning(site: Site) -> None:
    last_month = add_months(month_of(utcnow()), -1)
    query = f"period=month&month={last_month // 100}-{last_month % 100:02d}"
    async with site.client() as client:
        await site.login(client, MOD)
        async with client.get(f"{site.url}/g/{ALPHA}/api/tiles?{query}") as r:
            tiles = await r.json()
        assert tiles["unanonymised_months"] == []
        first = tiles["start"][:10]
        async with client.get(f"{site.url}/g/{ALPHA}/dump?{query}") as r:
            assert r.status == 200 and DUMP_WARNING_HEADER not in r.headers
            name = _attachment(r.headers)
        last = month_start(add_months(last_month, 1)) - timedelta(days=1)
        assert name == f"userstats-{ALPHA}-{first}-to-{last:%Y-%m-%d}.csv.gz"  # both days in


async def test_the_view_csv_is_named_after_the_guild_and_the_days(site: Site) -> None:
    today = f"{utcnow():%Y-%m-%d}"
    async with site.client() as client:
        await site.login(client, MOD)
        async with client.get(f"{site.url}/g/{ALPHA}/csv?period=today") as r:
            assert r.status == 200
            assert _attachment(r.headers) == f"guildmeter-{ALPHA}-view-{today}-to-{today}.csv"
