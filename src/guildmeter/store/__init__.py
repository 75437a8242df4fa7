"""Storage of the statistics: SQLAlchemy Core over SQLite or PostgreSQL."""

from __future__ import annotations

from guildmeter.store.engine import DEFAULT_DB_URL, make_engine, normalise_url
from guildmeter.store.sql import AnonymisationResult, Store, StoreSpec

__all__ = [
    "DEFAULT_DB_URL",
    "AnonymisationResult",
    "Store",
    "StoreSpec",
    "make_engine",
    "normalise_url",
]
