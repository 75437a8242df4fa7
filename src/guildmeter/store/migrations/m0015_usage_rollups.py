"""Roll-ups of the usage day summaries (issue 13): the latency histogram per month and per
part of a month, and each member's active days per month as a bit mask.

Created, then filled from the existing day summaries, so `/stats` gives the same figures
right after the upgrade; from then on the usage writer and the deletions keep them (see
`guildmeter.store.rollups`).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from guildmeter.store import rollups


def _month_start(conn: Connection) -> str:
    """SQL for the day number of the 1st of day number ``day``'s month."""
    if conn.dialect.name == "postgresql":
        return "(CAST(date_trunc('month', DATE '1970-01-01' + day) AS DATE) - DATE '1970-01-01')"
    return (
        "CAST(julianday(date(day * 86400, 'unixepoch', 'start of month')) - 2440587.5 AS INTEGER)"
    )


def backfill(conn: Connection) -> None:
    """Fill the (empty) roll-up tables from the day summaries."""
    month = _month_start(conn)
    days = f"SELECT guild_id, day, command, bucket, uses, {month} AS m FROM usage_daily_latency"
    conn.execute(
        text(
            "INSERT INTO usage_latency_rollups (guild_id, level, first_day, command, bucket, "
            f"uses) SELECT guild_id, {rollups.MONTH}, m, command, bucket, SUM(uses) "
            f"FROM ({days}) AS d GROUP BY guild_id, m, command, bucket"
        )
    )
    part = "CASE WHEN day - m >= 24 THEN m + 24 ELSE m + 8 * ((day - m) / 8) END"
    conn.execute(
        text(
            "INSERT INTO usage_latency_rollups (guild_id, level, first_day, command, bucket, "
            f"uses) SELECT guild_id, {rollups.PART}, p, command, bucket, SUM(uses) "
            f"FROM (SELECT guild_id, command, bucket, uses, {part} AS p FROM ({days}) AS d) "
            "AS q GROUP BY guild_id, p, command, bucket"
        )
    )
    conn.execute(
        text(
            "INSERT INTO usage_monthly_users (guild_id, month_day, member_id, days_mask) "
            "SELECT guild_id, m, member_id, SUM(CAST(1 AS BIGINT) << (day - m)) "
            f"FROM (SELECT guild_id, day, member_id, {month} AS m FROM usage_daily_users) "
            "AS d GROUP BY guild_id, m, member_id"
        )
    )


def upgrade(conn: Connection) -> None:
    for table in rollups.rollup_tables:
        table.create(conn)
    backfill(conn)
