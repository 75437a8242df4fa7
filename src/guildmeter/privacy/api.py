"""The host bot's call for deletion requests: ``await guildmeter.forget_user(bot, user_id)``.

Discord relays deletion requests to bot owners, and Red-DiscordBot asks every cog through
``red_delete_data_for_user``: both land here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from guildmeter.privacy.rights import ForgetReport

__all__ = ["forget_user"]


async def forget_user(target: Any, user_id: int, *, guild_id: int | None = None) -> ForgetReport:
    """Delete a member's statistics of months not yet anonymised, in memory and on disk.

    ``target`` is the bot that loaded ``guildmeter.ext`` (or its ``ActivityStats``);
    ``guild_id`` None means every guild. Returns what was deleted.
    """
    from guildmeter.activity import ActivityStats
    from guildmeter.ext.privacy import forget_member

    if isinstance(target, ActivityStats):
        return await forget_member(None, target, user_id, guild_id)
    stats = getattr(target, "guildmeter", None)
    if not isinstance(stats, ActivityStats):
        raise TypeError("forget_user needs the bot that loaded guildmeter.ext, or its stats")
    return await forget_member(target, stats, user_id, guild_id)
