"""An in-memory key store, so collector tests need no database."""

from __future__ import annotations

from guildmeter.collect import Accumulator, Batch
from guildmeter.privacy import Keyring


class MemoryKeys:
    def __init__(self) -> None:
        self.keys: dict[tuple[int, int], bytes] = {}

    def get_or_create_key(self, guild_id: int, month: int, candidate: bytes) -> bytes | None:
        return self.keys.setdefault((guild_id, month), candidate)


def ready_accumulator(**kwargs: object) -> tuple[Accumulator, Keyring, MemoryKeys]:
    keyring, keys = Keyring(), MemoryKeys()
    return Accumulator(keyring, **kwargs), keyring, keys  # type: ignore[arg-type]


def settle(acc: Accumulator, keyring: Keyring, keys: MemoryKeys) -> Batch:
    """What a flush does before writing: load keys, resolve, drain."""
    keyring.load(keys, acc.keys_needed())
    acc.resolve_pending()
    return acc.drain()


def totals_by_event(batch: Batch) -> dict[int, int]:
    out: dict[int, int] = {}
    for key, count in batch.counts.items():
        out[key[2]] = out.get(key[2], 0) + count
    return out
