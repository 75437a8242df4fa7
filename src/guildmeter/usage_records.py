"""The bot-usage record types and their labelling, shared by the tracker and the store.

Both `guildmeter.usage.tracker` (which makes records on the event path) and
`guildmeter.store.usage` (which writes them) import these; this module imports neither, so
the two never import each other. It lives outside both packages because importing
`guildmeter.usage` runs the tracker, which imports the store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "LATENCY_BASE_MS",
    "LATENCY_GROWTH",
    "ActivityRecord",
    "CommandUse",
    "Generation",
    "LabelledUsage",
    "Record",
    "latency_bucket",
]

LATENCY_BASE_MS = 0.1
LATENCY_GROWTH = 1.05  # each histogram bucket is 5 % wider than the one before


def latency_bucket(duration_ms: float) -> int:
    """The histogram bucket of a duration: its upper bound is 0.1 ms × 1.05^bucket."""
    if duration_ms <= LATENCY_BASE_MS:
        return 0
    return min(32767, math.ceil(math.log(duration_ms / LATENCY_BASE_MS, LATENCY_GROWTH) - 1e-9))


@dataclass(frozen=True, slots=True)
class CommandUse:
    guild_id: int  # 0 in direct messages
    channel_id: int
    user_id: int
    command: str
    kind: str  # prefix, slash, context_menu
    at: datetime
    duration_ms: float
    ok: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class Generation:
    guild_id: int
    user_id: int
    at: datetime
    prompt: str | None  # None unless the owner enabled store_prompts
    resolution: str
    loras: tuple[str, ...]
    upscale: float
    seconds: float
    is_video: bool
    generation_type: str


@dataclass(frozen=True, slots=True)
class ActivityRecord:
    guild_id: int
    user_id: int
    at: datetime
    action: str
    details: str


Record = CommandUse | Generation | ActivityRecord


@dataclass(frozen=True, slots=True)
class LabelledUsage:
    """A record with its user turned into a pseudonym (the raw id is not read again)."""

    record: Record
    hour: int
    label: str
