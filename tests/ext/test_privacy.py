"""Members' rights through the emulator and the real discord.py: /privacy, opt-out, forget,
and small cells in the monthly post."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import guildmeter
from guildmeter.privacy.keyring import pseudonym_of
from guildmeter.reports import compute_report
from guildmeter.store.rights import RightsStore
from guildmeter.store.usage import UsageStore

from tests.discord_emulator.server import Sent
from tests.ext.conftest import MAY, START, Running
from tests.helpers import database_bytes

ANN, BOB = 1001, 1002  # ann moderates; bob is an ordinary member
EVE = 345_678_901_234_567_890  # a realistic snowflake, looked for in the database bytes
DAY = f"{START:%Y-%m-%d}"


def _fields(embed: dict[str, object]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed["fields"]}  # type: ignore[attr-defined, index]


def _private_and_quiet(sent: Sent) -> None:
    assert sent.allowed_mentions == {"parse": []}, "every send must mention nobody"
    assert len(sent.content) <= 2000


def _full(running: Running) -> tuple[int, int, float]:
    row = compute_report(running.stats.store, running.alpha.id, "full", MAY).rows[0]
    return row.messages, row.active_users, row.voice_man_hours


async def _talk(running: Running, user: int, count: int, minute: int = 0) -> None:
    for i in range(count):
        await running.emulator.message(
            running.alpha, running.channel("general"), user, START + timedelta(minutes=minute + i)
        )
    await running.settle()


async def test_the_privacy_statement_is_private_and_says_when_the_key_dies(
    running: Running,
) -> None:
    interaction = await running.slash(BOB, "privacy", "show")
    (reply,) = interaction.replies
    assert reply.ephemeral
    _private_and_quiet(reply)
    assert "message content, your user id" in reply.content
    assert "2026-06-01 00:00 UTC" in reply.content  # the end of May, no grace configured
    assert "/privacy optout" in reply.content and "/privacy forget" in reply.content
    assert "one token stands for one member across channels" in reply.content
    assert "counted (not opted out)" in reply.content
    assert "never stores message content" in guildmeter.END_USER_DATA_STATEMENT

    # Prefix: the statement (it says whether this member opted out) goes by DM.
    dm, pointer = await running.say("general", BOB, ".privacy", answers=2)
    assert running.emulator.dm_channels[dm.channel_id] == BOB
    assert "Never kept" in dm.content
    assert pointer.channel_id == running.channel("general")
    assert "direct message" in pointer.content and "Never kept" not in pointer.content
    for sent in (dm, pointer):
        _private_and_quiet(sent)

    running.emulator.closed_dms.add(BOB)  # DMs closed: a pointer, never the statement
    (pointer,) = await running.say("general", BOB, ".privacy")
    assert "/privacy show" in pointer.content and "Never kept" not in pointer.content
    _private_and_quiet(pointer)


async def test_an_opted_out_member_is_not_counted_until_they_opt_in(running: Running) -> None:
    emu, clock = running.emulator, running.clock
    (lounge,) = running.alpha.voice_channels
    await _talk(running, BOB, 2)
    await _talk(running, ANN, 1)
    await emu.voice(running.alpha, BOB, lounge)
    await running.settle()
    clock.now = START + timedelta(minutes=10)
    reply = (await running.slash(BOB, "privacy", "optout")).replies[0]
    assert reply.ephemeral and "nothing about you is counted" in reply.content
    _private_and_quiet(reply)

    await _talk(running, BOB, 3, minute=11)  # not counted
    clock.now = START + timedelta(minutes=30)
    await emu.voice(running.alpha, BOB, None)  # the 20 minutes after opting out: not counted
    dm, _pointer = await running.say("general", BOB, ".privacy", answers=2)
    assert "opted out of this server" in dm.content
    await running.say("general", BOB, ".stats")  # not tracked: opted out
    await running.say("general", ANN, ".stats")
    await emu.member_remove(running.alpha, BOB)  # still counted for the server, for nobody
    await emu.member_add(running.alpha, BOB, "bob")
    await running.settle()
    assert (await running.cog.flush()).error is None
    messages, users, voice = _full(running)
    assert (messages, users) == (3, 2)
    assert voice * 60 == 10
    row = compute_report(running.stats.store, running.alpha.id, "full", MAY).rows[0]
    assert (row.joins, row.parts) == (1, 1)
    usage = UsageStore(running.stats.store)
    assert usage.row_counts(running.alpha.id)["usage_commands"] == 1  # ann's .stats only

    reply = (await running.slash(BOB, "privacy", "optin")).replies[0]
    assert "counted again" in reply.content
    await _talk(running, BOB, 1, minute=40)
    await running.cog.flush()
    assert _full(running)[:2] == (4, 2)


async def test_forget_me_first_says_what_then_deletes_exactly_that(
    running: Running, tmp_path: Path
) -> None:
    emu = running.emulator
    (lounge,) = running.alpha.voice_channels
    await emu.member_add(running.alpha, EVE, "eve")
    await _talk(running, ANN, 4)
    await _talk(running, EVE, 3)
    await emu.voice(running.alpha, EVE, lounge)
    await running.settle()
    running.clock.now = START + timedelta(minutes=15)
    await emu.voice(running.alpha, EVE, None)
    await running.settle()
    await running.cog.flush()
    await _talk(running, EVE, 2, minute=20)  # in memory only when she asks
    store = running.stats.store
    (_g, _m, key) = RightsStore(store).live_keys(running.alpha.id)[0]
    label = pseudonym_of(key, EVE).encode()
    db = tmp_path / "e2e.db"
    assert label in database_bytes(db)
    assert _full(running)[:2] == (7, 2)

    plan = (await running.slash(EVE, "privacy", "forget")).replies[0]
    assert plan.ephemeral and "This would delete" in plan.content
    assert "3 messages" in plan.content and "confirm:True" in plan.content
    assert _full(running)[:2] == (7, 2)

    done = (await running.slash(EVE, "privacy", "forget", confirm=True)).replies[0]
    assert done.ephemeral and done.content.startswith("Deleted your statistics of 2026-05")
    assert "dropped from memory" in done.content and "already anonymised" in done.content
    _private_and_quiet(done)
    await running.cog.flush()
    messages, users, voice = _full(running)
    assert (messages, users, voice) == (4, 1, 0.0)  # exactly ann's
    data = database_bytes(db)
    assert label not in data
    assert str(EVE).encode() not in data and EVE.to_bytes(8, "big") not in data


async def test_the_monthly_post_in_a_public_channel_suppresses_small_cells(
    running: Running,
) -> None:
    await _talk(running, ANN, 5)
    await _talk(running, BOB, 3, minute=10)
    await running.cog.flush()
    general = running.channel("general")
    await running.say("general", ANN, f".statsconfig reportchannel <#{general}>")
    (shown,) = await running.say("general", ANN, ".statsconfig")
    assert "Smallest public cell: 5 members" in shown.content
    assert "a row per member's random token" in shown.content

    # The moderator's private answer stays exact.
    private = (
        await running.slash(ANN, "userstats", "report", type="full", channel="all", daterange=DAY)
    ).replies[0]
    assert private.ephemeral and _fields(private.embeds[0])["Messages"] == "8"

    running.clock.now = datetime(2026, 6, 1, 0, 5, tzinfo=UTC)
    await running.cog.flush()
    monthly = running.bot.get_cog("Monthly reports")
    before = len(running.emulator.sent)
    assert await monthly.post_due_reports() == [running.alpha.id]  # type: ignore[union-attr]
    (post,) = running.emulator.sent[before:]
    assert post.channel_id == general
    fields = _fields(post.embeds[0])
    assert fields["Active users"] == "fewer than 5"
    assert fields["Messages"] == "fewer than 5" and fields["Messages/user"] == "fewer than 5"
    assert fields["Delta users"] == "+0 (+0|-0)"
    description = post.embeds[0]["description"]
    assert "one member across channels" in description
    assert "can no longer be traced to anyone" not in description
    _private_and_quiet(post)


async def test_mincell_and_aggregates_only_settings(running: Running) -> None:
    await _talk(running, ANN, 5)
    await _talk(running, BOB, 3, minute=10)
    await running.cog.flush()
    (reply,) = await running.say("general", BOB, ".statsconfig mincell 2")
    assert "Manage Server" in reply.content  # members cannot loosen it
    (reply,) = await running.say("general", ANN, ".statsconfig mincell 2")
    assert "fewer than 2" in reply.content
    (reply,) = await running.say("general", ANN, ".statsconfig anonymised aggregates")
    assert "aggregate counts only" in reply.content
    general = running.channel("general")
    await running.say("general", ANN, f".statsconfig reportchannel <#{general}>")

    running.clock.now = datetime(2026, 6, 1, 0, 5, tzinfo=UTC)
    await running.cog.flush()
    # The month's counts survive as aggregates; no member row is left.
    row = compute_report(running.stats.store, running.alpha.id, "full", MAY).rows[0]
    assert (row.messages, row.active_users) == (8, 0)
    totals = running.stats.store.activity_totals(running.alpha.id)
    may = range(MAY.start_hour, MAY.end_hour)  # (commands are posted at the real time)
    assert [k for k in totals if k[3] and k[0] in may] == []
    assert any(k[0] in may for k in totals)
    monthly = running.bot.get_cog("Monthly reports")
    before = len(running.emulator.sent)
    await monthly.post_due_reports()  # type: ignore[union-attr]
    (post,) = running.emulator.sent[before:]
    fields = _fields(post.embeds[0])
    assert fields["Messages"] == "8"
    assert fields["Active users"] == "not kept" and fields["Messages/user"] == "not kept"
    assert "only aggregate counts are kept" in post.embeds[0]["description"]


async def test_long_garbage_input_gets_a_short_reply(running: Running) -> None:
    (reply,) = await running.say("general", BOB, ".privacy forget " + "x" * 1900)
    assert len(reply.content) <= 2000 and "Usage" in reply.content


async def test_no_raw_id_at_rest_and_the_host_bots_forget_call(
    running: Running, tmp_path: Path
) -> None:
    emu = running.emulator
    (lounge,) = running.alpha.voice_channels
    await emu.member_add(running.alpha, EVE, "eve")
    await _talk(running, EVE, 2)
    await emu.voice(running.alpha, EVE, lounge)
    await running.say("general", EVE, ".stats")
    await running.slash(EVE, "privacy", "optout")
    await _talk(running, EVE, 2, minute=5)
    await running.cog.flush()
    await running.slash(EVE, "privacy", "optin")
    running.clock.now = START + timedelta(minutes=20)
    await emu.voice(running.alpha, EVE, None)
    await _talk(running, EVE, 1, minute=21)
    await emu.member_remove(running.alpha, EVE)
    await running.settle()
    await running.cog.flush()
    data = database_bytes(tmp_path / "e2e.db")
    for needle in (str(EVE).encode(), EVE.to_bytes(8, "big"), EVE.to_bytes(8, "little")):
        assert needle not in data
    assert _full(running)[:2] == (3, 1)

    report = await guildmeter.forget_user(running.bot, EVE)  # Red: red_delete_data_for_user
    # May's three, and the `.stats` command message, posted at the real time (its month).
    assert report.done and report.messages == 4 and len(report.months) == 2
    assert _full(running)[:2] == (0, 0)


async def test_an_opt_out_holds_from_the_first_message_after_a_restart(
    running: Running, tmp_path: Path
) -> None:
    from guildmeter.activity import ActivityStats
    from guildmeter.bot import create_bot
    from guildmeter.config import Config
    from guildmeter.store import Store

    await running.slash(BOB, "privacy", "optout")
    await running.bot.close()
    config = Config(db=str(tmp_path / "e2e.db"), flush_interval_seconds=3600)
    stats = ActivityStats(Store.open(config.db), clock=running.clock)
    bot = create_bot(config, stats, guild_ready_timeout=0.05)
    task = asyncio.create_task(bot.start("emulated-token"))
    await asyncio.wait_for(bot.wait_until_ready(), 15)
    await _talk(running, BOB, 2)  # before any flush of the new process
    await _talk(running, ANN, 1)
    await bot.close()
    await asyncio.wait_for(task, 15)
    row = compute_report(stats.store, running.alpha.id, "full", MAY).rows[0]
    assert (row.messages, row.active_users) == (1, 1)
    stats.store.close()


async def test_prefix_forget_answers_by_dm(running: Running) -> None:
    await _talk(running, BOB, 2)
    await _talk(running, ANN, 1)
    await running.cog.flush()
    plan, pointer = await running.say("general", BOB, ".privacy forget", answers=2)
    assert running.emulator.dm_channels[plan.channel_id] == BOB
    assert "This would delete" in plan.content and ".privacy forget yes" in plan.content
    assert "delete" not in pointer.content and pointer.channel_id == running.channel("general")
    done, _pointer = await running.say("general", BOB, ".privacy forget yes", answers=2)
    assert done.content.startswith("Deleted your statistics") and "2 messages" in done.content
    assert _full(running)[:2] == (1, 1)


async def test_public_view_setting(running: Running) -> None:
    from guildmeter.store.settings import SettingsStore

    settings = SettingsStore(running.stats.store)
    (reply,) = await running.say("general", BOB, ".statsconfig public on")
    assert "Manage Server" in reply.content and not settings.read(running.alpha.id).public_view
    (reply,) = await running.say("general", ANN, ".statsconfig public on")
    assert "Public dashboard page: on" in reply.content and "fewer than 5" in reply.content
    assert settings.read(running.alpha.id).public_view
    (reply,) = await running.say("general", ANN, ".statsconfig")
    assert "Public dashboard page: on" in reply.content
    interaction = await running.slash(ANN, "statsconfig", "public", state="off")
    assert "Public dashboard page: off" in interaction.replies[-1].content
    assert not settings.read(running.alpha.id).public_view
