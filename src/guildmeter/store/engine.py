"""Database URLs and engines: SQLite (WAL, secure_delete) by default, PostgreSQL at scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url

__all__ = ["DEFAULT_DB_URL", "make_engine", "normalise_url", "unreachable_reason"]

DEFAULT_DB_URL = "sqlite:///guildmeter.db"


def normalise_url(url: str) -> str:
    """Accept a plain file path for SQLite and ``postgresql://`` for psycopg 3."""
    if "://" not in url:
        return f"sqlite:///{Path(url)}"
    scheme, rest = url.split("://", 1)
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    return url


def make_engine(
    url: str,
    *,
    busy_timeout_s: float = 10.0,
    statement_timeout_s: float = 300.0,
    lock_timeout_s: float = 30.0,
    **kwargs: Any,
) -> Engine:
    """Create the one engine of a process; SQLite connections get our pragmas.

    ``busy_timeout_s``: how long a SQLite write waits for another writer's lock before
    the flush gives up (and retries at the next flush). PostgreSQL connections get a
    statement and a lock timeout, a connect timeout and TCP keepalives, so that a database
    that hangs (rather than fails) cannot hold the flush forever; a caller's own
    ``connect_args`` options come after ours and win.
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_timeout_s}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    connect_args = dict(kwargs.pop("connect_args", None) or {})
    parsed = make_url(url)
    ours = (
        f"-c statement_timeout={int(statement_timeout_s * 1000)} "
        f"-c lock_timeout={int(lock_timeout_s * 1000)}"
    )
    # One options string: ours first, then the URL's (``?options=-csearch_path=…``), then
    # the caller's — later settings win, and none is silently dropped.
    from_url = parsed.query.get("options", "")
    if isinstance(from_url, tuple):
        from_url = " ".join(from_url)
    options = " ".join(filter(None, (ours, from_url, connect_args.get("options", ""))))
    connect_args["options"] = options
    for key, value in _PG_CONNECT_DEFAULTS.items():
        connect_args.setdefault(key, value)
    parsed = parsed.difference_update_query(["options"])
    return create_engine(parsed, connect_args=connect_args, **kwargs)


#: A dead server or network is noticed within about a minute, not the kernel's two hours.
_PG_CONNECT_DEFAULTS = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def unreachable_reason(url: str, *, timeout_s: int = 3) -> str | None:
    """None when the database at ``url`` answers; otherwise why not, in one line."""
    url = normalise_url(url)
    connect_args = {"connect_timeout": timeout_s} if url.startswith("postgresql") else {}
    engine = create_engine(url, connect_args=connect_args)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return None
    except Exception as exc:  # any failure to connect is an answer here
        return str(exc).splitlines()[0]
    finally:
        engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # secure_delete: freed bytes are zeroed, so destroyed keys and replaced pseudonyms
    # cannot be read back from free pages.
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "secure_delete=ON",
        "foreign_keys=ON",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()
