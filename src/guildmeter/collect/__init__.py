"""In-memory counting on the event path: no I/O happens here."""

from __future__ import annotations

from guildmeter.collect.accumulator import Accumulator, Batch, CountKey
from guildmeter.collect.voice import VoiceTracker

__all__ = ["Accumulator", "Batch", "CountKey", "VoiceTracker"]
