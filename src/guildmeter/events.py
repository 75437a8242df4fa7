"""The kinds of activity event counted, with the codes stored in the database."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["NO_CHANNEL", "NO_USER", "EventKind"]


class EventKind(IntEnum):
    """Event names are KazTron's; values are the stored codes and must never change."""

    MSG = 1
    JOIN = 2
    PART = 3
    VOICE = 4
    TOTAL_USERS = 5

    @property
    def label(self) -> str:
        """The name used in dumps and reports: msg, join, part, voice, total_users."""
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> EventKind:
        """The kind named ``name`` (case-insensitive); ValueError listing the valid names."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            valid = ", ".join(k.label for k in cls)
            raise ValueError(f"unknown event kind {name!r} (expected one of: {valid})") from None


#: Channel id stored for server-wide events (joins, parts, member totals).
NO_CHANNEL = 0
#: User label stored for events that belong to nobody (member totals).
NO_USER = ""
