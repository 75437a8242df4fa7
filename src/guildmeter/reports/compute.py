"""The seed's reports — full, weekday, hourly — aggregated by the database.

Per-user sums are computed in SQL (GROUP BY member), and so are their count, sum and sum of
squares per case: Python only turns those few numbers per case into means and sample
standard deviations, exactly, with integer arithmetic.

One grouped pass per member reads the range's rows once (on SQLite in the order of
``ix_activity_member``, seeking the span of the month's member ids: no sort; a big month's
in chunks of ids on two connections at once, `guildmeter.reports.chunks`) and carries
the member's sum in every case as filtered sums, one row per member; the outer query
counts, sums and squares them per case. A row's case (local weekday or hour of day) is
integer arithmetic on its bucket, with a CASE over the range's DST runs if it has several.
Each filtered sum costs a test per row, so SQLite's hourly pass packs three hours of day
into one 64-bit sum (21 bits each; `_CaseSums`), checks that no member's total could spill
over a field and that no stored count is 0 (an empty field must mean "no rows"), and
computes the unpacked sums instead when either fails. PostgreSQL scans once for both
events and hash-aggregates, grouping by case when the range has a DST change.

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

from sqlalchemy import ColumnElement, Connection, and_, bindparam, func, literal_column, select
from sqlalchemy import case as sql_case
from sqlalchemy.exc import OperationalError

from guildmeter.errors import GuildmeterError
from guildmeter.events import EventKind
from guildmeter.reports.chunks import member_chunks, run_all
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
    "case_tests",
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
    if kind == "hourly":
        return [str(h) for h in range(24)]
    raise ReportError(f"unknown report type {kind!r}: choose full, weekday or hourly")


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


def _one_shift(daterange: DateRange) -> int | None:
    """The range's one shift between bucket and local hour; None if DST changes in it."""
    runs = daterange.calendar.local_segments(daterange.start_hour, daterange.end_hour)
    return None if len(runs) > 1 else runs[0][2] if runs else 0


def case_tests(kind: ReportKind, hour: Any, daterange: DateRange) -> list[ColumnElement[bool]]:
    """One test per case (weekday or hour of day) on a bucket column, in local time.

    With one shift in the range (UTC, a fixed offset, no DST change) a test is a remainder
    of the bucket itself compared with constants moved by the shift: fewer operations per
    row than the local hour's arithmetic. Weekday ``i`` is a 24-hour window of the week's
    168: (bucket + shift + 72) % 168 // 24 == i, 1970-01-01 (bucket 0) being a Thursday.
    """
    shift = _one_shift(daterange)
    if shift is None:
        case = case_expression(kind, hour, daterange)
        return [case == i for i in range(len(_case_labels(kind)))]
    if kind == "hourly":
        return [hour % 24 == (i - shift) % 24 for i in range(24)]
    tests = []
    for i in range(7):
        first = (24 * i - 72 - shift) % 168
        if first + 23 < 168:
            tests.append((hour % 168).between(first, first + 23))
        else:  # the window wraps round the week: outside the hours it leaves out
            tests.append(~(hour % 168).between(first + 24 - 168, first - 1))
    return tests


#: Per-member case sums packed into one 64-bit sum: `_PACKED` fields of `_FIELD_BITS` bits.
_PACKED, _FIELD_BITS = 3, 21


@dataclass(frozen=True)
class _CaseSums:
    """How a grouped pass per member carries its sums per case (see `channel_parts`).

    Unpacked: one filtered sum per case. Packed (SQLite): case ``i`` is field ``i // groups``
    of sum ``i % groups``, so a row is tested against a third as many filters; the fields
    are exact while every member's total in the range is below 2**_FIELD_BITS and every
    count is at least 1 (a field of 0 then means "no rows"), which the pass checks.
    """

    kind: ReportKind
    cases: int
    packed: bool

    @property
    def groups(self) -> int:
        return -(-self.cases // _PACKED) if self.packed else self.cases

    def inner(self, act: Any, daterange: DateRange) -> list[ColumnElement[Any]]:
        """The per-member aggregates, labelled ``s0``… (and ``tot``, ``low`` when packed)."""
        count = act.c.count
        if self.kind == "full":
            return [func.sum(count).label("s0")]
        if not self.packed:
            tests = case_tests(self.kind, act.c.hour, daterange)
            return [func.sum(count).filter(test).label(f"s{i}") for i, test in enumerate(tests)]
        groups = self.groups
        case = case_expression(self.kind, act.c.hour, daterange)
        shift = _one_shift(daterange)
        if self.kind == "hourly" and 24 % groups == 0 and shift is not None:
            # (bucket + shift) % groups == j: the shift moves the constants, not each row.
            in_group = [act.c.hour % groups == (j - shift) % groups for j in range(groups)]
        else:
            in_group = [case % groups == j for j in range(groups)]
        shifted = count.op("<<")((case // groups) * _FIELD_BITS)
        return [
            func.sum(count).label("tot"),
            func.min(count).label("low"),
            *(func.sum(shifted).filter(test).label(f"s{j}") for j, test in enumerate(in_group)),
        ]

    def fields(self, per_user: Any) -> list[ColumnElement[Any]]:
        """Packed: each case's field of a member's row (NULL when the member has none)."""
        mask = (1 << _FIELD_BITS) - 1
        return [
            func.nullif(
                per_user.c[f"s{i % self.groups}"]
                .op(">>")(_FIELD_BITS * (i // self.groups))
                .op("&")(mask),
                0,
            ).label(f"f{i}")
            for i in range(self.cases)
        ]

    def outer(self, source: Any) -> list[ColumnElement[Any]]:
        """Per case: members with counts, the sum and the sum of squares of their sums."""
        columns: list[ColumnElement[Any]] = []
        if self.packed:
            columns += [func.max(source.c.tot), func.min(source.c.low)]
        for i in range(self.cases):
            s = source.c[f"f{i}" if self.packed else f"s{i}"]
            columns += [func.count(s), func.sum(s), func.sum(s * s)]
        return columns

    def exact(self, row: Sequence[Any]) -> bool:
        """Whether a packed row's fields are exact (see the class docstring)."""
        top, low = row[0], row[1]
        return top is None or (int(top) < 1 << _FIELD_BITS and int(low) >= 1)


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

    Per-user sums come from one grouped query per member (in index order on SQLite, no
    sort for a whole-server report), with its sums per case (`_CaseSums`): each member's
    row carries their sum in every case, and the outer query counts, sums and squares
    them per case.
    """
    act = schema.activity
    in_range = and_(
        act.c.guild_id == guild_id,
        act.c.hour >= daterange.start_hour,
        act.c.hour < daterange.end_hour,
    )
    events = act.c.event.in_([int(EventKind.MSG), int(EventKind.VOICE)])
    channel_filter = [] if channel_ids is None else [act.c.channel_id.in_(channel_ids)]
    per_user_filter: list[ColumnElement[bool]] = [in_range, *channel_filter]
    sqlite = store.dialect == "sqlite"
    member_ranges: list[tuple[int, int]] | None = None
    if sqlite:
        # Members belong to one month: the span of the month's member ids lets SQLite read
        # each member's rows in order (index ix_activity_member) instead of sorting them
        # all, in chunks of that span on two connections (`guildmeter.reports.chunks`);
        # the hour range keeps it exact if other months' ids fall in the span.
        # PostgreSQL hash-aggregates instead, and the filter would only cost it.
        mem = schema.members
        first, last = conn.execute(
            select(func.min(mem.c.id), func.max(mem.c.id)).where(
                mem.c.guild_id == guild_id, mem.c.month == daterange.months[0]
            )
        ).one()
        # 0, nobody (a month kept as aggregates only), is never a member id.
        member_ranges = [] if first is None else member_chunks(max(1, int(first)), int(last))
    else:
        per_user_filter.append(act.c.member_id != 0)
    channel_col = [act.c.channel_id] if by_channel else []
    cases = len(_case_labels(kind))
    sums = _CaseSums(kind, cases, packed=sqlite and kind == "hourly")
    parts: dict[int | None, ChannelPart] = {}

    def part_of(channel_id: int | None) -> ChannelPart:
        found = parts.get(channel_id)
        if found is None:
            found = parts[channel_id] = ChannelPart()
        return found

    runs = daterange.calendar.local_segments(daterange.start_hour, daterange.end_hour)
    if not sqlite and kind != "full" and len(runs) > 1:
        # PostgreSQL, a range with a DST change: a CASE per filtered sum costs it more than
        # one CASE per row and a hash aggregate per (member, case).
        stats: list[_Stat] | None = _grouped_stats(
            conn, kind, act, daterange, per_user_filter, channel_col
        )
    else:
        pivot = _Pivot(conn, store, act, daterange, per_user_filter, channel_col, member_ranges)
        stats = pivot.stats(sums)
        if stats is None:
            stats = pivot.stats(_CaseSums(kind, cases, packed=False))
    assert stats is not None
    for channel_id, event, case_index, n, total, squares in stats:
        part_of(channel_id).users[(event, case_index)] = (n, total, squares)
    case = case_expression(kind, act.c.hour, daterange).label("c")
    by_case = [] if kind == "full" else [case]  # never group by a constant
    for_nobody = (
        select(act.c.event, *channel_col, case, func.sum(act.c.count).label("total"))
        .where(in_range, events, act.c.member_id == 0, *channel_filter)
        .group_by(act.c.event, *channel_col, *by_case)
    )
    for row in conn.execute(for_nobody):
        key = int(row.channel_id) if by_channel else None
        part_of(key).nobody[(int(row.event), int(row.c))] = int(row.total)
    return parts


#: A member-level statistic: (channel or None, event, case, members, sum, sum of squares).
_Stat = tuple[int | None, int, int, int, int, int]


@dataclass(frozen=True)
class _Pivot:
    """Member statistics from one row per member with its sums per case (`_CaseSums`).

    ``member_ranges`` (SQLite): one query per event and chunk of member ids, whose outer
    query, grouped by nothing (or by channel), needs no sort of the members' rows, wide
    with a column per case; the chunks run on two connections (`guildmeter.reports.chunks`)
    and their counts, sums and sums of squares add up. None (PostgreSQL): one scan for
    both events, hash-aggregated.
    """

    conn: Connection
    store: Store
    act: Any
    daterange: DateRange
    per_user_filter: Sequence[ColumnElement[bool]]
    channel_col: list[Any]
    member_ranges: list[tuple[int, int]] | None

    def _statement(self, sums: _CaseSums, chosen: list[int], members: Any) -> Any:
        act, per_event = self.act, self.member_ranges is not None
        keys = [*([] if per_event else [act.c.event]), *self.channel_col]
        per_user = (
            select(*keys, act.c.member_id, *sums.inner(act, self.daterange))
            .where(act.c.event.in_(chosen), *self.per_user_filter, *members)
            .group_by(*keys, act.c.member_id)
            .subquery()
        )
        source = per_user
        if sums.packed:
            # The fields, each computed once per member: the LIMIT keeps SQLite from merging
            # this into the outer query, which would compute each one per use.
            keep = [per_user.c[key.name] for key in keys] + [per_user.c.tot, per_user.c.low]
            source = select(*keep, *sums.fields(per_user)).limit(-1).subquery()
        outer_keys = [source.c[key.name] for key in keys]
        event: list[ColumnElement[Any]] = (
            [literal_column(str(chosen[0])).label("event")] if per_event else []
        )
        return select(*event, *outer_keys, *sums.outer(source)).group_by(*outer_keys)

    def stats(self, sums: _CaseSums) -> list[_Stat] | None:
        """The statistics; None if packed sums were not exact (or overflowed)."""
        events = [int(EventKind.MSG), int(EventKind.VOICE)]
        if self.member_ranges is None:
            queries: list[tuple[Any, dict[str, int]]] = [(self._statement(sums, events, []), {})]
        else:
            # One statement per event (building and compiling one costs milliseconds),
            # executed per chunk with its bounds.
            chunk = self.act.c.member_id.between(bindparam("chunk_first"), bindparam("chunk_last"))
            queries = []
            for event in events:
                statement = self._statement(sums, [event], [chunk])
                queries += [
                    (statement, {"chunk_first": first, "chunk_last": last})
                    for first, last in self.member_ranges
                ]
        try:
            results = run_all(self.store, self.conn, queries)
        except OperationalError as exc:
            if sums.packed and "integer overflow" in str(exc):
                return None  # a member's packed sum overflowed: unpacked sums instead
            raise
        by_key = self.channel_col != []
        skip = 2 if by_key else 1
        merged: dict[tuple[int, int | None], list[int | None]] = {}
        for row in (row for rows in results for row in rows):
            key = (int(row.event), int(row.channel_id) if by_key else None)
            values = [None if v is None else int(v) for v in row[skip:]]
            found = merged.get(key)
            merged[key] = values if found is None else _add(found, values, sums.packed)
        stats: list[_Stat] = []
        for (event, channel_id), values in merged.items():
            if sums.packed:
                if not sums.exact(values):
                    return None
                values = values[2:]
            for i in range(sums.cases):
                n, total, squares = (v or 0 for v in values[3 * i : 3 * i + 3])
                if n:
                    stats.append((channel_id, event, i, n, total, squares))
        return stats


def _add(a: list[int | None], b: list[int | None], packed: bool) -> list[int | None]:
    """Two chunks' statistics of one (event, channel): counts, sums and squares add up;
    packed, the first two are the largest member total and the smallest count."""
    out = [
        None if x is None and y is None else (x or 0) + (y or 0) for x, y in zip(a, b, strict=True)
    ]
    if packed:
        out[0] = max((v for v in (a[0], b[0]) if v is not None), default=None)
        out[1] = min((v for v in (a[1], b[1]) if v is not None), default=None)
    return out


def _grouped_stats(
    conn: Connection,
    kind: ReportKind,
    act: Any,
    daterange: DateRange,
    per_user_filter: Sequence[ColumnElement[bool]],
    channel_col: list[Any],
) -> list[_Stat]:
    """Member statistics from one row per (member, case), grouped by case."""
    case = case_expression(kind, act.c.hour, daterange).label("c")
    grouped = (
        select(act.c.event, *channel_col, case, act.c.member_id, func.sum(act.c.count).label("s"))
        .where(act.c.event.in_([int(EventKind.MSG), int(EventKind.VOICE)]), *per_user_filter)
        .group_by(act.c.event, *channel_col, act.c.member_id, case)
        .subquery()
    )
    outer_channel = [grouped.c.channel_id] if channel_col else []
    user_stats = select(
        grouped.c.event,
        *outer_channel,
        grouped.c.c,
        func.count(),
        func.sum(grouped.c.s),
        func.sum(grouped.c.s * grouped.c.s),
    ).group_by(grouped.c.event, *outer_channel, grouped.c.c)
    return [
        (
            int(row.channel_id) if channel_col else None,
            int(row.event), int(row.c), int(row[-3]), int(row[-2]), int(row[-1]),
        )
        for row in conn.execute(user_stats)
    ]  # fmt: skip


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
