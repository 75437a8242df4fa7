"""Who asked not to be counted, per guild: the event path's one set lookup.

At rest an opt-out is a keyed digest of the user id under a per-guild *opt-out key* (never
used for statistics pseudonyms, never shown), so the opt-out table holds no raw id and no
value that equals anything in the statistics tables. In memory the decision per
``(guild, user)`` is cached, so the event path pays one dict lookup, and nothing at all
while no guild has an opt-out. `refresh` reloads the digests from the store (I/O, off the
event loop) at every flush, so an opt-out given through another process (a shard) is
honoured here within one flush interval.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Mapping
from typing import Protocol

__all__ = ["OPTOUT_KEY_BYTES", "OptOutSource", "OptOuts", "optout_digest"]

OPTOUT_KEY_BYTES = 32
_PERSON = b"gm-optout"  # BLAKE2b personalisation: digests differ from pseudonyms by design


def optout_digest(key: bytes, user_id: int) -> bytes:
    """The stored form of an opt-out: BLAKE2b of the id, keyed with the guild's opt-out key."""
    return hashlib.blake2b(
        user_id.to_bytes(8, "big", signed=False), key=key, digest_size=16, person=_PERSON
    ).digest()


class OptOutSource(Protocol):
    """What `OptOuts` needs from storage (see `guildmeter.store.rights`)."""

    def load_optouts(self) -> dict[int, tuple[bytes, frozenset[bytes]]]:
        """``{guild_id: (opt-out key, digests)}`` of every guild with at least one opt-out."""
        ...

    def get_or_create_optout_key(self, guild_id: int, candidate: bytes) -> bytes: ...

    def add_optout(self, guild_id: int, digest: bytes) -> bool: ...

    def remove_optout(self, guild_id: int, digest: bytes) -> bool: ...


class OptOuts:
    """The opt-out list in memory; see the module docstring."""

    def __init__(self) -> None:
        #: False while no guild has an opt-out: the event path then skips the lookup.
        self.active = False
        self._guilds: Mapping[int, tuple[bytes, frozenset[bytes]]] = {}
        #: ``(guild, user) -> opted out``, filled on first sight.
        self.decided: dict[tuple[int, int], bool] = {}
        # Serialises the writers (refresh in the flush thread, commands in theirs); the
        # event path never takes it.
        self._lock = threading.Lock()

    # -- the event path ---------------------------------------------------------------------

    def blocks(self, guild_id: int, user_id: int) -> bool:
        """True if this member opted out of this guild's statistics (memory only)."""
        decided = self.decided  # one reference: a concurrent refresh swaps whole objects
        known = decided.get((guild_id, user_id))
        if known is not None:
            return known
        entry = self._guilds.get(guild_id)
        blocked = entry is not None and optout_digest(entry[0], user_id) in entry[1]
        decided[(guild_id, user_id)] = blocked
        return blocked

    def __len__(self) -> int:
        return sum(len(digests) for _key, digests in self._guilds.values())

    # -- the flusher's side (I/O) -----------------------------------------------------------

    def refresh(self, source: OptOutSource) -> set[int]:
        """Reload every guild's digests; decisions of guilds whose list changed are redone.

        Runs in a worker thread: it only swaps whole objects, which the loop reads safely.
        Returns the guilds whose list changed (their cached pseudonyms must be dropped).
        """
        with self._lock:
            fresh = source.load_optouts()
            old = self._guilds
            if fresh == old:
                return set()
            changed = {g for g in set(fresh) | set(old) if fresh.get(g) != old.get(g)}
            # The event loop adds to `decided` meanwhile: copy it in one C-level step (no
            # Python code runs, so no other thread can), then filter the copy.
            snapshot = dict(self.decided)
            kept = {k: v for k, v in snapshot.items() if k[0] not in changed}
            # _guilds first: a lookup that sees the new decisions also sees the new lists.
            self._guilds = fresh
            self.decided = kept
            self.active = bool(fresh)
        return changed

    def opt_out(self, source: OptOutSource, guild_id: int, user_id: int) -> bool:
        """Record an opt-out (I/O); True if it is new. Memory honours it at once."""
        with self._lock:
            key = source.get_or_create_optout_key(guild_id, secrets.token_bytes(OPTOUT_KEY_BYTES))
            digest = optout_digest(key, user_id)
            added = source.add_optout(guild_id, digest)
            guilds = dict(self._guilds)
            _key, digests = guilds.get(guild_id, (key, frozenset()))
            guilds[guild_id] = (key, digests | {digest})
            self._guilds = guilds
            self.decided[(guild_id, user_id)] = True
            self.active = True
        return added

    def opt_in(self, source: OptOutSource, guild_id: int, user_id: int) -> bool:
        """Remove an opt-out (I/O); True if there was one. Counting resumes at once."""
        with self._lock:
            key = source.get_or_create_optout_key(guild_id, secrets.token_bytes(OPTOUT_KEY_BYTES))
            digest = optout_digest(key, user_id)
            removed = source.remove_optout(guild_id, digest)
            guilds = dict(self._guilds)
            remaining = guilds.get(guild_id, (key, frozenset()))[1] - {digest}
            if remaining:
                guilds[guild_id] = (key, remaining)
            else:
                guilds.pop(guild_id, None)
            self._guilds = guilds
            self.decided[(guild_id, user_id)] = False
            self.active = bool(guilds)
        return removed
