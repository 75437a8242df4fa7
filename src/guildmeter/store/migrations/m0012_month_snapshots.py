"""Month snapshots (issue 13): closed months' reports stored once, and their markers.

See `guildmeter.store.snapshots`; the markers' month index comes with their table.
(Numbered 0012 to stay clear of migrations being written alongside.)
"""

from __future__ import annotations

from sqlalchemy import Connection

from guildmeter.store.snapshots import month_snapshots, report_snapshots


def upgrade(conn: Connection) -> None:
    month_snapshots.create(conn)
    report_snapshots.create(conn)
