"""The bot-usage tab covers the period the page names, and its caption says it in words."""

from __future__ import annotations

from datetime import timedelta

from guildmeter.timeutil import add_months, month_of, month_start, utcnow

from tests.web.conftest import ALPHA, MOD, Site


async def test_the_usage_tab_covers_the_period_and_says_it_in_words(site: Site) -> None:
    now = utcnow()
    last_month = add_months(month_of(now), -1)
    first = month_start(last_month)
    last = month_start(add_months(last_month, 1)) - timedelta(days=1)
    async with site.client() as client:
        await site.login(client, MOD)
        async with client.get(f"{site.url}/g/{ALPHA}/api/usage?period=12m") as r:
            year = await r.json()
        query = f"period=month&month={last_month // 100}-{last_month % 100:02d}"
        async with client.get(f"{site.url}/g/{ALPHA}/api/usage?{query}") as r:
            month = await r.json()
    twelve = year["usage"]
    assert year["usage_label"].startswith(
        f"Bot usage, the last 12 months (this one so far): {twelve['start']} to "
        f"{now:%Y-%m-%d} (UTC)"
    )
    assert twelve["start"] == year["start"][:10]  # the 1st of the month 11 months back
    # A past month is that month, not as many days up to today.
    assert (month["usage"]["start"], month["usage"]["end"]) == (
        f"{first:%Y-%m-%d}",
        f"{last:%Y-%m-%d}",
    )
    assert month["usage_label"].startswith(
        f"Bot usage, {first:%B %Y}: {first:%Y-%m-%d} to {last:%Y-%m-%d} (UTC)"
    )
