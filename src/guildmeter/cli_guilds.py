"""The guild a command names must be one the database knows (README, "The guild id").

``cli.py`` refuses a guild without statistics for its reports; the commands that write a
guild's settings or delete a member's rows (``settings``, ``forget``) refuse, here, a guild
the database knows nothing about: no count, no bot-usage record, no stored setting. A
typed id with a wrong digit would otherwise store a timezone nobody reads, or answer a
deletion request with "nothing stored" while the member's rows sit in the real guild.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from guildmeter.errors import GuildmeterError

if TYPE_CHECKING:
    from guildmeter.store import Store

__all__ = ["require_known_guild"]


def require_known_guild(store: Store, guild: int) -> None:
    """Refuse ``guild`` unless it has statistics, usage records or settings stored, naming
    the guilds that have statistics (or usage records)."""
    from sqlalchemy import select

    from guildmeter.store import schema
    from guildmeter.store.catalog import (
        data_span,
        guilds_with_statistics,
        guilds_with_usage,
        has_usage,
    )
    from guildmeter.store.opening import describe_url

    if data_span(store, guild) is not None or has_usage(store, guild):
        return
    with store.engine.connect() as conn:
        for table in (schema.guild_settings, schema.guild_timezones):
            query = select(table.c.guild_id).where(table.c.guild_id == guild).limit(1)
            if conn.execute(query).first() is not None:
                return
    shown = describe_url(store.engine.url.render_as_string(hide_password=True))
    known = sorted(set(guilds_with_statistics(store)) | set(guilds_with_usage(store)))
    if not known:
        raise GuildmeterError(f"{shown} holds no statistics of any guild yet")
    listed = ", ".join(str(g) for g in known[:10]) + (", …" if len(known) > 10 else "")
    raise GuildmeterError(
        f"no statistics for guild {guild} in {shown}; guilds with statistics: {listed}"
    )
