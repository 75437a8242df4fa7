"""Bot-usage analytics: commands, generation jobs and user actions, tracked in memory."""

from __future__ import annotations

from guildmeter.usage.api import track_activity, track_command, track_generation
from guildmeter.usage.tracker import ActivityRecord, CommandUse, Generation, UsageTracker

__all__ = [
    "ActivityRecord",
    "CommandUse",
    "Generation",
    "UsageTracker",
    "track_activity",
    "track_command",
    "track_generation",
]
