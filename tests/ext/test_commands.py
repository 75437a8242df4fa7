"""The moderators' commands, prefix and slash, through the emulator and the real discord.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from guildmeter.activity import ActivityStats
from guildmeter.bot import create_bot
from guildmeter.config import Config
from guildmeter.store import Store

from tests.ext.conftest import START, Running, gunzip_lines

ANN, BOB = 1001, 1002  # ann has a role with Manage Server; bob is an ordinary member
DAY = f"{START:%Y-%m-%d}"


async def _feed(running: Running) -> None:
    """Five messages by ann and two by bob in #general, one by bob in #art, on START's day."""
    emu, alpha = running.emulator, running.alpha
    for minute in range(5):
        await emu.message(alpha, running.channel("general"), ANN, START + timedelta(minutes=minute))
    for minute in range(2):
        await emu.message(
            alpha, running.channel("general"), BOB, START + timedelta(hours=2 + minute)
        )
    await emu.message(alpha, running.channel("art"), BOB, START)
    await running.settle()
    assert (await running.cog.flush()).error is None


async def _make_mod_channel(running: Running) -> None:
    (reply,) = await running.say(
        "mods", ANN, f".statsconfig modchannel <#{running.channel('mods')}>"
    )
    assert "is now a moderator channel" in reply.content


def _fields(embed: dict[str, object]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed["fields"]}  # type: ignore[attr-defined, index]


async def test_slash_commands_are_registered_with_valid_definitions(running: Running) -> None:
    commands = {c["name"]: c for c in running.emulator.global_commands}
    assert {"userstats", "statsconfig"} <= set(commands)
    subcommands = {o["name"] for o in commands["userstats"]["options"]}
    assert subcommands == {"dump", "report", "backfill"}


async def test_prefix_full_report_in_a_mod_channel(running: Running) -> None:
    await _feed(running)
    await _make_mod_channel(running)
    moment, answer = await running.say("mods", ANN, f".userstats report full all {DAY}", answers=2)
    assert moment.content.startswith("One moment")
    (embed,) = answer.embeds
    fields = _fields(embed)
    assert fields["Messages"] == "8"
    assert fields["Active users"] == "2"
    assert fields["Messages/user"] == "4.0 (σ=1.4)"  # 5 and 3: mean 4, sample σ √2
    assert fields["Delta users"] == "+0 (+0|-0)"
    assert answer.channel_id == running.channel("mods")


async def test_prefix_channel_report_by_mention(running: Running) -> None:
    await _feed(running)
    await _make_mod_channel(running)
    mention = f"<#{running.channel('art')}>"
    _, answer = await running.say("mods", ANN, f".userstats report full {mention} {DAY}", answers=2)
    assert _fields(answer.embeds[0])["Messages"] == "1"
    assert "#art" in answer.embeds[0]["title"]


async def test_slash_full_report_is_deferred_and_ephemeral(running: Running) -> None:
    await _feed(running)
    interaction = await running.slash(
        ANN, "userstats", "report", type="full", channel="general", daterange=DAY
    )
    assert interaction.callbacks == [5]  # deferred first
    (reply,) = interaction.replies
    assert reply.ephemeral
    assert _fields(reply.embeds[0])["Messages"] == "7"


async def test_slash_dump_uploads_the_gzip_csv(running: Running) -> None:
    await _feed(running)
    interaction = await running.slash(ANN, "userstats", "dump", daterange=DAY)
    (reply,) = interaction.replies
    assert reply.ephemeral
    ((name, data),) = reply.files.items()
    assert name == f"userstats-{DAY}-to-{DAY}.csv.gz"  # both days included
    lines = gunzip_lines(data)
    assert lines[0] == "Period,Event,User hash,Channel,Count"
    message_rows = [line.split(",") for line in lines[1:] if ",msg," in line]
    assert sum(int(row[4]) for row in message_rows) == 8
    assert "not yet anonymised" in reply.content


async def test_prefix_dump_and_weekday_report_upload_files(running: Running) -> None:
    await _feed(running)
    await _make_mod_channel(running)
    _, dump = await running.say("mods", ANN, f".userstats {DAY}", answers=2)
    assert len(gunzip_lines(next(iter(dump.files.values())))) > 1
    _, weekday = await running.say(
        "mods", ANN, f".userstats report weekday general {DAY}", answers=2
    )
    csv_name, png_name = weekday.files
    assert csv_name.endswith(".csv.gz") and png_name.endswith(".png")
    rows = gunzip_lines(weekday.files[csv_name])
    assert rows[0].startswith("Case,Total users,Active users")
    assert len(rows) == 8
    sunday = rows[7].split(",")  # 2026-05-10 is a Sunday
    assert (sunday[0], sunday[6]) == ("Sunday", "7")
    assert weekday.files[png_name].startswith(b"\x89PNG")


async def test_non_moderators_and_public_channels_get_no_statistics(running: Running) -> None:
    await _feed(running)
    await _make_mod_channel(running)
    (refused,) = await running.say("mods", BOB, f".userstats report full all {DAY}")
    assert "for moderators" in refused.content and not refused.embeds and not refused.files
    (elsewhere,) = await running.say("general", ANN, f".userstats report full all {DAY}")
    assert "only shown in moderator channels" in elsewhere.content
    assert f"<#{running.channel('mods')}>" in elsewhere.content
    assert not elsewhere.embeds and not elsewhere.files
    interaction = await running.slash(BOB, "userstats", "dump", daterange=DAY)
    (reply,) = interaction.replies
    assert reply.ephemeral and "for moderators" in reply.content and not reply.files
    (config,) = await running.say("general", BOB, ".statsconfig reportchannel")
    assert "Manage Server" in config.content


async def test_a_range_without_statistics_says_where_the_data_is(running: Running) -> None:
    await _feed(running)
    await _make_mod_channel(running)
    (reply,) = await running.say("mods", ANN, ".userstats 2026-04-01")
    assert reply.content == (
        "No statistics between 2026-04-01 (UTC); this server has statistics from "
        "2026-05-10 to 2026-05-10."
    )


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("report full all next blursday", "could not understand the date"),
        ("report full nowhere 2026-05-10", "no channel named #nowhere"),
        ("report full all 2026-04-20 to 2026-05-10", "crosses a month boundary"),
        ("report monthly all", "Unknown type `monthly`"),
        ("report", 'missing. Usage: `.userstats report <"full"|"weekday"|"hourly"> <channel>'),
    ],
)
async def test_bad_requests_get_clear_replies(
    running: Running, arguments: str, expected: str
) -> None:
    await _make_mod_channel(running)
    replies = await running.say("mods", ANN, f".userstats {arguments}")
    assert expected in replies[-1].content
    assert "Traceback" not in replies[-1].content


async def test_heavy_commands_cool_down(running: Running) -> None:
    await _feed(running)
    await _make_mod_channel(running)
    for _ in range(3):
        await running.say("mods", ANN, f".userstats {DAY}", answers=2)
    (refused,) = await running.say("mods", ANN, f".userstats {DAY}")
    assert "cooling down" in refused.content


async def test_a_rate_limited_reply_is_retried(running: Running) -> None:
    await _feed(running)
    await _make_mod_channel(running)
    running.emulator.rate_limited_posts = 1
    replies = await running.say("mods", ANN, f".userstats report full all {DAY}", answers=2)
    assert replies[-1].embeds


async def test_the_month_end_report_is_posted_once_even_across_restarts(
    running: Running, tmp_path: Path
) -> None:
    await _feed(running)
    mods = running.channel("mods")
    (reply,) = await running.say("general", ANN, f".statsconfig reportchannel <#{mods}>")
    assert "will be posted" in reply.content
    monthly = running.bot.get_cog("Monthly reports")
    assert monthly is not None
    assert await monthly.post_due_reports() == []  # type: ignore[attr-defined]  # May not over

    running.clock.now = datetime(2026, 6, 1, 0, 5, tzinfo=UTC)
    assert [a.month for a in (await running.cog.flush()).anonymised] == [202605]
    before = len(running.emulator.sent)
    assert await monthly.post_due_reports() == [running.alpha.id]  # type: ignore[attr-defined]
    (post,) = running.emulator.sent[before:]
    assert post.channel_id == mods
    (embed,) = post.embeds
    assert embed["title"].startswith("May 2026")
    assert "key destroyed" in embed["description"]
    assert _fields(embed)["Messages"] == "8"
    assert await monthly.post_due_reports() == []  # type: ignore[attr-defined]

    await running.bot.close()  # a restart: a new process must not post it again
    stats = ActivityStats(Store.open(str(tmp_path / "e2e.db")), clock=running.clock)
    bot = create_bot(Config(db=str(tmp_path / "e2e.db")), stats, guild_ready_timeout=0.05)
    task = asyncio.create_task(bot.start("emulated-token"))
    await asyncio.wait_for(bot.wait_until_ready(), 15)
    again = bot.get_cog("Monthly reports")
    assert await again.post_due_reports() == []  # type: ignore[union-attr]
    await bot.close()
    await asyncio.wait_for(task, 15)
    stats.store.close()
    assert len(running.emulator.sent) == before + 1


async def test_the_monthly_job_builds_snapshots_and_applies_the_servers_retention(
    running: Running,
) -> None:
    await _feed(running)
    await _make_mod_channel(running)
    monthly = running.bot.get_cog("Monthly reports")
    assert monthly is not None
    assert await monthly.maintain_months() == ([], [])  # type: ignore[attr-defined]
    (reply,) = await running.say("mods", ANN, ".statsconfig retention 1")
    assert "deleted 1 month(s) after it ends" in reply.content

    running.clock.now = datetime(2026, 6, 1, 0, 5, tzinfo=UTC)
    assert [a.month for a in (await running.cog.flush()).anonymised] == [202605]
    month = (running.alpha.id, 202605)
    assert await monthly.maintain_months() == ([month], [])  # type: ignore[attr-defined]
    running.clock.now = datetime(2026, 7, 1, 0, 5, tzinfo=UTC)
    await running.cog.flush()
    _built, retired = await monthly.maintain_months()  # type: ignore[attr-defined]
    assert retired == [month]

    _, whole = await running.say("mods", ANN, ".userstats report full all May 2026", answers=2)
    assert _fields(whole.embeds[0])["Messages"] == "8"
    assert _fields(whole.embeds[0])["Active users"] == "2"  # from the snapshot
    replies = await running.say("mods", ANN, f".userstats report full all {DAY}", answers=2)
    assert r"retention\_months = 1" in replies[-1].content  # escaped: Discord shows "_"
    assert "2026-06 on" in replies[-1].content
