"""Shared fixtures: a fresh ``store`` on every backend (SQLite file, real PostgreSQL).

PostgreSQL: ``GUILDMETER_TEST_PG`` (default postgresql://postgres@127.0.0.1:5432/test).
Each test gets its own schema, dropped afterwards. When no server answers, the
PostgreSQL tests fail under CI (``CI`` set) and are skipped, saying so, elsewhere.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from guildmeter.store import Store, normalise_url
from guildmeter.store.engine import unreachable_reason

PG_URL = os.environ.get("GUILDMETER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

_pg_state: dict[str, str | None] = {}


def _pg_unreachable_reason() -> str | None:
    if "reason" not in _pg_state:
        reason = unreachable_reason(PG_URL)
        _pg_state["reason"] = None if reason is None else f"PostgreSQL at {PG_URL}: {reason}"
    return _pg_state["reason"]


def require_postgresql() -> None:
    """Skip (or, under CI, fail) when the PostgreSQL server cannot be reached."""
    reason = _pg_unreachable_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} — CI must run the PostgreSQL tests")
    pytest.skip(f"{reason} — skipping PostgreSQL tests (CI unset)")


class PgSchema:
    """A throw-away PostgreSQL schema and the URL/engine options that select it."""

    def __init__(self) -> None:
        self.name = f"gm_test_{uuid.uuid4().hex[:12]}"
        self.admin = sqlalchemy.create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {self.name}")
        self.url = PG_URL
        self.engine_kwargs: dict[str, Any] = {
            "connect_args": {"options": f"-csearch_path={self.name}"}
        }

    def drop(self) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {self.name} CASCADE")
        self.admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_postgresql()
    return str(request.param)


@pytest.fixture
def store_factory(backend: str, tmp_path: Path) -> Iterator[Callable[..., Store]]:
    """Opens stores on one fresh database of the backend (several = several processes)."""
    opened: list[Store] = []
    schema = PgSchema() if backend == "postgresql" else None

    def open_store(**kwargs: Any) -> Store:
        if schema is not None:
            store = Store.open(schema.url, **schema.engine_kwargs, **kwargs)
        else:
            store = Store.open(str(tmp_path / "stats.db"), **kwargs)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()
    if schema is not None:
        schema.drop()


@pytest.fixture
def store(store_factory: Callable[..., Store]) -> Store:
    return store_factory()
