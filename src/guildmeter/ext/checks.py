"""Who may see what: moderators, where statistics may be posted, Bot Managers.

Pure functions of plain values (permissions, role ids, settings), so that the rules are
tested without Discord; the commands turn a context into these values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import discord
from discord.ext import commands

from guildmeter.store.settings import GuildSettings

__all__ = [
    "BOT_MANAGER_ROLE",
    "NotAllowed",
    "Viewer",
    "can_configure",
    "can_reset_usage",
    "everyone_can_read",
    "is_moderator",
    "viewer_of",
]


class NotAllowed(commands.CheckFailure):
    """A check that failed with a message meant for the member who asked."""


@dataclass(frozen=True)
class Viewer:
    """The member asking, as plain values."""

    administrator: bool
    manage_guild: bool
    role_ids: frozenset[int]
    role_names: frozenset[str] = frozenset()


#: The role the seed names; counts when no Bot Manager role has been configured.
BOT_MANAGER_ROLE = "bot manager"


def viewer_of(member: discord.abc.User | discord.Member) -> Viewer:
    if not isinstance(member, discord.Member):
        return Viewer(False, False, frozenset())
    permissions = member.guild_permissions
    return Viewer(
        permissions.administrator,
        permissions.manage_guild,
        frozenset(role.id for role in member.roles),
        frozenset(role.name.casefold() for role in member.roles),
    )


def is_moderator(viewer: Viewer, settings: GuildSettings) -> bool:
    """Manage Server, Administrator, or one of the guild's configured moderator roles."""
    return viewer.administrator or viewer.manage_guild or _any(viewer.role_ids, settings.mod_roles)


def can_configure(viewer: Viewer) -> bool:
    """Settings decide who sees statistics: only Manage Server or Administrator change them."""
    return viewer.administrator or viewer.manage_guild


def can_reset_usage(viewer: Viewer, settings: GuildSettings) -> bool:
    """Administrators and Bot Managers (the seed's rule).

    Bot Managers hold a configured manager role or, while none is configured, a role
    named "Bot Manager".
    """
    if viewer.administrator:
        return True
    if settings.manager_roles:
        return _any(viewer.role_ids, settings.manager_roles)
    return BOT_MANAGER_ROLE in viewer.role_names


def everyone_can_read(channel: discord.abc.GuildChannel) -> bool:
    """Whether every member of the guild can read ``channel`` (its @everyone permissions)."""
    return channel.permissions_for(channel.guild.default_role).read_messages


def _any(have: Iterable[int], wanted: frozenset[int]) -> bool:
    return any(role in wanted for role in have)
