from __future__ import annotations

from collections.abc import Callable

from guildmeter.privacy import Keyring, is_pseudonym, is_token
from guildmeter.store import Store


def test_pseudonyms_differ_by_guild_and_month_and_are_stable(store: Store) -> None:
    keyring = Keyring()
    keyring.load(store, [(1, 202601), (1, 202602), (2, 202601)])
    first = keyring.pseudonym(1, 202601, 42)
    assert first is not None and is_pseudonym(first)
    assert keyring.pseudonym(1, 202601, 42) == first
    assert keyring.pseudonym(1, 202602, 42) != first
    assert keyring.pseudonym(2, 202601, 42) != first
    assert keyring.pseudonym(1, 202601, 43) != first


def test_no_pseudonym_before_the_key_is_loaded(store: Store) -> None:
    keyring = Keyring()
    assert keyring.pseudonym(1, 202601, 42) is None
    keyring.load(store, [(1, 202601)])
    assert keyring.pseudonym(1, 202601, 42) is not None


def test_two_processes_share_the_key_through_the_store(
    store_factory: Callable[..., Store],
) -> None:
    shard_a, shard_b = Keyring(), Keyring()
    shard_a.load(store_factory(), [(7, 202605)])
    shard_b.load(store_factory(), [(7, 202605)])
    assert shard_a.pseudonym(7, 202605, 99) == shard_b.pseudonym(7, 202605, 99)


def test_a_destroyed_key_yields_tokens_not_pseudonyms(store: Store) -> None:
    Keyring().load(store, [(1, 202601)])
    store.anonymise_month(1, 202601)
    keyring = Keyring()
    keyring.load(store, [(1, 202601)])
    assert keyring.is_retired(1, 202601)
    late = keyring.pseudonym(1, 202601, 42)
    assert late is not None and is_token(late) and late.startswith("u202601$")
    assert keyring.pseudonym(1, 202601, 42) == late  # one user, one token
