"""Ordered schema migrations, recorded in ``schema_migrations``.

Each migration is a module ``mNNNN_name.py`` with ``upgrade(conn)``. A migration, once
released, never changes: later changes to the schema come as new migrations.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, text

from guildmeter.store import schema
from guildmeter.timeutil import utcnow

__all__ = ["Migration", "all_migrations", "apply_migrations"]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    upgrade: Callable[[Connection], None]


def all_migrations() -> list[Migration]:
    """Every migration of this package, in version order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("m") or not info.name[1:5].isdigit():
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append(Migration(int(info.name[1:5]), info.name[6:], module.upgrade))
    return sorted(found, key=lambda m: m.version)


def apply_migrations(conn: Connection) -> list[Migration]:
    """Apply, inside the caller's transaction, every migration not yet recorded."""
    if conn.dialect.name == "postgresql":
        # Two processes starting at once (shards) must not migrate concurrently.
        conn.execute(text("SELECT pg_advisory_xact_lock(7130413)"))
    schema.schema_migrations.create(conn, checkfirst=True)
    done = set(conn.scalars(select(schema.schema_migrations.c.version)))
    applied = []
    for migration in all_migrations():
        if migration.version in done:
            continue
        migration.upgrade(conn)
        conn.execute(
            insert(schema.schema_migrations).values(
                version=migration.version, name=migration.name, applied_at=utcnow()
            )
        )
        applied.append(migration)
    return applied
