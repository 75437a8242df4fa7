"""The discord.py extension: ``await bot.load_extension("guildmeter.ext")``."""

from __future__ import annotations

from discord.ext import commands


async def setup(bot: commands.Bot) -> None:
    """Add the cogs: counting, the moderators' commands, the monthly job, the history
    backfill, bot usage, privacy
    (and the web dashboard when the config says ``dashboard = true``).

    The host may create the engine once at start-up and pass it in as ``bot.guildmeter``
    (an ActivityStats) and ``bot.guildmeter_config``; otherwise both come from the
    environment (``GUILDMETER_DB``...).
    """
    from guildmeter.ext.backfill import BackfillCog
    from guildmeter.ext.cog import StatsCog, config_for, settings_for, stats_for
    from guildmeter.ext.commands import UserStatsCommands
    from guildmeter.ext.monthly import MonthlyReports
    from guildmeter.ext.privacy import PrivacyCommands
    from guildmeter.ext.runtime import runtime_for
    from guildmeter.ext.usage import UsageCog

    config = config_for(bot)
    stats = await stats_for(bot, config)
    runtime = runtime_for(bot, config, settings_for(bot, stats))
    await bot.add_cog(StatsCog(bot, stats, runtime, flush_interval=config.flush_interval_seconds))
    await bot.add_cog(
        UserStatsCommands(
            bot,
            stats,
            runtime,
            cooldown_uses=config.cooldown_uses,
            cooldown_seconds=config.cooldown_seconds,
            max_dump_days=config.max_dump_days,
            retention_months=config.retention_months,
        )
    )
    await bot.add_cog(MonthlyReports(bot, stats, runtime, retention_months=config.retention_months))
    await bot.add_cog(BackfillCog(bot, stats, progress_every=config.backfill_progress_seconds))
    await bot.add_cog(
        UsageCog(
            bot,
            stats,
            runtime,
            cooldown_uses=config.stats_cooldown_uses,
            cooldown_seconds=config.stats_cooldown_seconds,
        )
    )
    await bot.add_cog(
        PrivacyCommands(
            bot,
            stats,
            runtime.settings,
            anonymise_grace_seconds=config.anonymise_grace_seconds,
            retention_months=config.retention_months,
        )
    )
    if config.dashboard:
        from guildmeter.web.embedded import DashboardCog

        await bot.add_cog(DashboardCog(bot, config, stats.store))
