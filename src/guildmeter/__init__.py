"""guildmeter: honest, private activity statistics for Discord communities."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from guildmeter.usage.api import track_activity, track_command, track_generation

__all__ = ["__version__", "track_activity", "track_command", "track_generation"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The tracking API, imported on first use: the CLI's start-up must not pay for it."""
    if name in ("track_activity", "track_command", "track_generation"):
        from guildmeter.usage import api

        return getattr(api, name)
    raise AttributeError(f"module 'guildmeter' has no attribute {name!r}")
