"""guildmeter: honest, private activity statistics for Discord communities."""

from __future__ import annotations

from guildmeter.usage.api import track_activity, track_command, track_generation

__all__ = ["__version__", "track_activity", "track_command", "track_generation"]

__version__ = "0.1.0"
