"""The seed's reports — full, weekday, hourly — aggregated by the database.

Per-user sums are computed in SQL (GROUP BY member), and so are their count, sum and sum of
squares per case: Python only turns those few numbers per case into means and sample
standard deviations, exactly, with integer arithmetic.

A channel report counts that channel's messages and voice, plus the server-wide joins,
parts and member totals. Total users is the latest member count recorded in the case.
Joins and parts are None in a case holding an hour a bot ran without Discord's Server
Members intent (`guildmeter.store.coverage`): not collected, rather than a false 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, and_, func, literal_column, or_, select
from sqlalchemy import case as sql_case

from guildmeter.errors import GuildmeterError
from guildmeter.events import EventKind
from guildmeter.reports.daterange import DateRange
from guildmeter.store import Store, schema
from guildmeter.store.coverage import MEMBER_EVENTS, uncollected_hours

__all__ = [
    "REPORT_COLUMNS",
    "WEEKDAYS",
    "ChannelPart",
    "Report",
    "ReportError",
    "ReportKind",
    "ReportRow",
    "ServerPart",
    "assemble_report",
    "case_expression",
    "case_filters",
    "channel_parts",
    "check_report_range",
    "compute_live_report",
    "compute_report",
    "local_hours",
    "report_channel_name",
    "resolve_channel",
    "resolve_channel_on",
    "server_part",
]

ReportKind = Literal["full", "weekday", "hourly"]
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

#: (JSON key, CSV header) of every column, in the seed's order.
REPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("case", "Case"),
    ("total_users", "Total users"),
    ("active_users", "Active users"),
    ("voice_users", "Voice users"),
    ("joins", "Joins"),
    ("parts", "Parts"),
    ("messages", "Messages"),
    ("messages_per_user", "Messages/user"),
    ("messages_per_user_stdev", "(stdev)"),
    ("voice_man_hours", "Voice man-hours"),
    ("voice_hours_per_user", "Voice hours/user"),
    ("voice_hours_per_user_stdev", "(stdev)"),
)


class ReportError(GuildmeterError, ValueError):
    """A report that cannot be made as asked (unknown type or channel, range too wide)."""


@dataclass(frozen=True)
class ReportRow:
    case: str
    total_users: int
    active_users: int
    voice_users: int
    joins: int | None  # None: not collected (see the module docstring)
    parts: int | None
    messages: int
    messages_per_user: float
    messages_per_user_stdev: float
    voice_man_hours: float
    voice_hours_per_user: float
    voice_hours_per_user_stdev: float


@dataclass(frozen=True)
class Report:
    kind: ReportKind
    guild_id: int
    channel: str  # "all" or the channel's name
    range: DateRange
    rows: list[ReportRow]

    def to_json(self) -> dict[str, Any]:
        """DESIGN.md's shape: ids as strings, ISO times."""
        return {
            "report": self.kind,
            "guild_id": str(self.guild_id),
            "channel": self.channel,
            "start": self.range.start.isoformat(),
            "end": self.range.end.isoformat(),
            "rows": [asdict(row) for row in self.rows],
        }


def local_hours(hour: Any, daterange: DateRange | None) -> ColumnElement[Any]:
    """Local wall-clock hours since the epoch of a bucket column, on the range's calendar.

    The shift between bucket and local hour is constant between DST changes, so this is
    the column itself for a UTC guild and a short CASE over the range's DST runs otherwise.
    """
    if daterange is None:
        return hour  # type: ignore[no-any-return]
    runs = daterange.calendar.local_segments(daterange.start_hour, daterange.end_hour)
    if not runs or (len(runs) == 1 and runs[0][2] == 0):
        return hour  # type: ignore[no-any-return]
    if len(runs) == 1:
        return hour + runs[0][2]  # type: ignore[no-any-return]
    whens = [(hour < stop, hour + delta) for _start, stop, delta in runs[:-1]]
    return sql_case(*whens, else_=hour + runs[-1][2])


def case_expression(
    kind: ReportKind, hour: Any, daterange: DateRange | None = None
) -> ColumnElement[Any]:
    """The case a bucket belongs to: 0 (full), weekday 0=Monday, or hour of day — local."""
    if kind == "full":
        return literal_column("0")
    local = local_hours(hour, daterange)
    if kind == "weekday":
        weekday: ColumnElement[Any] = (local // 24 + 3) % 7  # 1970-01-01 was a Thursday (3)
        return weekday
    if kind == "hourly":
        hour_of_day: ColumnElement[Any] = local % 24
        return hour_of_day
    raise ReportError(f"unknown report type {kind!r}: choose full, weekday or hourly")


def _case_labels(kind: ReportKind) -> list[str]:
    if kind == "full":
        return ["all"]
    if kind == "weekday":
        return list(WEEKDAYS)
    return [str(h) for h in range(24)]


def check_report_range(daterange: DateRange) -> None:
    """Refuse a range a report cannot cover (before any work is done)."""
    if not daterange.within_one_month:
        raise ReportError(
            f"the range {daterange.describe()} crosses a month boundary. Members get new "
            "pseudonyms every month, so the same person would count as two different users "
            "and per-user figures would be wrong. Ask for one month at a time."
        )


def resolve_channel(store: Store, guild_id: int, channel: str | None) -> list[int] | None:
    """Channel ids named ``channel`` (``#`` optional); None for "all"."""
    if channel is None or channel.strip().lower() in ("", "all"):
        return None
    with store.engine.connect() as conn:
        return resolve_channel_on(conn, guild_id, channel)


def resolve_channel_on(conn: Connection, guild_id: int, channel: str | None) -> list[int] | None:
    """`resolve_channel` on an open connection."""
    if channel is None or channel.strip().lower() in ("", "all"):
        return None
    name = channel.strip().removeprefix("#")
    table = schema.channels
    ids = list(
        conn.scalars(
            select(table.c.channel_id).where(
                table.c.guild_id == guild_id, func.lower(table.c.name) == name.lower()
            )
        )
    )
    if ids:
        return ids
    known = list(
        conn.scalars(
            select(table.c.name)
            .where(table.c.guild_id == guild_id)
            .order_by(table.c.name)
            .limit(15)
        )
    )
    hint = f" Known channels include: {', '.join('#' + k for k in known)}." if known else ""
    raise ReportError(f"no channel named #{name} in this server's statistics.{hint}")


@dataclass(frozen=True)
class ChannelPart:
    """What a report takes from the channels it covers (one, several, or all).

    ``users``: per (event, case) the number of members with counts, the sum of their
    counts and the sum of the squares of their per-member sums; ``nobody``: per (event,
    case) the counts stored for nobody (months kept as aggregates only).
    """

    users: dict[tuple[int, int], tuple[int, int, int]] = field(default_factory=dict)
    nobody: dict[tuple[int, int], int] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerPart:
    """What a report takes server-wide, whatever its channel: joins and parts per (event,
    case), the latest member total per case, and the cases holding an uncollected hour."""

    sums: dict[tuple[int, int], int] = field(default_factory=dict)
    totals: dict[int, int] = field(default_factory=dict)
    uncollected: frozenset[int] = frozenset()


def compute_report(
    store: Store,
    guild_id: int,
    kind: ReportKind,
    daterange: DateRange,
    channel: str | None = None,
) -> Report:
    """Compute a report; ranges crossing a month boundary are refused (see ReportError).

    A report over exactly one closed month is read from the month's snapshot when there
    is one (`guildmeter.reports.snapshots`); a range inside a month whose member rows were
    deleted under the retention setting is refused; anything else is computed live.
    """
    from guildmeter.reports.snapshots import refuse_if_retired, snapshot_report

    _case_labels(kind)  # validates kind first
    check_report_range(daterange)
    with store.engine.connect() as conn:  # one checkout: a snapshot read is a few queries
        channel_ids = resolve_channel_on(conn, guild_id, channel)
        found = snapshot_report(conn, guild_id, kind, daterange, channel, channel_ids)
        if found is not None:
            return found
        refuse_if_retired(conn, guild_id, daterange)
    return _live_report(store, guild_id, kind, daterange, channel, channel_ids)


def compute_live_report(
    store: Store,
    guild_id: int,
    kind: ReportKind,
    daterange: DateRange,
    channel: str | None = None,
) -> Report:
    """`compute_report` from the hourly rows, never from a snapshot."""
    _case_labels(kind)
    check_report_range(daterange)
    channel_ids = resolve_channel(store, guild_id, channel)
    return _live_report(store, guild_id, kind, daterange, channel, channel_ids)


def _live_report(
    store: Store,
    guild_id: int,
    kind: ReportKind,
    daterange: DateRange,
    channel: str | None,
    channel_ids: list[int] | None,
) -> Report:
    with store.engine.connect() as conn:
        part = channel_parts(conn, store, guild_id, kind, daterange, channel_ids)
        server = server_part(conn, guild_id, kind, daterange)
    return assemble_report(
        kind, guild_id, report_channel_name(channel, channel_ids), daterange,
        part.get(None, ChannelPart()), server,
    )  # fmt: skip


def report_channel_name(channel: str | None, channel_ids: list[int] | None) -> str:
    return "all" if channel_ids is None else (channel or "").strip().removeprefix("#")


def assemble_report(
    kind: ReportKind,
    guild_id: int,
    channel_name: str,
    daterange: DateRange,
    part: ChannelPart,
    server: ServerPart,
) -> Report:
    """The report's rows from its parts (live or from a snapshot: the same arithmetic)."""
    sums = dict(server.sums)
    sums.update(part.nobody)  # different events: messages and voice, joins and parts
    rows = [
        _row(
            label,
            index,
            part.users,
            sums,
            server.totals,
            members_collected=index not in server.uncollected,
        )
        for index, label in enumerate(_case_labels(kind))
    ]
    return Report(kind, guild_id, channel_name, daterange, rows)


def case_filters(kind: ReportKind, hour: Any, daterange: DateRange) -> list[ColumnElement[bool]]:
    """One condition per case on a bucket column (empty for full), in local time.

    Each case's condition is an OR over the range's DST runs of "in this run and the
    local hour (bucket + the run's shift) falls in the case": a comparison per case per
    row, no CASE expression.
    """
    if kind == "full":
        return []
    runs = daterange.calendar.local_segments(daterange.start_hour, daterange.end_hour) or [
        (daterange.start_hour, daterange.end_hour, 0)
    ]
    count = 7 if kind == "weekday" else 24

    def case_of(local: Any) -> Any:
        if kind == "weekday":
            return (local // 24 + 3) % 7  # 1970-01-01 was a Thursday (3)
        return local % 24

    filters = []
    for index in range(count):
        terms = []
        for run_start, run_stop, delta in runs:
            local = hour if delta == 0 else hour + delta
            term = case_of(local) == index
            if len(runs) > 1:
                term = and_(hour >= run_start, hour < run_stop, term)
            terms.append(term)
        filters.append(terms[0] if len(terms) == 1 else or_(*terms))
    return filters


def channel_parts(
    conn: Connection,
    store: Store,
    guild_id: int,
    kind: ReportKind,
    daterange: DateRange,
    channel_ids: list[int] | None,
    *,
    by_channel: bool = False,
) -> dict[int | None, ChannelPart]:
    """The channel part of a report: of ``channel_ids`` (None: all) under key None, or,
    ``by_channel``, of every channel with counts under its id (one pass for a snapshot).

    Per-user sums come from one grouped query per member (in index order, no sort for a
    whole-server report), with one filtered sum per case: each member's row carries their
    sum in every case, and the outer query counts, sums and squares them per case.
    """
    act = schema.activity
    in_range = and_(
        act.c.guild_id == guild_id,
        act.c.hour >= daterange.start_hour,
        act.c.hour < daterange.end_hour,
    )
    per_user_filter = [
        act.c.event.in_([int(EventKind.MSG), int(EventKind.VOICE)]),
        act.c.member_id != 0,  # counts for nobody: a month kept as aggregates only
    ]
    if store.dialect == "sqlite":
        # Members belong to one month: seeking the month's member ids lets SQLite read each
        # member's rows in order (index ix_activity_member) instead of sorting them all.
        # PostgreSQL hash-aggregates instead, and the semi-join would only cost it.
        mem = schema.members
        per_user_filter.append(
            act.c.member_id.in_(
                select(mem.c.id).where(
                    mem.c.guild_id == guild_id, mem.c.month == daterange.months[0]
                )
            )
        )
    channel_filter = [] if channel_ids is None else [act.c.channel_id.in_(channel_ids)]
    per_user_filter += channel_filter
    channel_col = [act.c.channel_id] if by_channel else []
    case = case_expression(kind, act.c.hour, daterange).label("c")
    runs = daterange.calendar.local_segments(daterange.start_hour, daterange.end_hour)
    if kind != "full" and len(runs) > 1:
        # Cases over two DST runs: a comparison per case per run per row costs more than one
        # CASE and a sort, so this rare range (one with a DST change) groups by case.
        grouped = (
            select(
                act.c.event, *channel_col, case, act.c.member_id, func.sum(act.c.count).label("s")
            )
            .where(in_range, *per_user_filter)
            .group_by(act.c.event, *channel_col, act.c.member_id, case)
            .subquery()
        )
        outer_channel = [grouped.c.channel_id] if by_channel else []
        user_stats = select(
            grouped.c.event,
            *outer_channel,
            grouped.c.c,
            func.count(),
            func.sum(grouped.c.s),
            func.sum(grouped.c.s * grouped.c.s),
        ).group_by(grouped.c.event, *outer_channel, grouped.c.c)
        pivoted = False
    else:
        filters = case_filters(kind, act.c.hour, daterange)
        sums = (
            [func.sum(act.c.count).filter(f).label(f"s{i}") for i, f in enumerate(filters)]
            if filters
            else [func.sum(act.c.count).label("s0")]
        )
        per_user = (
            select(act.c.event, *channel_col, act.c.member_id, *sums)
            .where(in_range, *per_user_filter)
            .group_by(act.c.event, *channel_col, act.c.member_id)
            .subquery()
        )
        outer_channel = [per_user.c.channel_id] if by_channel else []
        columns = []
        for i in range(len(sums)):
            s = per_user.c[f"s{i}"]
            columns += [func.count(s), func.sum(s), func.sum(s * s)]
        user_stats = select(per_user.c.event, *outer_channel, *columns).group_by(
            per_user.c.event, *outer_channel
        )
        pivoted = True
    by_case = [] if kind == "full" else [case]  # never group by a constant
    for_nobody = (
        select(act.c.event, *channel_col, case, func.sum(act.c.count).label("total"))
        .where(
            in_range,
            act.c.event.in_([int(EventKind.MSG), int(EventKind.VOICE)]),
            act.c.member_id == 0,
            *channel_filter,
        )
        .group_by(act.c.event, *channel_col, *by_case)
    )
    parts: dict[int | None, ChannelPart] = {}

    def part_of(row: Any) -> ChannelPart:
        key = int(row.channel_id) if by_channel else None
        found = parts.get(key)
        if found is None:
            found = parts[key] = ChannelPart()
        return found

    skip = 2 if by_channel else 1
    for row in conn.execute(user_stats):
        users = part_of(row).users
        if not pivoted:
            n, total, squares = row[skip + 1 : skip + 4]
            users[(int(row.event), int(row.c))] = (int(n), int(total), int(squares))
            continue
        for i in range((len(row) - skip) // 3):
            n, total, squares = row[skip + 3 * i : skip + 3 * i + 3]
            if n:
                users[(int(row.event), i)] = (int(n), int(total), int(squares))
    for row in conn.execute(for_nobody):
        part_of(row).nobody[(int(row.event), int(row.c))] = int(row.total)
    return parts


def server_part(
    conn: Connection, guild_id: int, kind: ReportKind, daterange: DateRange
) -> ServerPart:
    """Joins, parts, member totals and uncollected hours of the range (server-wide)."""
    act = schema.activity
    case = case_expression(kind, act.c.hour, daterange).label("c")
    by_case = [] if kind == "full" else [case]
    in_range = and_(
        act.c.guild_id == guild_id,
        act.c.hour >= daterange.start_hour,
        act.c.hour < daterange.end_hour,
    )
    server_wide = (
        select(act.c.event, case, func.sum(act.c.count).label("total"))
        .where(in_range, act.c.event.in_([int(EventKind.JOIN), int(EventKind.PART)]))
        .group_by(act.c.event, *by_case)
    )
    ranked = (
        select(
            case,
            act.c.count,
            func.row_number()
            .over(partition_by=by_case or None, order_by=act.c.hour.desc())
            .label("rank"),
        )
        .where(in_range, act.c.event == int(EventKind.TOTAL_USERS))
        .subquery()
    )
    latest_totals = select(ranked.c.c, ranked.c["count"]).where(ranked.c.rank == 1)
    gaps = uncollected_hours
    members_uncollected = (
        select(case_expression(kind, gaps.c.hour).label("c"))
        .where(
            gaps.c.guild_id == guild_id,
            gaps.c.statistic == MEMBER_EVENTS,
            gaps.c.hour >= daterange.start_hour,
            gaps.c.hour < daterange.end_hour,
        )
        .distinct()
    )
    sums = {(int(row.event), int(row.c)): int(row.total) for row in conn.execute(server_wide)}
    totals = {int(row.c): int(row[1]) for row in conn.execute(latest_totals)}
    uncollected = frozenset(int(c) for c in conn.scalars(members_uncollected))
    return ServerPart(sums, totals, uncollected)


def _row(
    label: str,
    case: int,
    stats: dict[tuple[int, int], tuple[int, int, int]],
    sums: dict[tuple[int, int], int],
    totals: dict[int, int],
    *,
    members_collected: bool = True,
) -> ReportRow:
    n_msg, messages, msg_squares = stats.get((int(EventKind.MSG), case), (0, 0, 0))
    n_voice, voice_s, voice_squares = stats.get((int(EventKind.VOICE), case), (0, 0, 0))
    # Counts for nobody (a month kept as aggregates only) add to totals, not to users.
    nobody_msg = sums.get((int(EventKind.MSG), case), 0)
    nobody_voice = sums.get((int(EventKind.VOICE), case), 0)
    return ReportRow(
        case=label,
        total_users=totals.get(case, 0),
        active_users=n_msg,
        voice_users=n_voice,
        joins=sums.get((int(EventKind.JOIN), case), 0) if members_collected else None,
        parts=sums.get((int(EventKind.PART), case), 0) if members_collected else None,
        messages=messages + nobody_msg,
        messages_per_user=messages / n_msg if n_msg else 0.0,
        messages_per_user_stdev=_sample_stdev(n_msg, messages, msg_squares),
        voice_man_hours=(voice_s + nobody_voice) / 3600,
        voice_hours_per_user=voice_s / 3600 / n_voice if n_voice else 0.0,
        voice_hours_per_user_stdev=_sample_stdev(n_voice, voice_s, voice_squares) / 3600,
    )


def _sample_stdev(n: int, total: int, squares: int) -> float:
    """Sample (n-1) standard deviation from count, sum and sum of squares; exact until sqrt."""
    if n < 2:
        return 0.0
    return math.sqrt(max(0, n * squares - total * total) / (n * (n - 1)))


def report_table(report: Report) -> Sequence[Sequence[Any]]:
    """Header and rows as plain values (CSV and text rendering share it)."""
    header = [title for _, title in REPORT_COLUMNS]
    body = [[getattr(row, key) for key, _ in REPORT_COLUMNS] for row in report.rows]
    return [header, *body]
