"""Every message the extension sends: within Discord's limits, and never a ping.

Replies often echo what a member typed (a date range, a channel name). Echoes are cut to a
few dozen characters and the whole content to Discord's 2,000, so that no input can make a
reply Discord refuses (the member would get no answer at all); mentions are never allowed,
so ``@everyone`` typed into a command comes back as plain text, even in a host bot whose
own default allows mentions.
"""

from __future__ import annotations

from typing import Any

import discord
from discord.ext import commands

__all__ = ["CONTENT_LIMIT", "NO_MENTIONS", "clip", "echo", "send"]

#: Discord's limit on a message's content.
CONTENT_LIMIT = 2000
NO_MENTIONS = discord.AllowedMentions.none()


def clip(text: str, limit: int = CONTENT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def echo(value: object, limit: int = 60) -> str:
    """What a member typed, quoted for a reply: short, on one line, no code-block breakout."""
    text = " ".join(str(value).split()).replace("`", "'")
    return f"`{clip(text, limit)}`"


async def send(ctx: commands.Context[Any], content: str | None = None, **kwargs: Any) -> Any:
    """``ctx.send`` with the content clipped and mentions disabled."""
    if content is not None:
        content = clip(content)
    kwargs.setdefault("allowed_mentions", NO_MENTIONS)
    return await ctx.send(content, **kwargs)
