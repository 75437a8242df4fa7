"""``guildmeter demo`` then ``guildmeter serve`` on a fresh machine shows the demo guild,
through the one-time local link the command prints."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from guildmeter.demo import DEMO_GUILD_ID


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``guildmeter demo``, small, once for the module."""
    folder = tmp_path_factory.mktemp("serve")
    db = str(folder / "guildmeter.db")
    subprocess.run(
        _guildmeter("--db", db, "demo", "--users", "10", "--messages-per-day", "20",
                    "--chart", str(folder / "demo.png")),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return db


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _guildmeter(*args: str) -> list[str]:
    return [sys.executable, "-m", "guildmeter", *args]


async def test_demo_then_serve(demo_db: str) -> None:
    db = demo_db
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    server = subprocess.Popen(
        _guildmeter("--db", db, "serve", "--port", str(port)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline(), server.stdout.readline()]
        assert lines[0].startswith(f"Dashboard on http://127.0.0.1:{port}"), lines
        link = re.search(r"http://\S+/login/local\?token=\S+", lines[1])
        assert link is not None, lines
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            async with client.get(link.group(0)) as r:
                assert r.status == 200
                assert f'href="/g/{DEMO_GUILD_ID}"' in await r.text()
            async with client.get(f"http://127.0.0.1:{port}/g/{DEMO_GUILD_ID}") as r:
                assert r.status == 200 and 'id="tiles"' in await r.text()
            url = f"http://127.0.0.1:{port}/g/{DEMO_GUILD_ID}/api/tiles?period=month"
            async with client.get(url) as r:
                tiles = {t["key"]: t["value"] for t in (await r.json())["tiles"]}
            assert tiles["member_total"] and tiles["member_total"] >= 10
            async with client.get(link.group(0)) as r:  # one time only
                assert r.status == 403
    finally:
        server.terminate()
        server.wait(10)


def test_serve_refuses_a_busy_port(demo_db: str) -> None:
    db = demo_db
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        start = time.monotonic()
        result = subprocess.run(_guildmeter("--db", db, "serve", "--port", str(port)),
                                capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and time.monotonic() - start < 30
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert result.stderr.count("\n") == 1


def test_oauth_needs_its_secret_and_the_bot_token(demo_db: str, tmp_path: Path) -> None:
    db = demo_db
    config = tmp_path / "guildmeter.toml"
    config.write_text('oauth_client_id = "123"\n')
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISCORD_TOKEN", "GUILDMETER_OAUTH_CLIENT_SECRET")}  # fmt: skip
    args = _guildmeter("--db", db, "--config", str(config), "serve", "--port", "1")
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2 and "set oauth_client_secret" in result.stderr
    env["GUILDMETER_OAUTH_CLIENT_SECRET"] = "s3cret"
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2 and "set DISCORD_TOKEN" in result.stderr
