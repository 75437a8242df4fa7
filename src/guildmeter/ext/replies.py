"""Every message the extension sends: within Discord's limits, and never a ping.

Replies often echo what a member typed (a date range, a channel name). Echoes are cut to a
few dozen characters and the whole content to Discord's 2,000, so that no input can make a
reply Discord refuses (the member would get no answer at all); mentions are never allowed,
so ``@everyone`` typed into a command comes back as plain text, even in a host bot whose
own default allows mentions.

Echoes outside inline code go through `literal`: Discord would otherwise render what was
typed as markdown — a masked link ``[click](https://…)`` hiding where it leads, spoilers,
headings, a stray backtick opening code over the rest of the reply. (`echo` quotes inside
inline code, where markdown does not apply.)
"""

from __future__ import annotations

import re
from typing import Any

import discord
from discord.ext import commands

__all__ = ["CONTENT_LIMIT", "NO_MENTIONS", "clip", "echo", "literal", "send"]

#: Discord's limit on a message's content.
CONTENT_LIMIT = 2000
NO_MENTIONS = discord.AllowedMentions.none()
#: An opening bracket not yet escaped: an even run of backslashes (escaped backslashes
#: only) before it.
_BARE_BRACKET = re.compile(r"(?<!\\)((?:\\\\)*)\[")


def clip(text: str, limit: int = CONTENT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def echo(value: object, limit: int = 60) -> str:
    """What a member typed, quoted for a reply: short, on one line, no code-block breakout."""
    text = " ".join(str(value).split()).replace("`", "'")
    return f"`{clip(text, limit)}`"


def literal(text: str) -> str:
    """``text`` (which may hold what a member typed) escaped to show as typed in Discord.

    ``escape_markdown`` escapes only the first of several masked links (its pattern is
    greedy), so every ``[`` is escaped too; mentions get a zero-width space after the ``@``
    (``AllowedMentions`` already stops the ping, not the highlighted ``@everyone``).
    """
    escaped = discord.utils.escape_markdown(text)
    return discord.utils.escape_mentions(_BARE_BRACKET.sub(r"\1\\[", escaped))


async def send(ctx: commands.Context[Any], content: str | None = None, **kwargs: Any) -> Any:
    """``ctx.send`` with the content clipped and mentions disabled."""
    if content is not None:
        content = clip(content)
    kwargs.setdefault("allowed_mentions", NO_MENTIONS)
    return await ctx.send(content, **kwargs)
