"""Reports as Discord embeds: the seed's full-report fields, within Discord's limits."""

from __future__ import annotations

import discord

from guildmeter.reports import Report

__all__ = ["ANONYMISED_NOTICE", "report_embed"]

ANONYMISED_NOTICE = (
    "This month is over: every member's pseudonym has been replaced by an anonymous token "
    "and the month's key destroyed. These figures can no longer be traced to anyone."
)
_COLOUR = discord.Colour(0x3B82F6)


def report_embed(
    report: Report, *, title: str | None = None, notice: str | None = None
) -> discord.Embed:
    """The full report (its single row) as the seed's embed fields."""
    row = report.rows[0]
    channel = "all channels" if report.channel == "all" else f"#{report.channel}"
    embed = discord.Embed(
        title=title or f"Full report, {channel}",
        description=f"{report.range.describe()}" + (f"\n\n{notice}" if notice else ""),
        colour=_COLOUR,
    )
    delta = row.joins - row.parts
    fields = (
        ("Total users", f"{row.total_users:,}"),
        ("Active users", f"{row.active_users:,}"),
        ("Voice users", f"{row.voice_users:,}"),
        ("Delta users", f"{delta:+,} (+{row.joins:,}|-{row.parts:,})"),
        ("Messages", f"{row.messages:,}"),
        ("Messages/user", f"{row.messages_per_user:.1f} (σ={row.messages_per_user_stdev:.1f})"),
        ("Voice man-hours", f"{row.voice_man_hours:,.1f}"),
        (
            "Voice hours/user",
            f"{row.voice_hours_per_user:.2f} (σ={row.voice_hours_per_user_stdev:.2f})",
        ),
    )
    for name, value in fields:
        embed.add_field(name=name, value=value, inline=True)
    embed.set_footer(text="Times in UTC · counts are per monthly pseudonym, never per person")
    return embed
