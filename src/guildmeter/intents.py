"""The gateway intents guildmeter asks for, and running on when Discord refuses some.

Discord refuses privileged intents an application was not granted by closing the gateway
with code 4014 ("Disallowed intent(s)") right after IDENTIFY; discord.py's ``connect``
then raises `discord.PrivilegedIntentsRequired` without closing the client. The intents
of a discord.py client are fixed when it is made (its connection state, member cache
and chunking follow from them), so `start_with_fallback` closes the refused bot — a
clean close: the extension flushes and unloads — and starts a new one, made by the host's
factory, with one privileged intent fewer: Message Content first (only prefix commands
need it), then Server Members. The close code does not say which intent was refused; the
second refusal proves it was Server Members.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import discord
from discord.ext import commands

from guildmeter.collection import Collection

__all__ = ["collection_of", "fallback", "intents_for", "start_with_fallback"]

log = logging.getLogger(__name__)


def intents_for(mode: str = "all") -> discord.Intents:
    """The intents of a ``Config.intents`` mode (``all``, ``no-message-content``, ``minimal``)."""
    intents = discord.Intents.none()
    intents.guilds = True  # channels and their names, the AFK channel
    intents.voice_states = True  # time in voice
    intents.guild_messages = True  # message counts (content is never needed for them)
    intents.members = mode in ("all", "no-message-content")  # joins, parts (privileged)
    intents.message_content = mode == "all"  # prefix commands (privileged)
    return intents


def collection_of(intents: discord.Intents) -> Collection:
    """What a bot with these intents collects."""
    return Collection(members=intents.members, message_content=intents.message_content)


def fallback(intents: discord.Intents) -> tuple[discord.Intents, str] | None:
    """The intents to try after ``intents`` were refused, and the line to log; None: none."""
    fewer = discord.Intents(**dict(intents))
    if intents.message_content:
        fewer.message_content = False
        asked = " and ".join(
            name for name, on in (("Server Members", intents.members), ("Message Content", True))
            if on
        )  # fmt: skip
        line = (
            f"Discord refused the privileged intents asked for ({asked}; gateway close 4014): "
            "reconnecting without Message Content — prefix commands can no longer be read "
            "(slash commands only); messages are still counted"
        )
        return fewer, line
    if intents.members:
        fewer.members = False
        line = (
            "Discord refused the Server Members intent (gateway close 4014): reconnecting "
            "without it — joins and parts are no longer collected, and member totals come "
            "from Discord's approximate member count once an hour"
        )
        return fewer, line
    return None


async def start_with_fallback(
    make_bot: Callable[[discord.Intents], commands.Bot],
    token: str,
    intents: discord.Intents | None = None,
) -> None:
    """Run a bot made by ``make_bot(intents)`` until it closes, with fewer intents if refused.

    For host bots as for ``guildmeter run``: ``make_bot`` builds the whole bot (loading
    ``guildmeter.ext`` in its ``setup_hook``) for the intents given. Raises
    `discord.PrivilegedIntentsRequired` only when even the unprivileged intents are refused.
    """
    current = intents if intents is not None else intents_for("all")
    while True:
        bot = make_bot(current)
        try:
            async with bot:
                await bot.start(token)
            return
        except discord.PrivilegedIntentsRequired:
            step = fallback(current)
            if step is None:
                raise
            current, line = step
            log.warning("%s", line)
