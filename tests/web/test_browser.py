"""The dashboard in a real headless Chromium (Debian's, with its driver), against the
Discord emulator: log in as a moderator, read the tiles the CLI report gives, switch
periods and channels, hover the chart, download the CSV; a plain member sees no guild; the
public view hides small cells. Without Chromium: skipped, or failed under CI."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from guildmeter.timeutil import add_months, month_of

from tests.web.conftest import ALPHA, MEMBER, MOD, Site

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def _require_chromium() -> None:
    if CHROMIUM.exists() and DRIVER.exists():
        return
    reason = f"no {CHROMIUM} or {DRIVER} (apt-get install chromium chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} — CI must run the browser tests")
    pytest.skip(f"{reason} — skipping the browser tests (CI unset)")


@contextmanager
def _browser(downloads: Path, width: int = 1280, height: int = 1100) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})  # fmt: skip
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(condition: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception:  # the element may not exist yet
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _loaded(driver: Any, before: str | None = None) -> str:
    """Wait for the page's panels to (re)load; returns the load's stamp."""

    def stamp() -> str | None:
        value = driver.find_element("id", "dash").get_attribute("data-loaded")
        return value if value and value != before else None

    return str(_wait(stamp, "the panels"))


def _tile(driver: Any, key: str) -> str:
    return str(driver.find_element("css selector", f"#tile-{key} .value").text)


def _number(text: str) -> float:
    return float(text.replace(",", "").replace("\u202f", "").replace("\xa0", ""))


def _cli_report(db: Path, text: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "guildmeter", "--db", str(db), "report", "full", "--guild",
         str(ALPHA), "--range", text, "--format", "json"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return dict(json.loads(out)["rows"][0])


def _moderator_session(site: Site, driver: Any, downloads: Path, shots: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    site.emulator.oauth_user = MOD
    driver.get(site.url + "/")
    driver.find_element("id", "login").click()  # to Discord (the emulator) and back
    _wait(lambda: driver.find_element("id", "guilds"), "the list of guilds")
    driver.find_element("css selector", f'a[href="/g/{ALPHA}"]').click()
    stamp = _loaded(driver)

    # Last month, as the CLI reports it.
    last = add_months(month_of(datetime.now(UTC)), -1)
    Select(driver.find_element("id", "period")).select_by_value("month")
    stamp = _loaded(driver, stamp)
    driver.execute_script(
        "const m = document.getElementById('month'); m.value = arguments[0];"
        "m.dispatchEvent(new Event('change'));", f"{last // 100}-{last % 100:02d}")  # fmt: skip
    stamp = _loaded(driver, stamp)
    report = _cli_report(site.db, "last month")
    assert _number(_tile(driver, "messages")) == report["messages"] > 0
    assert _number(_tile(driver, "active_users")) == report["active_users"]
    assert _number(_tile(driver, "new_members")) == report["joins"] - report["parts"]
    assert _number(_tile(driver, "voice_hours")) == round(report["voice_man_hours"], 1)
    assert _number(_tile(driver, "member_total")) == report["total_users"]
    assert not driver.find_element("id", "dump-warning").is_displayed()  # anonymised
    driver.save_screenshot(str(shots / "moderator-month.png"))

    # The tiles switch the chart; the chart answers hovering with values.
    driver.find_element("id", "tile-active_users").click()
    label = driver.execute_script("return Chart.getChart('chart').data.datasets[0].label")
    assert label == "Active users"
    ActionChains(driver).move_to_element(driver.find_element("id", "chart")).perform()
    tooltip = "return Chart.getChart('chart').tooltip.getActiveElements().length"
    _wait(lambda: driver.execute_script(tooltip), "a tooltip")

    # Another period.
    Select(driver.find_element("id", "period")).select_by_value("7d")
    stamp = _loaded(driver, stamp)
    assert "?period=7d" in driver.current_url
    points = driver.execute_script("return Chart.getChart('chart').data.labels.length")
    assert points == 7
    warning = driver.find_element("id", "dump-warning")  # today's month holds pseudonyms
    assert warning.is_displayed()
    assert warning.text.endswith("not yet anonymised — do not distribute"), warning.text

    # Custom days.
    Select(driver.find_element("id", "period")).select_by_value("custom")
    stamp = _loaded(driver, stamp)
    driver.execute_script(
        "for (const [id, v] of [['start', arguments[0]], ['end', arguments[1]]]) {"
        " const e = document.getElementById(id); e.value = v;"
        " e.dispatchEvent(new Event('change')); }", f"{last // 100}-{last % 100:02d}-03",
        f"{last // 100}-{last % 100:02d}-05")  # fmt: skip
    _wait(lambda: "-05 (inclusive" in driver.find_element("id", "period-label").text, "days")
    assert driver.execute_script("return Chart.getChart('chart').data.labels.length") == 3
    stamp = str(driver.find_element("id", "dash").get_attribute("data-loaded"))
    Select(driver.find_element("id", "period")).select_by_value("7d")
    stamp = _loaded(driver, stamp)

    # A channel, by clicking its row: the whole page follows it.
    row = driver.find_element("css selector", "#channels tbody tr:nth-child(2)")
    channel_messages = row.find_elements("tag name", "td")[1].text
    row.click()
    stamp = _loaded(driver, stamp)
    assert _tile(driver, "messages") == channel_messages
    assert "channel=" in driver.current_url
    driver.find_element("id", "all-channels")  # the way back

    # The CSV of this view adds up to the tile.
    driver.find_element("id", "csv").click()
    found = _wait(lambda: [p for p in downloads.glob("*.csv") if p.stat().st_size], "the CSV")
    with found[0].open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 7
    assert sum(int(r["messages"]) for r in rows) == _number(channel_messages)

    # The bot-usage tab: what `guildmeter stats` says for the same 7 days.
    driver.find_element("id", "tab-usage").click()
    _wait(lambda: driver.find_element("id", "usage").get_attribute("data-loaded"), "usage")
    usage = json.loads(subprocess.run(
        [sys.executable, "-m", "guildmeter", "--db", str(site.db), "stats", "--guild",
         str(ALPHA), "--days", "7", "--format", "json"],
        capture_output=True, text=True, check=True, timeout=60).stdout)  # fmt: skip
    label = driver.find_element("id", "usage-label").text
    assert label.startswith(f"Bot usage, the last 7 days: {usage['start']} to {usage['end']}")
    commands = driver.find_elements("css selector", "#commands tbody tr")
    listed = [row.find_elements("tag name", "td")[0].text for row in commands]
    assert listed == [c["command"] for c in usage["commands"]]
    assert {"imagine", "stats"} <= set(listed)  # seeded here; the simulation adds its own
    first = commands[0].find_elements("tag name", "td")
    assert _number(first[1].text) == usage["commands"][0]["uses"]
    assert _number(first[4].text) == round(usage["commands"][0]["p95_ms"], 1)
    driver.save_screenshot(str(shots / "moderator-usage.png"))

    driver.find_element("css selector", "form.logout button").click()
    _wait(lambda: driver.find_element("id", "login"), "the login page after logging out")


def _phone_session(site: Site, driver: Any, shots: Path) -> None:
    """At a phone's width (390 CSS px) every column of the Channels table is on screen."""
    # Chromium's windows are at least 500 px wide: a phone's viewport is emulated.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
    )
    site.emulator.oauth_user = MOD
    driver.get(site.url + "/")
    driver.find_element("id", "login").click()
    _wait(lambda: driver.find_element("id", "guilds"), "the list of guilds")
    driver.get(f"{site.url}/g/{ALPHA}?period=30d")
    _loaded(driver)
    box = driver.find_element("css selector", "#channels").find_element("xpath", "..")
    overflow = driver.execute_script(
        "return arguments[0].scrollWidth - arguments[0].clientWidth", box
    )
    share = driver.find_element("css selector", "#channels thead th:last-child")
    right = driver.execute_script("return arguments[0].getBoundingClientRect().right", share)
    width = driver.execute_script("return document.documentElement.clientWidth")
    driver.execute_script("arguments[0].scrollIntoView()", box)
    driver.save_screenshot(str(shots / "phone-channels.png"))
    assert width == 390
    assert overflow <= 0 and right <= width, (overflow, right, width)
    assert share.text == "Share"


def _member_session(site: Site, driver: Any) -> None:
    site.emulator.oauth_user = MEMBER
    driver.get(site.url + "/")
    driver.find_element("id", "login").click()
    _wait(lambda: driver.find_element("id", "no-guilds"), "the page without guilds")
    driver.get(f"{site.url}/g/{ALPHA}")
    assert "not a moderator" in driver.find_element("id", "error").text


def _public_session(site: Site, driver: Any, shots: Path) -> None:
    driver.get(f"{site.url}/public/{ALPHA}?period=7d")
    _loaded(driver)
    hidden = driver.find_elements("css selector", "#heatmap .cell.hidden")
    assert len(hidden) >= 2
    assert "fewer than 5" in str(hidden[0].get_attribute("title"))
    assert not driver.find_elements("id", "dump")
    assert not driver.find_elements("id", "tab-usage")
    driver.save_screenshot(str(shots / "public.png"))


async def test_dashboard_in_a_browser(site: Site, tmp_path: Path) -> None:
    _require_chromium()
    shots = Path(os.environ.get("GUILDMETER_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)

    def drive() -> None:
        with _browser(tmp_path) as driver:
            _moderator_session(site, driver, tmp_path, shots)
        with _browser(tmp_path, width=390, height=900) as driver:
            _phone_session(site, driver, shots)
        with _browser(tmp_path) as driver:
            _member_session(site, driver)
        site.public(ALPHA)
        with _browser(tmp_path, width=400, height=1700) as driver:
            _public_session(site, driver, shots)

    await asyncio.to_thread(drive)
