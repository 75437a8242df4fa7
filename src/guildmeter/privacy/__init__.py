"""The only place a raw user id becomes a pseudonym, and where pseudonyms are retired."""

from __future__ import annotations

from guildmeter.privacy.anonymize import is_token, new_token
from guildmeter.privacy.keyring import Keyring, KeyStore, is_pseudonym

__all__ = ["KeyStore", "Keyring", "is_pseudonym", "is_token", "new_token"]
