"""The discord.py extension: ``await bot.load_extension("guildmeter.ext")``."""

from __future__ import annotations

from discord.ext import commands


async def setup(bot: commands.Bot) -> None:
    """Add the statistics cog.

    The host may create the engine once at start-up and pass it in as ``bot.guildmeter``
    (an ActivityStats) and ``bot.guildmeter_config``; otherwise both come from the
    environment (``GUILDMETER_DB``...).
    """
    from guildmeter.ext.cog import StatsCog, config_for, stats_for

    config = config_for(bot)
    stats = await stats_for(bot, config)
    await bot.add_cog(StatsCog(bot, stats, flush_interval=config.flush_interval_seconds))
