"""guildmeter: honest, private activity statistics for Discord communities."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from guildmeter.intents import start_with_fallback
    from guildmeter.privacy.api import forget_user
    from guildmeter.privacy.statement import END_USER_DATA_STATEMENT
    from guildmeter.usage.api import track_activity, track_command, track_generation

__all__ = [
    "END_USER_DATA_STATEMENT",
    "__version__",
    "forget_user",
    "start_with_fallback",
    "track_activity",
    "track_command",
    "track_generation",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The public API, imported on first use: the CLI's start-up must not pay for it."""
    if name in ("track_activity", "track_command", "track_generation"):
        from guildmeter.usage import api

        return getattr(api, name)
    if name == "forget_user":
        from guildmeter.privacy.api import forget_user

        return forget_user
    if name == "start_with_fallback":
        from guildmeter.intents import start_with_fallback

        return start_with_fallback
    if name == "END_USER_DATA_STATEMENT":
        from guildmeter.privacy.statement import END_USER_DATA_STATEMENT

        return END_USER_DATA_STATEMENT
    raise AttributeError(f"module 'guildmeter' has no attribute {name!r}")
