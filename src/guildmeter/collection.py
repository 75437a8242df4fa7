"""Which statistics this bot collects, given the privileged intents Discord granted it.

Plain values, no discord.py: `/privacy`, ``statsconfig show`` and the start-up log all say
the same thing from one `Collection`, and the privacy statement stays testable alone.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALL_COLLECTED", "Collection"]

_MEMBERS = "the bot lacks the Server Members intent"
_CONTENT = "the bot lacks the Message Content intent"


@dataclass(frozen=True)
class Collection:
    """What the two privileged intents decide: joins and parts, and prefix commands."""

    #: Server Members: joins and parts are dispatched, member totals follow them live.
    members: bool = True
    #: Message Content: prefix commands can be read (message counts never need it).
    message_content: bool = True

    @property
    def complete(self) -> bool:
        return self.members and self.message_content

    def lines(self) -> list[str]:
        """One line per statistic (and the commands), saying whether and why."""
        lines = ["messages per channel: collected (message content is never read)"]
        lines.append("voice time: collected")
        if self.members:
            lines.append("joins and parts: collected")
            lines.append("member totals: collected, as members join and leave")
        else:
            lines.append(f"joins and parts: not collected — {_MEMBERS}")
            lines.append(
                f"member totals: Discord's approximate member count, once an hour — {_MEMBERS}"
            )
        if self.message_content:
            lines.append("commands: prefix and slash")
        else:
            lines.append(
                f"commands: slash only (prefix commands cannot be read) — {_CONTENT}; "
                "messages are still counted"
            )
        return lines

    def missing(self) -> list[str]:
        """The lines about what is lost, for warnings (empty when nothing is)."""
        return [line for line in self.lines() if " — " in line]


ALL_COLLECTED = Collection()
