"""Configuration: the ``intents`` setting is checked like every other, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from guildmeter.bot import create_bot
from guildmeter.config import INTENT_MODES, load_config
from guildmeter.errors import GuildmeterError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "guildmeter.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_intents_default_to_all(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "")).intents == "all"


@pytest.mark.parametrize("mode", INTENT_MODES)
def test_each_intents_mode_is_accepted(tmp_path: Path, mode: str) -> None:
    assert load_config(_write(tmp_path, f'intents = "{mode}"\n')).intents == mode


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('intents = "none"', "setting intents must be one of 'all', 'no-message-content', "
                             "'minimal', not 'none'"),
        ('intents = "ALL"', "setting intents must be one of"),
        ("intents = 3", "setting intents must be str, not int"),
        ('intents = ["members"]', "setting intents must be str, not list"),
    ],
)  # fmt: skip
def test_bad_intents_are_refused_naming_the_key(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(GuildmeterError, match="setting intents") as error:
        load_config(_write(tmp_path, line + "\n"))
    assert str(error.value).startswith(message)


@pytest.mark.parametrize(
    ("mode", "members", "message_content"),
    [("all", True, True), ("no-message-content", True, False), ("minimal", False, False)],
)
async def test_the_bot_asks_for_the_configured_intents(
    tmp_path: Path, mode: str, members: bool, message_content: bool
) -> None:
    from guildmeter.activity import ActivityStats
    from guildmeter.store import Store

    config = load_config(_write(tmp_path, f'intents = "{mode}"\ndb = "{tmp_path / "c.db"}"\n'))
    stats = ActivityStats(Store.open(config.db))
    bot = create_bot(config, stats, sync_commands=False)
    intents = bot.intents
    assert (intents.members, intents.message_content) == (members, message_content)
    assert intents.guilds and intents.voice_states and intents.guild_messages
    assert not intents.presences
    stats.store.close()


def test_retention_defaults_to_keeping_everything_and_refuses_negatives(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "")).retention_months == 0
    assert load_config(_write(tmp_path, "retention_months = 12\n")).retention_months == 12
    with pytest.raises(GuildmeterError, match="retention_months must be 0"):
        load_config(_write(tmp_path, "retention_months = -1\n"))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("dashboard_port = 99999", "setting dashboard_port must be from 1 to 65535, not 99999"),
        ("dashboard_port = 0", "setting dashboard_port must be from 1 to 65535, not 0"),
        ("dashboard_port = -80", "setting dashboard_port must be from 1 to 65535"),
        ("flush_interval_seconds = inf", "setting flush_interval_seconds must be above 0"),
        ("flush_interval_seconds = nan", "setting flush_interval_seconds must be above 0"),
        ("anonymise_grace_seconds = -1", "setting anonymise_grace_seconds must be from 0"),
        ("anonymise_grace_seconds = 1e300", "setting anonymise_grace_seconds must be from 0"),
        ("heavy_job_timeout_seconds = 1e30", "setting heavy_job_timeout_seconds must be"),
        ("heavy_workers = 100000", "setting heavy_workers must be from 1 to 256"),
        ("max_dump_days = 1000000000000", "setting max_dump_days must be from 1 to"),
        ("retention_months = 100000", "setting retention_months must be 0 (keep everything)"),
        ("cooldown_uses = true", "setting cooldown_uses must be int, not bool"),
    ],
)
def test_numeric_settings_out_of_bounds_are_refused_naming_the_key(
    tmp_path: Path, line: str, message: str
) -> None:
    with pytest.raises(GuildmeterError) as error:
        load_config(_write(tmp_path, line + "\n"))
    assert str(error.value).startswith(message), str(error.value)


@pytest.mark.parametrize(
    "line", ["dashboard_port = 1", "dashboard_port = 65535", "anonymise_grace_seconds = 0"]
)
def test_numeric_settings_at_their_bounds_are_accepted(tmp_path: Path, line: str) -> None:
    name, value = line.split(" = ")
    assert getattr(load_config(_write(tmp_path, line + "\n")), name) == int(value)
