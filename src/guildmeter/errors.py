"""The exceptions a user of guildmeter may see; each carries a message fit to show as-is."""

from __future__ import annotations

__all__ = [
    "GuildmeterError",
    "InvalidEventError",
    "StoreUnavailableError",
    "UnusableDatabaseError",
    "UnwritableOutputError",
]


class GuildmeterError(Exception):
    """Base class: the message is written for the person who made the request."""


class InvalidEventError(GuildmeterError, ValueError):
    """An event the collector refuses: unknown kind, negative count, naive time..."""


class StoreUnavailableError(GuildmeterError):
    """The database could not be reached or was locked; the work is kept and retried."""


class UnusableDatabaseError(GuildmeterError):
    """A database that is missing, not guildmeter's, corrupt or of an unsupported kind."""


class UnwritableOutputError(GuildmeterError):
    """An output file that cannot be written: found out before any work starts."""
