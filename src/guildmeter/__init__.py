"""guildmeter: honest, private activity statistics for Discord communities."""

from __future__ import annotations

from guildmeter.privacy.api import forget_user
from guildmeter.privacy.statement import END_USER_DATA_STATEMENT
from guildmeter.usage.api import track_activity, track_command, track_generation

__all__ = [
    "END_USER_DATA_STATEMENT",
    "__version__",
    "forget_user",
    "track_activity",
    "track_command",
    "track_generation",
]

__version__ = "0.1.0"
