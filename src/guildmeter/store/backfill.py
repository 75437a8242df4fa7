"""What the history backfill keeps: where live counting began, how far back each channel is
counted, and the run of each guild (to resume it, and to hold its months).

Live counting and the backfill share every channel's history at one point: a message whose
id is below the channel's *boundary* is the backfill's, any other is live counting's. The
boundary is the smaller of the guild's live start (the first time a bot counted it) and
the id of the first message counted live in that channel (recorded by the flush before the
counts it covers, so that a message the bot saw live is never below it). Per channel, a
*cursor* says that every message in ``[covered_from, boundary)`` is counted; it is written
in the same transaction as the counts it covers, so an interrupted backfill resumes at the
last commit and never counts a message twice.

A guild's run is claimed by one process at a time (an owner token and a heartbeat). While
it runs, the months it may write are *held*: the live month end leaves them alone, so that
a month it is still counting keeps one key (one pseudonym per member) until the backfill
itself anonymises it. A held month whose run stopped beating (a crash) is released after
`HOLD_SECONDS`, and the live month end then anonymises it as usual.

No table here holds a member or a user id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    and_,
    delete,
    func,
    select,
    text,
    update,
)

from guildmeter.collect.accumulator import CountKey
from guildmeter.errors import GuildmeterError
from guildmeter.store import schema
from guildmeter.store.sql import Store
from guildmeter.timeutil import utcnow

__all__ = [
    "CLAIM_SECONDS",
    "DISCORD_EPOCH_MS",
    "GUILD_WIDE",
    "HOLD_SECONDS",
    "BackfillRun",
    "LiveStarts",
    "RunTakenOver",
    "backfill_cursors",
    "backfill_holds",
    "backfill_runs",
    "claim_run",
    "ensure_guild_start",
    "finish_run",
    "history_lock",
    "live_starts",
    "peek_run",
    "read_cursors",
    "read_live_starts",
    "record_live_starts",
    "release_run",
    "runs_to_resume",
    "snowflake_at",
    "time_of_snowflake",
    "write_progress",
]

DISCORD_EPOCH_MS = 1_420_070_400_000
#: The channel id of guild-wide rows: the guild's live start, and the joins' cursor.
GUILD_WIDE = 0
#: A run whose heartbeat is older than this may be claimed by another process.
CLAIM_SECONDS = 60.0
#: A run's months stay held from the live month end this long after its last heartbeat.
HOLD_SECONDS = 15 * 60.0

RUNNING, DONE, CANCELLED, FAILED = "running", "done", "cancelled", "failed"

live_starts = Table(
    "live_starts",
    schema.metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("channel_id", BigInteger, nullable=False),  # 0: the guild
    Column("first_id", BigInteger, nullable=False),  # a snowflake: messages below it are history
    PrimaryKeyConstraint("guild_id", "channel_id"),
)

backfill_cursors = Table(
    "backfill_cursors",
    schema.metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("channel_id", BigInteger, nullable=False),  # 0: joins
    Column("covered_from", BigInteger, nullable=False),  # a snowflake
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("guild_id", "channel_id"),
)

backfill_runs = Table(
    "backfill_runs",
    schema.metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("target_id", BigInteger, nullable=False),  # count back to this snowflake
    Column("days", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("owner", String(32), nullable=True),  # NULL: nobody runs it now
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    # Where a prefix request was made (a moderator channel): a resumed run reports there.
    Column("reply_channel_id", BigInteger, nullable=True),
)


class RunTakenOver(GuildmeterError):
    """Another process claimed this guild's backfill (ours had stopped beating)."""


def snowflake_at(when: datetime) -> int:
    """The smallest Discord id created at ``when`` (ids below it are older)."""
    return max(0, int(when.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22


def time_of_snowflake(snowflake: int) -> datetime:
    return datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, UTC)


@dataclass(frozen=True)
class LiveStarts:
    """A guild's live start and the first live message per channel (snowflakes)."""

    guild: int | None
    channels: Mapping[int, int]

    def boundary(self, channel_id: int, fallback: int) -> int:
        """Messages below this id are the backfill's to count."""
        found = [x for x in (self.guild, self.channels.get(channel_id)) if x is not None]
        return min(found) if found else fallback


@dataclass(frozen=True)
class BackfillRun:
    guild_id: int
    target_id: int
    days: int
    state: str
    reply_channel_id: int | None
    started_at: datetime


def _aware(when: datetime | None) -> datetime | None:
    """SQLite hands timezone-aware columns back naive (they were stored as UTC)."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


# -- live starts -------------------------------------------------------------------------------


def record_live_starts(store: Store, starts: Mapping[tuple[int, int], int]) -> None:
    """Record ``{(guild, channel): first id}``; an existing row is never moved."""
    if not starts:
        return
    rows = [
        {"guild_id": g, "channel_id": c, "first_id": first}
        for (g, c), first in sorted(starts.items())
    ]
    with store.transaction() as conn:
        conn.execute(
            store.insert(live_starts)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["guild_id", "channel_id"])
        )


def ensure_guild_start(store: Store, guild_id: int, first_id: int) -> int:
    """The guild's live start, recording ``first_id`` as it when none is recorded yet —
    or, when the guild already has counts (written before any live start was recorded: an
    import, another tool), an hour before its first counted bucket, as migration 0014 does
    for guilds counted before the upgrade: a backfill never counts those hours again."""
    with store.transaction() as conn:
        first_bucket = conn.execute(
            select(func.min(schema.activity.c.hour)).where(schema.activity.c.guild_id == guild_id)
        ).scalar()
    if first_bucket is not None:
        start_s = store.calendars.get(guild_id).bucket_start_s(int(first_bucket)) - 3600
        first_id = min(first_id, max(0, start_s * 1000 - DISCORD_EPOCH_MS) << 22)
    record_live_starts(store, {(guild_id, GUILD_WIDE): first_id})
    starts = read_live_starts(store, guild_id)
    assert starts.guild is not None
    return starts.guild


def read_live_starts(store: Store, guild_id: int) -> LiveStarts:
    table = live_starts
    with store.transaction() as conn:
        rows = conn.execute(
            select(table.c.channel_id, table.c.first_id).where(table.c.guild_id == guild_id)
        ).all()
    found = {int(row.channel_id): int(row.first_id) for row in rows}
    return LiveStarts(found.pop(GUILD_WIDE, None), found)


# -- cursors and counts --------------------------------------------------------------------------


def read_cursors(store: Store, guild_id: int) -> dict[int, int]:
    """``{channel: covered_from}`` of a guild (0: the joins)."""
    table = backfill_cursors
    with store.transaction() as conn:
        rows = conn.execute(
            select(table.c.channel_id, table.c.covered_from).where(table.c.guild_id == guild_id)
        ).all()
    return {int(row.channel_id): int(row.covered_from) for row in rows}


def write_progress(
    store: Store,
    guild_id: int,
    owner: str,
    counts: dict[CountKey, int],
    channel_names: dict[tuple[int, int], str],
    cursors: Mapping[int, int],
) -> int:
    """Counts and the cursors they cover, in ONE transaction, through the store's write
    path (`Store.import_session`); the run's heartbeat with them. Returns the rows written.

    `RunTakenOver` (nothing written) when the run is no longer ours.
    """
    now = utcnow()
    with store.import_session(guild_id) as session:
        conn = session.connection
        beat = conn.execute(
            update(backfill_runs)
            .where(backfill_runs.c.guild_id == guild_id, backfill_runs.c.owner == owner)
            .values(heartbeat_at=now)
        )
        if not beat.rowcount:
            raise RunTakenOver("another process took this server's backfill over")
        written = session.add(counts, channel_names) if counts or channel_names else 0
        if cursors:
            stmt = store.insert(backfill_cursors)
            stmt = stmt.on_conflict_do_update(
                index_elements=["guild_id", "channel_id"],
                set_={"covered_from": stmt.excluded.covered_from, "updated_at": now},
            )
            conn.execute(
                stmt,
                [
                    {"guild_id": guild_id, "channel_id": c, "covered_from": x, "updated_at": now}
                    for c, x in sorted(cursors.items())
                ],
            )
    return written


# -- runs ----------------------------------------------------------------------------------------

_HISTORY_LOCK = 7130414  # PostgreSQL advisory lock class (migrations use 7130413)


def history_lock(store: Store, conn: Connection, guild_id: int) -> None:
    """Serialise, inside ``conn``'s transaction, with any other backfill claim or import of
    this guild (`guildmeter.store.overlap`): a PostgreSQL advisory lock, SQLite's write lock
    (a write that changes nothing)."""
    if store.dialect == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:kind, :key)"),
            {"kind": _HISTORY_LOCK, "key": guild_id % 2_147_483_647},
        )
    else:
        conn.execute(delete(backfill_runs).where(backfill_runs.c.guild_id == -1))


def peek_run(
    store: Store, guild_id: int, *, claim_seconds: float = CLAIM_SECONDS
) -> tuple[BackfillRun | None, bool]:
    """The guild's stored run and whether a live process holds it — read only, so that a
    run can ask Discord before it writes anything (`claim_run` decides for good)."""
    table = backfill_runs
    with store.transaction() as conn:
        row = conn.execute(select(table).where(table.c.guild_id == guild_id)).first()
    if row is None:
        return None, False
    beat = _aware(row.heartbeat_at)
    busy = (
        row.owner is not None
        and row.state == RUNNING
        and beat is not None
        and utcnow() - beat < timedelta(seconds=claim_seconds)
    )
    run = BackfillRun(
        guild_id,
        int(row.target_id),
        int(row.days),
        row.state,
        row.reply_channel_id,
        _aware(row.started_at) or utcnow(),
    )
    return run, busy


def claim_run(
    store: Store,
    guild_id: int,
    owner: str,
    *,
    target_id: int | None,
    days: int,
    reply_channel_id: int | None = None,
    claim_seconds: float = CLAIM_SECONDS,
) -> BackfillRun | None:
    """Start (``target_id`` given) or resume (None: the stored run) the guild's backfill.

    None when another process runs it (a heartbeat younger than ``claim_seconds``), or,
    when resuming, when there is no run left to resume. A new target replaces the stored
    one; what earlier runs counted stays counted (their cursors are lower, so channels
    simply stop there).
    """
    table = backfill_runs
    now = utcnow()
    with store.transaction() as conn:
        history_lock(store, conn, guild_id)  # an import of the guild finishes first
        query = select(table).where(table.c.guild_id == guild_id)
        if store.dialect == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is not None and row.owner is not None and row.state == RUNNING:
            beat = _aware(row.heartbeat_at)
            if beat is not None and now - beat < timedelta(seconds=claim_seconds):
                return None
        if target_id is None:
            if row is None or row.state != RUNNING:
                return None
            target_id, days = int(row.target_id), int(row.days)
            reply_channel_id = row.reply_channel_id
        values = {
            "target_id": target_id,
            "days": days,
            "state": RUNNING,
            "owner": owner,
            "heartbeat_at": now,
            "started_at": now,
            "reply_channel_id": reply_channel_id,
        }
        if row is None:
            conn.execute(store.insert(table).values(guild_id=guild_id, **values))
        else:
            conn.execute(update(table).where(table.c.guild_id == guild_id).values(**values))
    return BackfillRun(guild_id, target_id, days, RUNNING, reply_channel_id, now)


def release_run(store: Store, guild_id: int, owner: str) -> None:
    """A clean stop (the bot shuts down): the run stays to be resumed, by anyone, at once."""
    table = backfill_runs
    with store.transaction() as conn:
        conn.execute(
            update(table)
            .where(table.c.guild_id == guild_id, table.c.owner == owner)
            .values(owner=None)
        )


def finish_run(store: Store, guild_id: int, owner: str, state: str) -> None:
    """The run ended (done, cancelled or failed): nothing to resume, no month held."""
    table = backfill_runs
    with store.transaction() as conn:
        conn.execute(
            update(table)
            .where(table.c.guild_id == guild_id, table.c.owner == owner)
            .values(state=state, owner=None, heartbeat_at=utcnow())
        )


def runs_to_resume(store: Store, guild_ids: Iterable[int]) -> list[BackfillRun]:
    """Runs of these guilds that were interrupted (a restart, a crash)."""
    wanted = sorted(set(guild_ids))
    if not wanted:
        return []
    table = backfill_runs
    with store.transaction() as conn:
        rows = conn.execute(
            select(table).where(table.c.state == RUNNING, table.c.guild_id.in_(wanted))
        ).all()
    return [
        BackfillRun(
            int(r.guild_id),
            int(r.target_id),
            int(r.days),
            r.state,
            r.reply_channel_id,
            _aware(r.started_at) or utcnow(),
        )
        for r in rows
    ]


def backfill_holds(store: Store, now: datetime) -> dict[int, int]:
    """``{guild: first month held}``: months (from that one on) a live run may still write.

    A run holds its months while it beats, and `HOLD_SECONDS` after a clean stop or a
    crash (its resume keeps the same keys); then the live month end takes over again.
    """
    table = backfill_runs
    since = now - timedelta(seconds=HOLD_SECONDS)
    with store.transaction() as conn:
        rows = conn.execute(
            select(table.c.guild_id, table.c.target_id).where(
                and_(table.c.state == RUNNING, table.c.heartbeat_at >= since)
            )
        ).all()
    calendars = store.calendars
    return {
        int(row.guild_id): calendars.get(int(row.guild_id)).month_of(
            time_of_snowflake(int(row.target_id))
        )
        for row in rows
    }
