"""Reports as Discord embeds: the seed's full-report fields, within Discord's limits."""

from __future__ import annotations

import discord

from guildmeter.ext.replies import literal
from guildmeter.reports import Report
from guildmeter.reports.suppress import PublicReport, fewer_than

__all__ = ["AGGREGATES_NOTICE", "ANONYMISED_NOTICE", "NOT_COLLECTED", "report_embed"]

ANONYMISED_NOTICE = (
    "This month is over: every member's pseudonym has been replaced by a random token and "
    "the month's key destroyed, so the bot can no longer tell which member a token was. "
    "A token still stands for one member across channels for the month: someone who reads "
    "the channels may recognise a member from its pattern."
)
AGGREGATES_NOTICE = (
    "This month is over: the month's key destroyed, and only aggregate counts are kept — "
    "no row per member. Per-member figures of this month can no longer be computed."
)
_COLOUR = discord.Colour(0x3B82F6)
#: A figure that was not collected (joins and parts without the Server Members intent).
NOT_COLLECTED = "—"


def report_embed(
    report: Report,
    *,
    title: str | None = None,
    notice: str | None = None,
    public: PublicReport | None = None,
) -> discord.Embed:
    """The full report (its single row) as the seed's embed fields.

    ``public``: the same report suppressed for readers other than moderators; its hidden
    cells read "fewer than N".
    """
    row = report.rows[0]
    hidden = frozenset() if public is None else public.hidden[0]
    small = "" if public is None else fewer_than(public.min_users)

    # Counts without users: a month kept as aggregates only (statsconfig anonymised).
    gone = {
        *(("active_users", "messages_per_user") if row.messages and not row.active_users else ()),
        *(
            ("voice_users", "voice_hours_per_user")
            if row.voice_man_hours and not row.voice_users
            else ()
        ),
    }

    def shown(column: str, text: str) -> str:
        if column in hidden:
            return small
        return "not kept" if column in gone else text

    channel = "all channels" if report.channel == "all" else f"#{literal(report.channel)}"
    embed = discord.Embed(
        title=title or f"Full report, {channel}",
        description=f"{report.range.describe()}" + (f"\n\n{notice}" if notice else ""),
        colour=_COLOUR,
    )
    if row.joins is None or row.parts is None:
        delta_users = f"{NOT_COLLECTED} (joins and parts not collected)"
    else:
        delta_users = f"{row.joins - row.parts:+,} (+{row.joins:,}|-{row.parts:,})"
    fields = (
        ("Total users", f"{row.total_users:,}"),
        ("Active users", shown("active_users", f"{row.active_users:,}")),
        ("Voice users", shown("voice_users", f"{row.voice_users:,}")),
        ("Delta users", delta_users),
        ("Messages", shown("messages", f"{row.messages:,}")),
        (
            "Messages/user",
            shown(
                "messages_per_user",
                f"{row.messages_per_user:.1f} (σ={row.messages_per_user_stdev:.1f})",
            ),
        ),
        ("Voice man-hours", shown("voice_man_hours", f"{row.voice_man_hours:,.1f}")),
        (
            "Voice hours/user",
            shown(
                "voice_hours_per_user",
                f"{row.voice_hours_per_user:.2f} (σ={row.voice_hours_per_user_stdev:.2f})",
            ),
        ),
    )
    for name, value in fields:
        embed.add_field(name=name, value=value, inline=True)
    footer = (
        f"Times in {report.range.zone_label} · users are monthly pseudonyms: one per member "
        "per month"
    )
    if row.joins is None:
        footer += " · joins and parts not collected: the bot lacked the Server Members intent"
    if public is not None and public.any_hidden:
        footer += f" · figures of fewer than {public.min_users} members are hidden"
    embed.set_footer(text=footer)
    return embed
