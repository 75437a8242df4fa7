"""The public tracking API: ``from guildmeter import track_generation``.

The extension makes its tracker the active one when it loads; these functions only append
to memory (microseconds, safe on the event loop). Called while no extension is loaded,
they drop the record and log a warning once — tracking must never break the host's command.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from guildmeter.usage.tracker import ActivityRecord, Generation, UsageTracker

__all__ = ["activate", "active_tracker", "track_activity", "track_command", "track_generation"]

log = logging.getLogger(__name__)

_active: UsageTracker | None = None
_warned = False


def activate(tracker: UsageTracker | None) -> None:
    """Make ``tracker`` receive the calls below (None: stop tracking)."""
    global _active
    _active = tracker


def active_tracker() -> UsageTracker | None:
    return _active


def _tracker() -> UsageTracker | None:
    global _warned
    if _active is None and not _warned:
        log.warning("guildmeter is not loaded: usage records are dropped")
        _warned = True
    return _active


def track_generation(
    *,
    user_id: int,
    guild_id: int | None,
    resolution: str | tuple[int, int],
    seconds: float,
    is_video: bool = False,
    generation_type: str = "standard",
    prompt: str | None = None,
    loras: Iterable[str] = (),
    upscale: float = 1.0,
    at: datetime | None = None,
) -> None:
    """Record one finished image or video generation job.

    ``prompt`` is kept only when the configuration sets ``store_prompts = true``; it is
    never shown by ``/stats``. ``resolution`` is ``"1024x768"`` or ``(1024, 768)``.
    """
    tracker = _tracker()
    if tracker is None:
        return
    if not isinstance(resolution, str):
        resolution = f"{int(resolution[0])}x{int(resolution[1])}"
    tracker.generation(
        Generation(
            guild_id or 0,
            user_id,
            at or tracker.clock(),
            prompt,
            resolution[:32],
            tuple(str(name) for name in loras),
            float(upscale),
            max(0.0, float(seconds)),
            bool(is_video),
            generation_type[:32],
        )
    )


def track_activity(
    *,
    user_id: int,
    guild_id: int | None,
    action: str,
    details: str = "",
    at: datetime | None = None,
) -> None:
    """Record one user action of the host bot's own (e.g. "button_click", "upscale")."""
    tracker = _tracker()
    if tracker is None:
        return
    tracker.activity(
        ActivityRecord(guild_id or 0, user_id, at or tracker.clock(), action[:64], details[:1000])
    )


def track_command(
    command: str,
    *,
    user_id: int,
    guild_id: int | None,
    channel_id: int | None,
    duration_ms: float,
    ok: bool = True,
    error: str | None = None,
    kind: str = "other",
) -> None:
    """Record a command the extension cannot see (e.g. one handled outside discord.py)."""
    tracker = _tracker()
    if tracker is None:
        return
    tracker.command(
        command,
        guild_id=guild_id,
        channel_id=channel_id,
        user_id=user_id,
        kind=kind,
        duration_ms=duration_ms,
        ok=ok,
        error=error,
    )
