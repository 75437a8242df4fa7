"""``guildmeter settings``: a guild's settings, and its timezone set from the command line.

The options are declared in ``cli.py`` with the other commands; the work is here. A new
timezone follows the same rule as ``statsconfig timezone``: it starts with the guild's next
local month, or at once when the guild has no statistics yet. A guild the database knows
nothing about (a mistyped id) is refused with the guilds that have statistics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from guildmeter.cli_guilds import require_known_guild
from guildmeter.zones import check_zone

if TYPE_CHECKING:
    from guildmeter.store import Store

__all__ = ["run_settings"]


def run_settings(
    store: Store,
    guild: int,
    timezone: str | None,
    retention_months: int | None = None,
    *,
    default_retention: int = 0,
) -> None:
    """Set the guild's timezone and retention if asked (checked first), then print its
    settings."""
    from guildmeter.store.retention import describe_retention
    from guildmeter.store.settings import SettingsStore
    from guildmeter.timeutil import utcnow
    from guildmeter.zonetext import describe_change, describe_timezone

    require_known_guild(store, guild)
    now = utcnow()
    if timezone is not None:
        zone = check_zone(timezone)  # one line with suggestions, before any write
        change = store.set_timezone(guild, zone, now)
        click.echo(describe_change(change, store.calendars.get(guild)))
    if retention_months is not None:
        SettingsStore(store).set_single(guild, "retention_months", retention_months)
    settings = SettingsStore(store).read(guild)

    def ids(values: frozenset[int]) -> str:
        return ", ".join(str(v) for v in sorted(values)) or "none"

    lines = [
        f"Guild {guild}",
        describe_timezone(store.calendars.get(guild), now),
        f"Moderator channels: {ids(settings.mod_channels)}",
        f"Moderator roles (besides Manage Server and Administrator): {ids(settings.mod_roles)}",
        f"Bot Manager roles: {ids(settings.manager_roles)}",
        f"Monthly report channel: {settings.report_channel or 'none'}",
        f"Smallest public cell: {settings.min_cell_users} members",
        "Anonymised months keep: "
        + ("aggregate counts only" if settings.aggregates_only else "a row per member's token"),
        describe_retention(settings, default_retention),
    ]
    click.echo("\n".join(lines))
