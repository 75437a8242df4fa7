"""The exceptions a user of guildmeter may see; each carries a message fit to show as-is.

Messages echo what was typed (channel names, paths, file names): a control character in
one would reach the terminal as a command (``ESC ] 0 ; title BEL`` retitles the window,
``ESC [ 2 J`` clears it), and a bidirectional override (U+202E) or an invisible character
(U+200B) would make the line read otherwise than it says. So every message is made
`printable` when it is read, whatever path shows it: the command line, a Discord reply,
the dashboard, a log line.
"""

from __future__ import annotations

import re

__all__ = [
    "GuildmeterError",
    "InvalidEventError",
    "StoreUnavailableError",
    "UnusableDatabaseError",
    "UnwritableOutputError",
    "printable",
]

#: C0 controls, DEL and C1 controls (Unicode category Cc): CSI, OSC, BEL, CR, ESC itself;
#: the bidirectional marks, embeddings, overrides and isolates, the zero-width space, word
#: joiner and BOM, and the line and paragraph separators. Zero-width (non-)joiners stay:
#: emoji sequences and several scripts need them.
_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e\u2060\u2066-\u2069\ufeff]"
)


def printable(text: str) -> str:
    """``text`` with every control character (and reordering or invisible one, see
    `_CONTROL`) written as Python writes it in a repr (``\\x1b``, ``\\u202e``, ``\\n``):
    visible, and inert on any terminal."""
    return _CONTROL.sub(lambda found: repr(found.group())[1:-1], text)


class GuildmeterError(Exception):
    """Base class: the message is written for the person who made the request."""

    def __str__(self) -> str:
        return printable(super().__str__())


class InvalidEventError(GuildmeterError, ValueError):
    """An event the collector refuses: unknown kind, negative count, naive time..."""


class StoreUnavailableError(GuildmeterError):
    """The database could not be reached or was locked; the work is kept and retried."""


class UnusableDatabaseError(GuildmeterError):
    """A database that is missing, not guildmeter's, corrupt or of an unsupported kind."""


class UnwritableOutputError(GuildmeterError):
    """An output file that cannot be written: found out before any work starts."""
