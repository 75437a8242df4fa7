"""Opening a database for a command: checked, and only created when the command may.

Read-only commands (reports, exports, summaries) must never invent an empty database
because a path was mistyped; a file that is not SQLite, a database without guildmeter's
tables, an unsupported URL or a missing driver are refused in one line before any work.
"""

from __future__ import annotations

from pathlib import Path

from guildmeter.errors import StoreUnavailableError, UnusableDatabaseError
from guildmeter.store.engine import make_engine, normalise_url
from guildmeter.store.sql import Store, reopen_spec

__all__ = ["CREATE_HINT", "describe_url", "open_store", "sqlite_path"]

CREATE_HINT = (
    "create one with `guildmeter demo`, `guildmeter import-kaztron` or `guildmeter run`, "
    "or point --db (or GUILDMETER_DB) at an existing one"
)
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SUPPORTED = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")


def describe_url(url: str) -> str:
    """The URL as it may be shown: a SQLite file's path, or the URL without its password."""
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL: show only its scheme
        return url.split("://", 1)[0] + "://…"


def open_store(url: str, *, create: bool) -> Store:
    """A store on ``url``, its schema brought up to date; see the module docstring."""
    scheme = normalise_url(url).split("://", 1)[0].lower()
    if scheme not in _SUPPORTED:
        raise UnusableDatabaseError(
            f"unsupported database URL {describe_url(url)!r}: guildmeter works with SQLite "
            "(a file path or sqlite:///file.db) and PostgreSQL (postgresql://user@host/db, "
            "driver psycopg 3)"
        )
    path = sqlite_path(url)
    if path is not None:
        _check_sqlite_file(path, create=create)
    try:
        store = Store(make_engine(url))
        # Live reports read a big month on two connections (`guildmeter.reports.chunks`).
        store.reopen = reopen_spec(url)
    except Exception as exc:  # bad URL syntax, missing driver: SQLAlchemy's own wording
        raise UnusableDatabaseError(f"cannot use database {describe_url(url)}: {exc}") from None
    try:
        _check_tables(store, describe_url(url), create=create)
        store.migrate()
    except StoreUnavailableError:
        store.close()
        raise
    except UnusableDatabaseError:
        store.close()
        raise
    except Exception as exc:  # SQLAlchemy's DatabaseError etc.: corrupt file, refused login
        store.close()
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise UnusableDatabaseError(f"cannot open database {describe_url(url)}: {reason}") from None
    return store


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    normal = normalise_url(url)
    if not normal.lower().startswith("sqlite"):
        return None
    database = normal.split("://", 1)[1].removeprefix("/").split("?", 1)[0]
    if database in ("", ":memory:"):
        return None
    return Path(database)


def _check_sqlite_file(path: Path, *, create: bool) -> None:
    if path.is_dir():
        raise UnusableDatabaseError(f"--db {path} is a folder, not a database file")
    if not path.exists():
        if not create:
            raise UnusableDatabaseError(f"no database at {path}: {CREATE_HINT}")
        if not path.parent.is_dir():
            raise UnusableDatabaseError(
                f"cannot create {path}: folder {path.parent} does not exist"
            )
        return
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise UnusableDatabaseError(f"cannot read {path}: {exc.strerror}") from None
    if header and header != _SQLITE_MAGIC:
        raise UnusableDatabaseError(f"{path} is not a SQLite database (not a guildmeter file)")
    if not header and not create:
        raise UnusableDatabaseError(f"{path} is an empty file, not a guildmeter database")


def _check_tables(store: Store, shown: str, *, create: bool) -> None:
    from sqlalchemy import inspect

    try:
        with store.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    except Exception as exc:
        if type(exc).__name__ in ("OperationalError", "InterfaceError"):
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise StoreUnavailableError(f"cannot reach database {shown}: {reason}") from None
        raise
    if "schema_migrations" in tables:
        return
    if tables:
        raise UnusableDatabaseError(
            f"{shown} is not a guildmeter database (it holds other tables: "
            f"{', '.join(sorted(tables)[:5])})"
        )
    if not create:
        raise UnusableDatabaseError(f"{shown} holds no guildmeter statistics: {CREATE_HINT}")
