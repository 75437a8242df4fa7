"""Monthly keyed pseudonyms.

A pseudonym is BLAKE2b keyed with a random 32-byte key drawn per guild and per UTC month.
Discord ids are easy to enumerate, so the key's secrecy is the only protection; a slow hash
would add nothing. Keys live in the store so that every process writing a guild (shards)
derives the same pseudonym; they are fetched off the event path (`load`), and the event
path only reads the in-memory cache (`pseudonym`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from typing import Protocol

from guildmeter.privacy.anonymize import new_token

__all__ = ["KEY_BYTES", "PSEUDONYM_PREFIX", "KeyStore", "Keyring", "is_pseudonym", "pseudonym_of"]

KEY_BYTES = 32
PSEUDONYM_PREFIX = "h$"


class KeyStore(Protocol):
    """What the keyring needs from storage: one shared key per guild-month."""

    def get_or_create_key(self, guild_id: int, month: int, candidate: bytes) -> bytes | None:
        """Store ``candidate`` unless a key exists; return the stored key.

        ``None`` means the month is already anonymised and its key destroyed.
        """
        ...


def is_pseudonym(label: str) -> bool:
    """True for a month's keyed pseudonym (as opposed to an anonymous token)."""
    return label.startswith(PSEUDONYM_PREFIX)


def pseudonym_of(key: bytes, user_id: int) -> str:
    """The pseudonym of ``user_id`` under a guild-month's key (also used by forget)."""
    digest = hashlib.blake2b(
        user_id.to_bytes(8, "big", signed=False), key=key, digest_size=16
    ).hexdigest()
    return PSEUDONYM_PREFIX + digest


class Keyring:
    """Per (guild, month) keys and their pseudonym caches, in memory."""

    def __init__(self) -> None:
        self._keys: dict[tuple[int, int], bytes] = {}
        self._retired: set[tuple[int, int]] = set()
        self._cache: dict[tuple[int, int], dict[int, str]] = {}

    def is_retired(self, guild_id: int, month: int) -> bool:
        """The month was anonymised: its key is gone and no pseudonym can be made."""
        return (guild_id, month) in self._retired

    def load(self, store: KeyStore, pairs: Iterable[tuple[int, int]]) -> None:
        """Fetch or create the keys of ``pairs`` (guild, month). Does I/O: never on the loop."""
        for guild_id, month in pairs:
            if (guild_id, month) in self._keys or (guild_id, month) in self._retired:
                continue
            key = store.get_or_create_key(guild_id, month, secrets.token_bytes(KEY_BYTES))
            if key is None:
                self._retired.add((guild_id, month))
            else:
                self._keys[(guild_id, month)] = key

    def pseudonym(self, guild_id: int, month: int, user_id: int) -> str | None:
        """The user's pseudonym for that guild-month, or None while its key is not loaded."""
        cache = self._cache.get((guild_id, month))
        if cache is not None:
            label = cache.get(user_id)
            if label is not None:
                return label
        key = self._keys.get((guild_id, month))
        if key is None:
            if (guild_id, month) not in self._retired:
                return None
            # A late event for a month already anonymised: its key is gone, so the user
            # gets an anonymous token of that month (kept for this process's lifetime so
            # unique-user counts stay right for the late events themselves).
            late = self._cache.setdefault((guild_id, month), {})
            token = late[user_id] = new_token(month)
            return token
        if cache is None:
            cache = self._cache[(guild_id, month)] = {}
        label = cache[user_id] = pseudonym_of(key, user_id)
        return label

    def forget(self, guild_id: int | None, user_id: int) -> list[tuple[int, int, str]]:
        """Drop a user's cached pseudonyms; returns ``(guild, month, label)`` of each."""
        dropped = []
        for (guild, month), cache in self._cache.items():
            if guild_id is not None and guild != guild_id:
                continue
            label = cache.pop(user_id, None)
            if label is not None:
                dropped.append((guild, month, label))
        return dropped

    def retire(self, guild_id: int, month: int) -> None:
        """Forget a guild-month's key and pseudonyms: the month has been anonymised."""
        self._keys.pop((guild_id, month), None)
        self._cache.pop((guild_id, month), None)
        self._retired.add((guild_id, month))
