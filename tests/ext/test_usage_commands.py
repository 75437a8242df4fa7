"""Bot-usage analytics through the emulator: a host bot's commands, /stats, /reset_stats."""

from __future__ import annotations

import asyncio
from pathlib import Path

import discord
from discord import app_commands
from discord.ext import commands

import guildmeter
from guildmeter.store.usage import UsageStore

from tests.ext.conftest import Running
from tests.helpers import database_bytes

ANN, BOB = 1001, 1002
EVE = 345_678_901_234_567_890  # a realistic snowflake, to look for in the database bytes


def _add_host_commands(running: Running) -> None:
    """What a host bot might have: a prefix command and two slash commands, one broken."""
    bot = running.bot

    @commands.command(name="ping")
    async def ping(ctx: commands.Context[commands.Bot]) -> None:
        await ctx.send("pong", allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="draw", description="Draw a picture")
    async def draw(interaction: discord.Interaction, prompt: str) -> None:
        await asyncio.sleep(0.05)  # the "generation"
        guildmeter.track_generation(
            user_id=interaction.user.id, guild_id=interaction.guild_id,
            resolution=(1024, 1024), seconds=12 if prompt == "cat" else 18, prompt=prompt,
        )  # fmt: skip
        await interaction.response.send_message(
            "done", allowed_mentions=discord.AllowedMentions.none()
        )

    @app_commands.command(name="broken", description="Always fails")
    async def broken(interaction: discord.Interaction) -> None:
        raise RuntimeError("the GPU caught fire")

    bot.add_command(ping)
    bot.tree.add_command(draw)
    bot.tree.add_command(broken)


async def _use_the_bot(running: Running) -> None:
    await running.emulator.member_add(running.alpha, EVE, "eve")
    await running.settle()
    for user in (ANN, BOB, EVE):
        (reply,) = await running.say("general", user, ".ping")
        assert reply.content == "pong"
    for user, prompt in ((BOB, "cat"), (EVE, "dog")):
        await running.slash(user, "draw", prompt=prompt)
    await running.emulator.slash(running.alpha, running.channel("general"), BOB, "broken")
    await running.settle()
    await running.cog.flush()


async def test_host_commands_and_generations_show_up_in_stats(
    running: Running, tmp_path: Path
) -> None:
    _add_host_commands(running)
    await _use_the_bot(running)
    interaction = await running.slash(BOB, "stats", days=7)  # anyone may ask, privately
    (reply,) = interaction.replies
    assert reply.ephemeral and "usage.png" in reply.files
    fields = {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}
    assert "Total images: 2" in fields["Image Generation"]
    assert "Average generation time: 15.0 s" in fields["Image Generation"]
    assert "Total commands: 6 (1 failed)" in fields["Command Usage"]
    assert "`ping`: 3" in fields["Command Usage"]
    assert "1024x1024: 2" in fields["Popular Resolutions"]
    assert "Total users: 3" in fields["User Activity"]
    latency = {line.split("`")[1]: line for line in fields["Latency and failures"].splitlines()}
    assert latency["broken"].endswith("100.0 % failed")
    assert latency["ping"].endswith("0.0 % failed")
    median_ms = float(latency["draw"].split("median ")[1].split(" ms")[0].replace(",", ""))
    assert median_ms >= 50  # the 50 ms sleep, timed from the interaction's arrival

    await running.cog.flush()
    data = database_bytes(tmp_path / "e2e.db")
    for encoded in (str(EVE).encode(), EVE.to_bytes(8, "big"), EVE.to_bytes(8, "little")):
        assert encoded not in data
    assert b"dog" not in data  # prompts are not stored unless the owner enables it


async def test_reset_stats_refuses_then_asks_then_deletes_only_this_guild(
    running: Running,
) -> None:
    _add_host_commands(running)
    beta = list(running.emulator.guilds.values())[1]
    await running.emulator.message(beta, next(iter(beta.text_channels)), ANN, content=".ping")
    await running.emulator.wait_for_post(1)
    await _use_the_bot(running)
    usage = UsageStore(running.stats.store)
    before = usage.row_counts(running.alpha.id)
    assert before["usage_commands"] == 6

    refused = await running.slash(BOB, "reset_stats", confirm=True)
    assert "Bot Manager" in refused.replies[0].content
    asked = await running.slash(ANN, "reset_stats")
    assert "This would delete" in asked.replies[0].content
    assert "6 command uses" in asked.replies[0].content
    assert usage.row_counts(running.alpha.id)["usage_commands"] >= 6  # nothing deleted yet

    done = await running.slash(ANN, "reset_stats", confirm=True)
    text = done.replies[0].content
    assert text.startswith("Usage statistics reset for this server. Deleted ")
    assert done.replies[0].ephemeral
    after = usage.row_counts(running.alpha.id)
    assert set(after.values()) == {0}
    assert usage.row_counts(beta.id)["usage_commands"] == 1  # another guild: untouched
    owner_only = await running.slash(ANN, "reset_stats", confirm=True, everything=True)
    assert "owner" in owner_only.replies[0].content


async def test_a_host_error_handler_set_after_loading_survives_a_reload(running: Running) -> None:
    async def host_handler(_interaction: object, _error: object) -> None:
        return None

    running.bot.tree.on_error = host_handler  # type: ignore[assignment]
    await running.bot.reload_extension("guildmeter.ext")
    cog = running.bot.get_cog("Bot usage")
    assert cog is not None and cog._host_on_error is host_handler  # type: ignore[attr-defined]
    await running.bot.unload_extension("guildmeter.ext")
    assert running.bot.tree.on_error is host_handler
    await running.bot.load_extension("guildmeter.ext")
