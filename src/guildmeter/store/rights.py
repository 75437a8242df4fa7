"""Storage of members' rights: the opt-out list, and deleting one member's rows (forget).

Like the rest of `store`, nothing here sees a raw user id: opt-outs arrive as keyed
digests and forget requests as the member's pseudonym of a month (computed by
`guildmeter.privacy.rights` from the month's key).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    and_,
    bindparam,
    delete,
    func,
    select,
    update,
)

from guildmeter.events import EventKind
from guildmeter.privacy.anonymize import new_token
from guildmeter.store import rollups, schema, spans, summaries
from guildmeter.store.sql import Store
from guildmeter.store.usage import latency_bucket
from guildmeter.timeutil import utcnow
from guildmeter.zones import UTC_CALENDAR, Calendars, GuildCalendar

__all__ = [
    "MemberRows",
    "RightsStore",
    "collapse_if_aggregates_only",
    "fold_late_counts",
    "member_optouts",
    "optout_keys",
]

#: One random key per guild for opt-out digests; unrelated to the monthly statistics keys.
optout_keys = Table(
    "optout_keys",
    schema.metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("key", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: BLAKE2b(user id, key = the guild's opt-out key): no raw id, no pseudonym, no time.
member_optouts = Table(
    "member_optouts",
    schema.metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("digest", LargeBinary, nullable=False),
    PrimaryKeyConstraint("guild_id", "digest"),
)


@dataclass(frozen=True)
class MemberRows:
    """What one member's pseudonym holds in one guild-month (or what was deleted)."""

    guild_id: int
    month: int
    activity_rows: int = 0
    messages: int = 0
    voice_seconds: int = 0
    joins: int = 0
    parts: int = 0
    usage_records: int = 0

    @property
    def empty(self) -> bool:
        return self.activity_rows == 0 and self.usage_records == 0


_RAW_USAGE = (schema.usage_commands, schema.usage_generations, schema.usage_activity)


class RightsStore:
    """Opt-out list and member deletion over a `Store`'s engine."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- opt-outs (the `OptOutSource` protocol) ---------------------------------------------

    def load_optouts(self) -> dict[int, tuple[bytes, frozenset[bytes]]]:
        keys, outs = optout_keys, member_optouts
        with self.store.transaction() as conn:  # an outage: StoreUnavailableError
            rows = conn.execute(
                select(outs.c.guild_id, outs.c.digest, keys.c.key).join(
                    keys, keys.c.guild_id == outs.c.guild_id
                )
            ).all()
        found: dict[int, tuple[bytes, set[bytes]]] = {}
        for row in rows:
            found.setdefault(int(row.guild_id), (bytes(row.key), set()))[1].add(bytes(row.digest))
        return {guild: (key, frozenset(digests)) for guild, (key, digests) in found.items()}

    def get_or_create_optout_key(self, guild_id: int, candidate: bytes) -> bytes:
        table = optout_keys
        with self.store.transaction() as conn:
            conn.execute(
                self.store.insert(table)
                .values(guild_id=guild_id, key=candidate, created_at=utcnow())
                .on_conflict_do_nothing(index_elements=["guild_id"])
            )
            key = conn.execute(select(table.c.key).where(table.c.guild_id == guild_id)).scalar()
        assert key is not None
        return bytes(key)

    def add_optout(self, guild_id: int, digest: bytes) -> bool:
        table = member_optouts
        with self.store.transaction() as conn:
            added = conn.execute(
                self.store.insert(table)
                .values(guild_id=guild_id, digest=digest)
                .on_conflict_do_nothing(index_elements=["guild_id", "digest"])
                .returning(table.c.guild_id)
            ).first()
        return added is not None

    def remove_optout(self, guild_id: int, digest: bytes) -> bool:
        table = member_optouts
        with self.store.transaction() as conn:
            removed = conn.execute(
                delete(table).where(table.c.guild_id == guild_id, table.c.digest == digest)
            ).rowcount
        return bool(removed)

    # -- forget -------------------------------------------------------------------------------

    def live_keys(self, guild_id: int | None) -> list[tuple[int, int, bytes]]:
        """``(guild, month, key)`` of every month not yet anonymised (a guild, or all)."""
        keys = schema.guild_keys
        query = select(keys.c.guild_id, keys.c.month, keys.c.key).where(
            keys.c.anonymised_at.is_(None), keys.c.key.is_not(None)
        )
        if guild_id is not None:
            query = query.where(keys.c.guild_id == guild_id)
        with self.store.transaction() as conn:
            rows = conn.execute(query.order_by(keys.c.guild_id, keys.c.month)).all()
        return [(int(r.guild_id), int(r.month), bytes(r.key)) for r in rows]

    def anonymised_months(self, guild_id: int | None) -> int:
        """How many guild-months are anonymised (nothing in them links to anyone)."""
        keys = schema.guild_keys
        query = select(func.count()).where(keys.c.anonymised_at.is_not(None))
        if guild_id is not None:
            query = query.where(keys.c.guild_id == guild_id)
        with self.store.transaction() as conn:
            return int(conn.execute(query).scalar() or 0)

    def member_rows(self, guild_id: int, month: int, label: str) -> MemberRows:
        """What deleting this pseudonym's rows would delete (read only)."""
        with self.store.transaction() as conn:
            return self._rows(conn, guild_id, month, label)

    def delete_member(self, guild_id: int, month: int, label: str) -> MemberRows:
        """Delete a pseudonym's activity and usage rows, in one transaction.

        The usage day summaries and their roll-ups are aggregates without members: this
        member's share is subtracted from them, so `/stats` changes by exactly their
        records. The member row itself gets a fresh random token in place of the pseudonym:
        another process that still has the old row's id cached then writes new counts to a
        row nothing links to anyone, rather than to a deleted id.
        """
        with self.store.transaction() as conn:
            # The guild's writers' turn first (`spans.forget_held` takes it): what is read
            # below and subtracted from the summaries is then what is deleted, not rows a
            # concurrent flush adds in between (SQLite reads before a transaction's first
            # write, PostgreSQL each statement, see what is committed at that moment).
            spans.forget_held(conn, [(guild_id, month)])
            found = self._rows(conn, guild_id, month, label)
            member_id = self._member_id(conn, guild_id, month, label)
            if member_id is None:
                return found
            self._subtract_usage_summaries(conn, guild_id, member_id)
            # Out of the day summaries first (while their rows still say what they held).
            summaries.forget_member(conn, self.store.calendars, guild_id, month, member_id)
            for table in (
                schema.activity,
                *_RAW_USAGE,
                schema.usage_daily_users,
                rollups.monthly_users,
            ):
                mine = and_(table.c.guild_id == guild_id, table.c.member_id == member_id)
                conn.execute(delete(table).where(mine))
            conn.execute(
                update(schema.members)
                .where(schema.members.c.id == member_id)
                .values(label=new_token(month))
            )
        self.store.forget_member_ids(guild_id, month, label)
        return found

    def scrub(self, wait_s: float = 30.0) -> bool:
        """Make deleted pseudonyms unrecoverable from the files (as after key destruction).

        SQLite: secure_delete zeroed the freed bytes, the checkpoint empties the WAL.
        PostgreSQL: the members table (where labels live) is rewritten whole, so no dead
        tuple keeps the pseudonym; the other tables hold only integer member ids. Waits at
        most ``wait_s`` for long readers; False: not done yet (call again later).
        """
        return self.store.scrub(wait_s=wait_s, rewrite_members=True)

    # -- helpers ------------------------------------------------------------------------------

    def _member_id(self, conn: Connection, guild_id: int, month: int, label: str) -> int | None:
        mem = schema.members
        found = conn.execute(
            select(mem.c.id).where(
                mem.c.guild_id == guild_id, mem.c.month == month, mem.c.label == label
            )
        ).scalar()
        return None if found is None else int(found)

    def _rows(self, conn: Connection, guild_id: int, month: int, label: str) -> MemberRows:
        member_id = self._member_id(conn, guild_id, month, label)
        if member_id is None:
            return MemberRows(guild_id, month)
        act = schema.activity
        sums: dict[int, tuple[int, int]] = {
            int(row.event): (int(row.n), int(row.total))
            for row in conn.execute(
                select(act.c.event, func.count().label("n"), func.sum(act.c.count).label("total"))
                .where(act.c.guild_id == guild_id, act.c.member_id == member_id)
                .group_by(act.c.event)
            )
        }
        usage = 0
        for table in _RAW_USAGE:
            usage += int(
                conn.execute(
                    select(func.count()).where(
                        table.c.guild_id == guild_id, table.c.member_id == member_id
                    )
                ).scalar()
                or 0
            )

        def total(kind: EventKind) -> int:
            return sums.get(int(kind), (0, 0))[1]

        return MemberRows(
            guild_id,
            month,
            activity_rows=sum(n for n, _ in sums.values()),
            messages=total(EventKind.MSG),
            voice_seconds=total(EventKind.VOICE),
            joins=total(EventKind.JOIN),
            parts=total(EventKind.PART),
            usage_records=usage,
        )

    def _subtract_usage_summaries(self, conn: Connection, guild_id: int, member_id: int) -> None:
        cmd, gen = schema.usage_commands, schema.usage_generations
        uses: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0, 0, 0.0])
        latency: dict[tuple[int, str, int], int] = defaultdict(int)
        for row in conn.execute(
            select(cmd.c.day, cmd.c.command, cmd.c.ok, cmd.c.duration_ms).where(
                cmd.c.guild_id == guild_id, cmd.c.member_id == member_id
            )
        ):
            entry = uses[(int(row.day), row.command)]
            entry[0] += 1
            entry[1] += 0 if row.ok else 1
            entry[2] += float(row.duration_ms)
            latency[(int(row.day), row.command, latency_bucket(float(row.duration_ms)))] += 1
        jobs: dict[tuple[int, bool, str, str], list[float]] = defaultdict(lambda: [0, 0.0])
        for job in conn.execute(
            select(
                gen.c.day, gen.c.is_video, gen.c.generation_type, gen.c.resolution, gen.c.seconds
            ).where(gen.c.guild_id == guild_id, gen.c.member_id == member_id)
        ):
            key = (int(job.day), bool(job.is_video), job.generation_type, job.resolution)
            jobs[key][0] += 1
            jobs[key][1] += float(job.seconds)
        self._subtract(
            conn, guild_id, schema.usage_daily_commands, ["day", "command"],
            ["uses", "failures", "total_ms"], uses,
        )  # fmt: skip
        self._subtract(
            conn, guild_id, schema.usage_daily_latency, ["day", "command", "bucket"], ["uses"],
            {key: [n] for key, n in latency.items()},
        )  # fmt: skip
        periods: dict[tuple[int, int, str, int], list[float]] = defaultdict(lambda: [0])
        for (day, command, bucket), n in latency.items():
            for level, first in rollups.latency_periods(day):
                periods[(level, first, command, bucket)][0] += n
        self._subtract(
            conn, guild_id, rollups.latency_rollups, ["level", "first_day", "command", "bucket"],
            ["uses"], periods,
        )  # fmt: skip
        self._subtract(
            conn, guild_id, schema.usage_daily_generations,
            ["day", "is_video", "generation_type", "resolution"], ["jobs", "total_seconds"], jobs,
        )  # fmt: skip

    def _subtract(
        self,
        conn: Connection,
        guild_id: int,
        table: Table,
        keys: list[str],
        values: list[str],
        amounts: Mapping[tuple[Any, ...], Sequence[float]],
    ) -> None:
        """Subtract per-key amounts from a day summary; rows left at zero are deleted.

        The first value column counts uses (or jobs): zero means the row is gone.
        """
        if not amounts:
            return
        conn.execute(
            update(table)
            .where(table.c.guild_id == guild_id, *(table.c[k] == bindparam(f"k_{k}") for k in keys))
            .values({v: table.c[v] - bindparam(f"d_{v}") for v in values}),
            [
                {f"k_{k}": x for k, x in zip(keys, key, strict=True)}
                | {f"d_{v}": x for v, x in zip(values, amount, strict=True)}
                for key, amount in amounts.items()
            ],
        )
        conn.execute(delete(table).where(table.c.guild_id == guild_id, table.c[values[0]] <= 0))


_COLLAPSE_SQL = (
    "INSERT INTO activity (guild_id, event, hour, channel_id, member_id, count) "
    "SELECT guild_id, event, hour, channel_id, 0, SUM(count) FROM activity "
    "WHERE guild_id = :guild AND event IN ({events}) AND hour >= :start AND hour < :end "
    "{hours}AND member_id <> 0 GROUP BY guild_id, event, hour, channel_id "
    "ON CONFLICT (guild_id, event, hour, channel_id, member_id) "
    "DO UPDATE SET count = activity.count + excluded.count"
)
_DROP_MEMBER_ROWS_SQL = (
    "DELETE FROM activity WHERE guild_id = :guild AND event IN ({events}) "
    "AND hour >= :start AND hour < :end {hours}AND member_id <> 0"
)
#: PostgreSQL: the rows deleted are exactly the rows summed (one statement, one snapshot),
#: so a member row another writer commits meanwhile is never deleted without being counted.
_FOLD_PG_SQL = (
    "WITH moved AS (DELETE FROM activity WHERE guild_id = :guild AND event IN ({events}) "
    "AND hour >= :start AND hour < :end {hours}AND member_id <> 0 "
    "RETURNING guild_id, event, hour, channel_id, count), "
    "folded AS (INSERT INTO activity (guild_id, event, hour, channel_id, member_id, count) "
    "SELECT guild_id, event, hour, channel_id, 0, SUM(count) FROM moved "
    "GROUP BY guild_id, event, hour, channel_id "
    "ON CONFLICT (guild_id, event, hour, channel_id, member_id) "
    "DO UPDATE SET count = activity.count + excluded.count) "
    "SELECT COUNT(*) FROM moved"
)
#: Only some buckets of the month (a writer's fold: the hours it wrote).
_HOURS_SQLITE = "AND hour IN (SELECT value FROM json_each(:hours)) "
_HOURS_PG = "AND hour = ANY(CAST(:hours AS INTEGER[])) "


def collapse_if_aggregates_only(
    conn: Connection,
    guild_id: int,
    month: int,
    calendar: GuildCalendar = UTC_CALENDAR,
    *,
    drop_day_bits: bool = True,
    hours: Collection[int] | None = None,
) -> int:
    """In the anonymisation's transaction (month end) or a writer's (late counts): if the
    guild keeps aggregates only, fold every member's counts of the month into per-(hour,
    channel) totals for nobody.

    Messages, voice seconds, joins and parts stay exact; who did how much is gone, and so
    are the month's per-user figures (active users, means, deviations). Returns the member
    rows folded (0 when the guild keeps member rows).

    ``drop_day_bits``: at month end the month's per-token day bits go too. A writer's fold
    (`fold_late_counts`) keeps them: a late token written again (its process keeps it) must
    find its bits, or the day summaries would count it once more. Member rows (labels) are
    never deleted here: the bits refer to their ids.

    ``hours``: fold only these buckets of the month (a writer's fold: the only hours its
    counts could have left member rows in); None: the whole month.
    """
    from sqlalchemy import text

    from guildmeter.store.settings import AGGREGATES_ONLY
    from guildmeter.timeutil import add_months

    settings = schema.guild_settings
    wanted = conn.execute(
        select(settings.c.value).where(
            settings.c.guild_id == guild_id,
            settings.c.setting == "anonymised_rows",
            settings.c.value == AGGREGATES_ONLY,
        )
    ).first()
    if wanted is None:
        return 0
    # The writers' turn before any row (`summaries.writers_turn`): a flush holding it may be
    # about to write the rows folded here.
    summaries.writers_turn(conn, [guild_id])
    # The month's buckets on the guild's clock (its local month).
    start, end = calendar.first_bucket(month), calendar.first_bucket(add_months(month, 1))
    events = ", ".join(
        str(int(k)) for k in (EventKind.MSG, EventKind.JOIN, EventKind.PART, EventKind.VOICE)
    )
    params: dict[str, Any] = {"guild": guild_id, "start": start, "end": end}
    postgresql = conn.dialect.name == "postgresql"
    only = ""
    if hours is not None:
        only = _HOURS_PG if postgresql else _HOURS_SQLITE
        buckets = sorted(hours)
        params["hours"] = buckets if postgresql else json.dumps(buckets)
    if postgresql:
        query = _FOLD_PG_SQL.format(events=events, hours=only)
        folded = int(conn.execute(text(query), params).scalar() or 0)
    else:  # SQLite: one writer at a time, the two statements see the same rows
        conn.execute(text(_COLLAPSE_SQL.format(events=events, hours=only)), params)
        dropped = conn.execute(
            text(_DROP_MEMBER_ROWS_SQL.format(events=events, hours=only)), params
        )
        folded = int(dropped.rowcount or 0)
    if drop_day_bits:  # at month end: no per-token trace of the month stays either
        spans.keep_dropped(conn, calendar, guild_id, month)  # aggregates: they stay
        summaries.drop_member_days(conn, guild_id, month)
    return folded


def fold_late_counts(
    conn: Connection,
    calendars: Calendars,
    hours: Mapping[tuple[int, int], Collection[int]],
    now_s: int,
) -> int:
    """After a write, in its transaction: fold again the hours it wrote (``hours``: per
    (guild, month), its buckets) of anonymised months of guilds that keep aggregates only,
    so late counts (a late shard's flush, an import, a backfill) never leave member rows
    in such a month. Returns the member rows folded.

    The late tokens' day bits stay (see `collapse_if_aggregates_only`); their members rows
    too. Cheap on the normal flush: only months before the guild's current local month
    can be anonymised, and only those are looked up (none, for a flush of this month). Only
    the written hours are folded: the month's other hours hold no member row since its
    fold at month end (or the write that touched them), so a late write costs what it
    wrote, not the month.
    """
    past: dict[int, list[int]] = defaultdict(list)
    for guild_id, month in hours:
        calendar = calendars.get(guild_id)
        if month < calendar.month_of_bucket(calendar.bucket_of_s(now_s)):
            past[month].append(guild_id)
    if not past:
        return 0
    keys = schema.guild_keys
    anonymised = {
        (int(row[0]), int(row[1]))
        for row in conn.execute(
            select(keys.c.guild_id, keys.c.month).where(
                keys.c.month.in_(sorted(past)),
                keys.c.guild_id.in_(sorted({g for gs in past.values() for g in gs})),
                keys.c.anonymised_at.is_not(None),
            )
        )
    }
    folded = 0
    for guild_id, month in sorted(anonymised):
        if guild_id in past.get(month, ()):
            folded += collapse_if_aggregates_only(
                conn, guild_id, month, calendars.get(guild_id), drop_day_bits=False,
                hours=hours[(guild_id, month)],
            )  # fmt: skip
    return folded
