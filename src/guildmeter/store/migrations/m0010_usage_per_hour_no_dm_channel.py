"""Usage records kept no finer than needed: times to the hour, no direct-message channel.

Earlier versions stored each record's time to the microsecond and, for commands run in
direct messages, the DM channel's id — which is permanent per member and so names them.
New records are written this way already (see `guildmeter.usage.tracker`); this brings
existing rows in line. (Numbered 0010 to stay clear of migrations being written alongside.)
"""

from __future__ import annotations

from sqlalchemy import Connection

_TABLES = ("usage_commands", "usage_generations", "usage_activity")


def upgrade(conn: Connection) -> None:
    conn.exec_driver_sql("UPDATE usage_commands SET channel_id = 0 WHERE guild_id = 0")
    for table in _TABLES:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                f"UPDATE {table} SET at = date_trunc('hour', at AT TIME ZONE 'UTC') "
                "AT TIME ZONE 'UTC' WHERE at <> date_trunc('hour', at AT TIME ZONE 'UTC') "
                "AT TIME ZONE 'UTC'"
            )
        else:  # SQLite: SQLAlchemy stores UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'
            conn.exec_driver_sql(
                f"UPDATE {table} SET at = substr(at, 1, 13) || ':00:00.000000' "
                "WHERE at <> substr(at, 1, 13) || ':00:00.000000'"
            )
