"""The opt-out list refreshed in the flush thread while the listeners look members up."""

from __future__ import annotations

import itertools
import threading
import time

from guildmeter.privacy.optout import OptOuts, optout_digest

KEY = b"k" * 32


class ChangingSource:
    """Every load answers a different list (another process opts members out meanwhile)."""

    def __init__(self) -> None:
        self.loads = itertools.count()

    def load_optouts(self) -> dict[int, tuple[bytes, frozenset[bytes]]]:
        n = next(self.loads)
        return {1: (KEY, frozenset({optout_digest(KEY, 1_000_000 + n)}))}

    def get_or_create_optout_key(self, guild_id: int, candidate: bytes) -> bytes:
        return KEY

    def add_optout(self, guild_id: int, digest: bytes) -> bool:
        return True

    def remove_optout(self, guild_id: int, digest: bytes) -> bool:
        return True


def test_refreshing_never_iterates_what_the_event_path_fills() -> None:
    """Regression: the refresh filtered the live decision cache in the flush thread
    ("dictionary changed size during iteration"), and the opt-out was then lost for good."""
    optouts = OptOuts()
    source = ChangingSource()
    optouts.refresh(source)
    for user in range(200_000):  # a large cache of decisions, as in a big server
        optouts.blocks(1, user)
    errors: list[BaseException] = []
    stop = threading.Event()

    def flush_thread() -> None:
        while not stop.is_set():
            try:
                optouts.refresh(source)
            except BaseException as exc:
                errors.append(exc)
                return

    worker = threading.Thread(target=flush_thread)
    worker.start()
    try:
        user, deadline = 200_000, time.monotonic() + 1.5
        while time.monotonic() < deadline and not errors:
            for _ in range(5_000):
                optouts.blocks(1, user)
                user += 1
    finally:
        stop.set()
        worker.join()
    assert errors == []
    optouts.refresh(source)
    newest = next(source.loads) - 1  # what that last refresh loaded
    assert optouts.blocks(1, 1_000_000 + newest)  # the newest opt-out is honoured
    assert not optouts.blocks(1, 1_000_000 + newest - 1)
