"""Monthly keyed pseudonyms.

A pseudonym is BLAKE2b keyed with a random 32-byte key drawn per guild and per statistics
month (the guild's local calendar month, `guildmeter.zones`).
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
from guildmeter.privacy.optout import OptOuts

__all__ = [
    "KEY_BYTES",
    "OPTED_OUT",
    "PSEUDONYM_PREFIX",
    "KeyStore",
    "Keyring",
    "is_pseudonym",
    "pseudonym_of",
]

KEY_BYTES = 32
PSEUDONYM_PREFIX = "h$"
#: Returned (and cached) instead of a pseudonym for a member who opted out of the guild:
#: the collector drops the event on an identity check, so opt-outs cost the event path
#: nothing; the opt-out list is consulted once per member and month, on a cache miss.
OPTED_OUT = "\x00opted-out"


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

    def __init__(self, optouts: OptOuts | None = None) -> None:
        self.optouts = optouts if optouts is not None else OptOuts()
        self._keys: dict[tuple[int, int], bytes] = {}
        self._retired: set[tuple[int, int]] = set()
        self._cache: dict[tuple[int, int], dict[int, str]] = {}

    @property
    def caches(self) -> dict[tuple[int, int], dict[int, str]]:
        """Per (guild, month), the pseudonyms made so far: the listener's fast path reads it.

        Always the same dict object (entries come and go, the dict is never replaced).
        """
        return self._cache

    def is_retired(self, guild_id: int, month: int) -> bool:
        """The month was anonymised: its key is gone and no pseudonym can be made."""
        return (guild_id, month) in self._retired

    def load(self, store: KeyStore, pairs: Iterable[tuple[int, int]]) -> None:
        """Fetch and install the keys of ``pairs``, for synchronous callers (CLI, tests)."""
        self.install(self.fetch(store, pairs))

    def fetch(
        self, store: KeyStore, pairs: Iterable[tuple[int, int]]
    ) -> dict[tuple[int, int], bytes | None]:
        """Fetch or create the keys of ``pairs`` (guild, month), None for destroyed ones.

        Does I/O and changes nothing in memory, so it may run in a worker thread while the
        event loop derives pseudonyms; `install` (on the loop) hands the keys over.
        """
        wanted = {
            pair: secrets.token_bytes(KEY_BYTES)
            for pair in pairs
            if pair not in self._keys and pair not in self._retired
        }
        many = getattr(store, "get_or_create_keys", None)
        if many is not None and len(wanted) > 1:
            return dict(many(wanted))  # one transaction for them all
        return {
            (guild_id, month): store.get_or_create_key(guild_id, month, candidate)
            for (guild_id, month), candidate in wanted.items()
        }

    def install(self, fetched: dict[tuple[int, int], bytes | None]) -> None:
        """Make fetched keys usable (on the event loop); None marks a destroyed key."""
        for pair, key in fetched.items():
            if key is None:
                if pair not in self._retired:
                    self.retire(*pair)
            elif pair not in self._retired:
                self._keys[pair] = key

    def pseudonym(self, guild_id: int, month: int, user_id: int) -> str | None:
        """The user's pseudonym for that guild-month, or None while its key is not loaded.

        `OPTED_OUT` for a member who opted out of the guild.
        """
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
            token = late[user_id] = self._opted_out(guild_id, user_id) or new_token(month)
            return token
        if cache is None:
            cache = self._cache[(guild_id, month)] = {}
        label = cache[user_id] = self._opted_out(guild_id, user_id) or pseudonym_of(key, user_id)
        return label

    def pseudonym_before_optout(self, guild_id: int, month: int, user_id: int) -> str | None:
        """The pseudonym even of a member who opted out since: for counts taken before.

        Nothing is cached, so the member's later events still get `OPTED_OUT`.
        """
        label = self.pseudonym(guild_id, month, user_id)
        if label is not OPTED_OUT:
            return label
        key = self._keys.get((guild_id, month))
        if key is not None:
            return pseudonym_of(key, user_id)
        return new_token(month) if (guild_id, month) in self._retired else None

    def _opted_out(self, guild_id: int, user_id: int) -> str | None:
        optouts = self.optouts
        return OPTED_OUT if optouts.active and optouts.blocks(guild_id, user_id) else None

    def drop_guilds(self, guild_ids: Iterable[int]) -> None:
        """Forget cached pseudonyms of guilds whose opt-out list changed (recomputed lazily).

        On the loop, like every change of the caches the listeners read.
        """
        wanted = set(guild_ids)
        for pair in [p for p in self._cache if p[0] in wanted]:
            self._cache.pop(pair, None)

    def forget(self, guild_id: int | None, user_id: int) -> list[tuple[int, int, str]]:
        """Drop a user's cached pseudonyms; returns ``(guild, month, label)`` of each."""
        dropped = []
        for (guild, month), cache in self._cache.items():  # on the loop
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
