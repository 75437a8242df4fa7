"""Hostile and careless input through the real discord.py: every reply short and harmless."""

from __future__ import annotations

import re

import discord
import pytest

from guildmeter.store import Store
from guildmeter.store.settings import SettingsStore

from tests.ext.conftest import START, Running

ANN, BOB = 1001, 1002  # ann has a role with Manage Server; bob is an ordinary member
DAY = f"{START:%Y-%m-%d}"
HUGE = "x" * 5000


async def _make_mod_channel(running: Running) -> None:
    (reply,) = await running.say(
        "mods", ANN, f".statsconfig modchannel <#{running.channel('mods')}>"
    )
    assert "is now a moderator channel" in reply.content


@pytest.mark.parametrize(
    "arguments",
    [
        HUGE,  # a 5,000-character date range
        f"report {HUGE} all",  # type
        f"report full {HUGE} {DAY}",  # channel name
        f"report full all {HUGE}",
        f"report full all {DAY} to {HUGE}",
        "9999-12-31",
        "report full all 9999-12-31",
    ],
)
async def test_oversized_and_out_of_range_input_gets_a_short_reply(
    running: Running, arguments: str
) -> None:
    await _make_mod_channel(running)
    replies = await running.say("mods", ANN, f".userstats {arguments}")
    reply = replies[-1]
    assert 0 < len(reply.content) <= 600
    assert "Something went wrong" not in reply.content
    # the fixture also asserts that Discord would have accepted every payload


async def test_oversized_slash_input_gets_a_short_private_reply(running: Running) -> None:
    interaction = await running.slash(ANN, "userstats", "dump", daterange=HUGE)
    (reply,) = interaction.replies
    assert reply.ephemeral and 0 < len(reply.content) <= 600
    interaction = await running.slash(
        ANN, "userstats", "report", type="full", channel=HUGE, daterange=DAY
    )
    assert interaction.replies[-1].ephemeral and len(interaction.replies[-1].content) <= 600


async def test_mentions_in_echoed_input_never_ping_even_in_a_host_bot(running: Running) -> None:
    running.bot.allowed_mentions = discord.AllowedMentions.all()  # a host that allows pings
    await _make_mod_channel(running)
    for arguments in ("report full @everyone", "report @here all", f"report full <@{BOB}>"):
        replies = await running.say("mods", ANN, f".userstats {arguments} {DAY}")
        assert replies[-1].content
        assert not any(r.pings for r in replies), replies[-1].content
    (reply,) = await running.say("general", BOB, ".userstats report full @everyone")
    assert not reply.pings


async def test_refused_members_use_up_no_cooldown(running: Running) -> None:
    for _ in range(5):  # more than the cooldown's 3 uses
        (reply,) = await running.say("general", BOB, f".userstats report full all {DAY}")
        assert "for moderators" in reply.content
        assert "cooling down" not in reply.content


async def test_stats_has_a_cooldown(running: Running) -> None:
    answers = [await running.slash(BOB, "stats") for _ in range(3)]
    assert answers[0].replies[-1].embeds and answers[1].replies[-1].embeds
    assert "cooling down" in answers[2].replies[-1].content


async def test_plain_members_cannot_probe_hidden_channel_or_role_names(running: Running) -> None:
    for command in (
        ".statsconfig modchannel #secret-plans",
        ".statsconfig modrole @Hidden Council",
        ".statsconfig reportchannel #no-such-channel",
    ):
        (reply,) = await running.say("general", BOB, command)
        assert "Only members with Manage Server" in reply.content
        assert "not found" not in reply.content


async def test_a_public_channel_is_refused_as_moderator_channel(running: Running) -> None:
    general = running.channel("general")
    (reply,) = await running.say("mods", ANN, f".statsconfig modchannel <#{general}>")
    assert "every member" in reply.content and "is now" not in reply.content
    (reply,) = await running.say("mods", ANN, f".statsconfig modchannel <#{general}> yes")
    assert "is now a moderator channel" in reply.content


async def test_a_typo_never_clears_the_report_channel(running: Running) -> None:
    mods = running.channel("mods")
    (reply,) = await running.say("mods", ANN, f".statsconfig reportchannel <#{mods}>")
    assert "will be posted" in reply.content
    (reply,) = await running.say("mods", ANN, ".statsconfig reportchannel #mdos")
    assert "Nothing was changed" in reply.content
    assert SettingsStore(running.stats.store).get(running.alpha.id).report_channel == mods


async def test_a_role_revoked_through_another_process_holds_here_after_one_flush(
    running: Running,
) -> None:
    alpha = running.alpha
    helper_role = await running.emulator.role_create(alpha, "Helpers", 0)
    alpha.member_roles[BOB] = [helper_role]
    await running.settle()
    await _make_mod_channel(running)
    other_process = Store.open(str(running.stats.store.engine.url.database))
    try:
        SettingsStore(other_process).toggle(alpha.id, "mod_role", helper_role)
        assert (await running.cog.flush()).error is None
        interaction = await running.slash(BOB, "userstats", "dump", daterange=DAY)
        assert interaction.replies[-1].files  # bob is a moderator now
        SettingsStore(other_process).toggle(alpha.id, "mod_role", helper_role)  # revoked
        assert (await running.cog.flush()).error is None
        interaction = await running.slash(BOB, "userstats", "dump", daterange=DAY)
        assert not interaction.replies[-1].files
        assert "for moderators" in interaction.replies[-1].content
    finally:
        other_process.close()


async def test_server_commands_are_registered_for_servers_only(running: Running) -> None:
    commands = {c["name"]: c for c in running.emulator.global_commands}
    for name in ("userstats", "statsconfig", "reset_stats"):
        command = commands[name]
        assert command.get("contexts") == [0] or command.get("dm_permission") is False, command


async def test_a_dump_range_above_the_maximum_is_refused(running: Running) -> None:
    await _make_mod_channel(running)
    (reply,) = await running.say("mods", ANN, ".userstats 2020-01-01 to 2026-01-01")
    assert "at most 366 days" in reply.content


async def test_everyone_cannot_become_a_moderator_or_manager_role(running: Running) -> None:
    for setting in ("modrole", "managerrole"):
        (reply,) = await running.say("mods", ANN, f".statsconfig {setting} @everyone")
        assert "everyone is every member" in reply.content, reply.content
    settings = SettingsStore(running.stats.store).get(running.alpha.id)
    assert not settings.mod_roles and not settings.manager_roles


#: A masked link Discord would render: ``[text](target)`` with the bracket not escaped.
_MASKED_LINK = re.compile(r"(?<!\\)(?:\\\\)*\[[^\]]*\]\(")


async def test_markdown_in_echoed_input_is_shown_as_typed(running: Running) -> None:
    await _make_mod_channel(running)
    for command, shown in (
        # an unknown channel (the reports' error), two masked links in one word
        (
            f".userstats report full [a](https://evil.example)[b](https://evil.example) {DAY}",
            r"#\[a](https://evil.example)\[b](https://evil.example)",
        ),
        # a date range that is not one: spoilers, and a backtick that would open code
        (".userstats ||spoiler|| `code", r"\|\|spoiler\|\| \`code"),
        (f".userstats report full @everyone {DAY}", "@\u200beveryone"),
        # discord.py's own message (a bad yes/no), starting with what was typed: a heading
        (".reset_stats #", "\\# is not a recognised"),
    ):
        (reply,) = await running.say("mods", ANN, command)
        assert shown in reply.content, (command, reply.content)
        assert not _MASKED_LINK.search(reply.content), reply.content


async def test_a_role_name_is_shown_as_written(running: Running) -> None:
    await running.emulator.role_create(running.alpha, "||mods||", 0)
    await running.settle()
    (reply,) = await running.say("mods", ANN, ".statsconfig modrole ||mods||")
    assert reply.content.startswith(r"@\|\|mods\|\| is now a moderator role"), reply.content
