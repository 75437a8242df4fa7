"""Month snapshots: a closed month's reports, computed once and read in milliseconds.

A snapshot holds, per report type, the integer sums `guildmeter.reports.compute` turns
into rows — per channel (and for all channels) the per-user counts, sums and sums of
squares per case, server-wide the joins, parts, member totals and uncollected cases — so
a report read from it is computed by the very same arithmetic as a live one and equals it
exactly. Parts: ``all``, ``c:ID`` for every channel with counts in the month, ``g:ID,ID``
for a name shared by several such channels, and ``server``; a channel without counts in
the month reads as empty. Storage, markers and invalidation: `guildmeter.store.snapshots`.

Building reads every row of the month (seconds on a large server): it runs in the
heavy-work pool (`guildmeter.jobs.build_snapshots`), never in the flush or on the loop.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, func, select

from guildmeter.reports.compute import (
    ChannelPart,
    Report,
    ReportError,
    ReportKind,
    ServerPart,
    assemble_report,
    channel_parts,
    report_channel_name,
    server_part,
)
from guildmeter.reports.daterange import DateRange
from guildmeter.store import Store, schema
from guildmeter.store.snapshots import (
    begin_build,
    finish_build,
    markers_on,
    missing_snapshots,
    read_parts,
)
from guildmeter.timeutil import add_months

__all__ = [
    "KINDS",
    "build_missing_snapshots",
    "build_month_snapshots",
    "closed_month_of",
    "refuse_if_retired",
    "snapshot_report",
]

log = logging.getLogger(__name__)

KINDS: tuple[ReportKind, ...] = ("full", "weekday", "hourly")
_MAX_GROUP = 50  # channels sharing one name, at most, for a name-group part


def closed_month_of(daterange: DateRange) -> int | None:
    """The month ``daterange`` covers exactly (start and end at its bounds), or None."""
    months = daterange.months
    if len(months) != 1:
        return None
    month = months[0]
    start, end = daterange.calendar.month_bounds(month)
    if daterange.start != start or daterange.end != end:
        return None
    return month


def snapshot_report(
    conn: Connection,
    guild_id: int,
    kind: ReportKind,
    daterange: DateRange,
    channel: str | None,
    channel_ids: list[int] | None,
) -> Report | None:
    """The report read from the month's snapshot, or None when there is none for it.

    Usually one primary-key query: the server part with the channel's part.
    """
    month = closed_month_of(daterange)
    if month is None:
        return None
    wanted = _part_key(set(channel_ids)) if channel_ids else "all"
    found = read_parts(conn, guild_id, month, kind, ["server", wanted])
    if "server" not in found:
        return None
    if channel_ids is None:
        if "all" not in found:
            return None
        part = _channel_part(found["all"])
    else:
        active = set(json.loads(found["server"])["a"]) & set(channel_ids)
        key = _part_key(active) if active else ""
        if not active:
            part = ChannelPart()
        elif key in found:
            part = _channel_part(found[key])
        else:
            stored = read_parts(conn, guild_id, month, kind, [key])
            if key not in stored:
                return None  # a name shared by channels in a way not stored: live
            part = _channel_part(stored[key])
    return assemble_report(
        kind,
        guild_id,
        report_channel_name(channel, channel_ids),
        daterange,
        part,
        _server_part(found["server"]),
    )


def refuse_if_retired(conn: Connection, guild_id: int, daterange: DateRange) -> None:
    """Refuse a range inside a month whose member rows retention deleted (whole months
    answer from their snapshots before this is asked)."""
    month = daterange.months[0]
    marks = markers_on(conn, guild_id)
    mark = marks.get(month)
    if mark is None or mark.members_deleted_at is None:
        return
    retired = [m for m, found in marks.items() if found.members_deleted_at is not None]
    first_held = add_months(max(retired), 1)
    setting = mark.retention_months
    raise ReportError(
        f"the member-level rows of {month // 100}-{month % 100:02d} were deleted under this "
        f"server's retention setting (retention_months = {setting}: per-member counts are "
        f"kept {setting} month(s) after a month ends). Only whole-month reports of it remain "
        f"(from its snapshot); ask for the whole month, or for a range from "
        f"{first_held // 100}-{first_held % 100:02d} on, the first month still held."
    )


def build_month_snapshots(store: Store, guild_id: int, month: int) -> bool:
    """Compute and store a month's snapshots; False if a write into the month (or a lock)
    got in the way — nothing stored, build again later."""
    token = begin_build(store, guild_id, month)
    if token is None:
        return False
    span = DateRange.month(month, store.calendars.get(guild_id))
    groups = _name_groups(store, guild_id)
    parts: dict[tuple[str, str], str] = {}
    with store.engine.connect() as conn:
        for kind in KINDS:
            server = server_part(conn, guild_id, kind, span)
            whole = channel_parts(conn, store, guild_id, kind, span, None).get(None)
            by_channel = channel_parts(conn, store, guild_id, kind, span, None, by_channel=True)
            active = sorted(k for k in by_channel if k is not None)
            parts[(kind, "server")] = json.dumps(
                {
                    "s": sorted([e, c, n] for (e, c), n in server.sums.items()),
                    "t": sorted([c, n] for c, n in server.totals.items()),
                    "x": sorted(server.uncollected),
                    "a": active,
                }
            )
            parts[(kind, "all")] = _dump_part(whole or ChannelPart())
            for channel_id in active:
                found = by_channel[channel_id]
                parts[(kind, _part_key({channel_id}))] = _dump_part(found)
            for ids in groups:
                shared = set(ids) & set(active)
                if len(shared) > 1:
                    grouped = channel_parts(conn, store, guild_id, kind, span, sorted(shared))
                    parts[(kind, _part_key(shared))] = _dump_part(
                        grouped.get(None) or ChannelPart()
                    )
    stored = finish_build(store, guild_id, month, token, parts)
    if stored:
        log.info("stored the report snapshots of month %d (%d parts)", month, len(parts))
    return stored


def build_missing_snapshots(store: Store, limit: int | None = None) -> list[tuple[int, int]]:
    """Build the snapshots of anonymised months that lack them; returns those stored."""
    built = []
    for guild_id, month in missing_snapshots(store, limit):
        if build_month_snapshots(store, guild_id, month):
            built.append((guild_id, month))
    return built


def _name_groups(store: Store, guild_id: int) -> list[list[int]]:
    """Channel ids sharing a name (case-insensitive), where more than one does."""
    table = schema.channels
    by_name: dict[str, list[int]] = defaultdict(list)
    with store.engine.connect() as conn:
        for row in conn.execute(
            select(table.c.channel_id, func.lower(table.c.name)).where(table.c.guild_id == guild_id)
        ):
            by_name[row[1]].append(int(row[0]))
    return [sorted(ids) for ids in by_name.values() if 1 < len(ids) <= _MAX_GROUP]


def _part_key(channel_ids: set[int]) -> str:
    ids = sorted(channel_ids)
    return f"c:{ids[0]}" if len(ids) == 1 else "g:" + ",".join(str(i) for i in ids)


def _dump_part(part: ChannelPart) -> str:
    return json.dumps(
        {
            "u": sorted([e, c, *values] for (e, c), values in part.users.items()),
            "z": sorted([e, c, n] for (e, c), n in part.nobody.items()),
        }
    )


def _channel_part(payload: str) -> ChannelPart:
    data: dict[str, Any] = json.loads(payload)
    return ChannelPart(
        users={(e, c): (n, total, squares) for e, c, n, total, squares in data["u"]},
        nobody={(e, c): n for e, c, n in data["z"]},
    )


def _server_part(payload: str) -> ServerPart:
    data: dict[str, Any] = json.loads(payload)
    return ServerPart(
        sums={(e, c): n for e, c, n in data["s"]},
        totals={c: n for c, n in data["t"]},
        uncollected=frozenset(data["x"]),
    )
