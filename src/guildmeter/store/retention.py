"""Retention: member-level rows of old months deleted once their snapshots exist.

``retention_months`` (the config's default, or a guild's own ``statsconfig retention``)
says how many months after its end a month keeps its member-level rows: the hourly counts
under each member's token, and the bot-usage records and daily-user rows that carry a
member id. Then, in one transaction: the month's counts are folded into per-hour,
per-channel totals for nobody (messages, voice time, joins and parts stay exact, as with
``statsconfig anonymised aggregates``), the member rows and the month's tokens are
deleted, and the month's marker records when and under which setting
(`guildmeter.store.snapshots`). Whole-month reports of it then answer from its snapshot;
ranges inside it are refused. 0 (the default) keeps everything.

Only an anonymised month with a stored snapshot is ever touched: a month whose snapshot
is missing or stale keeps its rows until a worker has built it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, text, update

from guildmeter.events import EventKind
from guildmeter.store import rollups, schema, spans, summaries
from guildmeter.store.rights import _COLLAPSE_SQL, _DROP_MEMBER_ROWS_SQL
from guildmeter.store.snapshots import Discarded, month_snapshots
from guildmeter.store.sql import Store
from guildmeter.timeutil import add_months, utcnow

if TYPE_CHECKING:
    from guildmeter.store.settings import GuildSettings

__all__ = [
    "PastRetention",
    "RetentionResult",
    "apply_retention",
    "delete_member_rows",
    "describe_retention",
    "retention_due",
]

_MEMBER_USAGE = (
    schema.usage_commands,
    schema.usage_generations,
    schema.usage_activity,
    schema.usage_daily_users,
    rollups.monthly_users,  # /stats' per-member day masks: member-level rows too
)


@dataclass(frozen=True)
class RetentionResult:
    guild_id: int
    month: int
    retention_months: int
    activity_rows_deleted: int
    usage_rows_deleted: int
    members_deleted: int


@dataclass(frozen=True)
class PastRetention:
    """The months of one guild a backfill or an import wrote into after retention had
    deleted their member rows: their counts were discarded (`store.snapshots.Discarded`),
    and every reply says so rather than calling them counted."""

    #: ``month -> retention_months`` its member rows were deleted under.
    months: Mapping[int, int | None]
    #: The month after the last one retention deleted.
    first_held: int | None

    @classmethod
    def of(cls, discarded: Discarded, guild_id: int) -> PastRetention | None:
        months = {m: keep for (g, m), keep in discarded.months.items() if g == guild_id}
        if not months:
            return None
        return cls(months, discarded.first_held.get(guild_id))

    def merged(self, other: PastRetention | None) -> PastRetention:
        if other is None:
            return self
        held = [m for m in (self.first_held, other.first_held) if m is not None]
        return PastRetention({**self.months, **other.months}, max(held) if held else None)

    def describe(self) -> str:
        """Why: the months, the setting they were deleted under, the first month held."""
        months = sorted(self.months)
        first, last = _month(months[0]), _month(months[-1])
        span = f"{first} is" if first == last else f"{first} to {last} are"
        settings = sorted({keep for keep in self.months.values() if keep is not None})
        setting = " or ".join(str(keep) for keep in settings) or "set"
        held = (
            f"; the first month still held is {_month(self.first_held)}"
            if self.first_held is not None
            else ""
        )
        return (
            f"{span} past retention (retention_months = {setting}: member-level rows were "
            f"deleted, reports are final){held}"
        )


def _month(month: int) -> str:
    return f"{month // 100}-{month % 100:02d}"


def retention_due(
    store: Store, now: datetime, default_months: int = 0
) -> list[tuple[int, int, int]]:
    """``(guild, month, retention_months)`` whose member rows are now due for deletion:
    snapshot stored, rows not yet deleted, and the month ended more than the guild's
    ``retention_months`` (its own setting, else ``default_months``; 0 keeps all) ago —
    and months whose deletion was interrupted (it resumes where it stopped).

    Cheap: the small marker table, the settings of the guilds in it, and one index probe
    per month already past retention.
    """
    from guildmeter.store.settings import SettingsStore

    table, members = month_snapshots, schema.members
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                table.c.guild_id, table.c.month, table.c.retention_months,
                table.c.members_deleted_at.is_not(None),
            ).where(table.c.ready_at.is_not(None))
        ).all()  # fmt: skip
        pending = [(int(r[0]), int(r[1])) for r in rows if not r[3]]
        unfinished = [
            (int(r[0]), int(r[1]), int(r[2] or 0))
            for r in rows
            if r[3]
            and conn.execute(
                select(members.c.id)
                .where(members.c.guild_id == r[0], members.c.month == r[1])
                .limit(1)
            ).first()
            is not None
        ]
    due = list(unfinished)
    if pending:
        settings = SettingsStore(store).read_many({g for g, _ in pending})
        for guild_id, month in sorted(pending):
            own = settings[guild_id].retention_months
            keep = default_months if own is None else own
            if keep <= 0:
                continue
            if store.calendars.get(guild_id).month_start(add_months(month, 1 + keep)) <= now:
                due.append((guild_id, month, keep))
    return sorted(due)


def delete_member_rows(
    store: Store, guild_id: int, month: int, retention_months: int
) -> RetentionResult | None:
    """Fold and delete one month's member-level rows; None when the month has no stored
    snapshot (or was done already).

    The month is first marked (from then on late counts for it are discarded), then folded
    one local day per transaction — so a SQLite writer (the flush) never waits on more
    than a day of rows — and last its usage records and tokens go. Interrupted, it leaves
    the month marked with rows left: `retention_due` lists it again and this resumes.
    """
    marks, members = month_snapshots, schema.members
    calendar = store.calendars.get(guild_id)
    start, end = calendar.first_bucket(month), calendar.first_bucket(add_months(month, 1))
    events = ", ".join(
        str(int(k)) for k in (EventKind.MSG, EventKind.JOIN, EventKind.PART, EventKind.VOICE)
    )
    with store.transaction() as conn:
        # A write first: it takes the marker's lock (PostgreSQL) or the write lock (SQLite)
        # before anything is read, so no late count slips in between.
        claimed = conn.execute(
            update(marks)
            .where(
                marks.c.guild_id == guild_id,
                marks.c.month == month,
                marks.c.ready_at.is_not(None),
                marks.c.members_deleted_at.is_(None),
            )
            .values(members_deleted_at=utcnow(), retention_months=retention_months)
        ).rowcount
        if claimed != 1:
            resumed = conn.execute(
                select(marks.c.retention_months).where(
                    marks.c.guild_id == guild_id,
                    marks.c.month == month,
                    marks.c.members_deleted_at.is_not(None),
                )
            ).first()
            left = conn.execute(
                select(members.c.id)
                .where(members.c.guild_id == guild_id, members.c.month == month)
                .limit(1)
            ).first()
            if resumed is None or left is None:
                return None
            retention_months = int(resumed.retention_months or retention_months)
    activity = 0
    for day in range(start, end, 24):
        params = {"guild": guild_id, "start": day, "end": min(day + 24, end)}
        with store.transaction() as conn:
            conn.execute(text(_COLLAPSE_SQL.format(events=events, hours="")), params)
            whole = _DROP_MEMBER_ROWS_SQL.format(events=events, hours="")
            dropped = conn.execute(text(whole), params)
            activity += int(dropped.rowcount or 0)
    with store.transaction() as conn:
        month_members = select(members.c.id).where(
            members.c.guild_id == guild_id, members.c.month == month
        )
        usage = 0
        for table in _MEMBER_USAGE:
            usage += int(
                conn.execute(
                    delete(table).where(
                        table.c.guild_id == guild_id, table.c.member_id.in_(month_members)
                    )
                ).rowcount
                or 0
            )
        spans.keep_dropped(conn, calendar, guild_id, month)  # span aggregates stay
        summaries.drop_member_days(conn, guild_id, month)  # member-level too (day bits)
        gone = conn.execute(
            delete(members).where(members.c.guild_id == guild_id, members.c.month == month)
        ).rowcount
    return RetentionResult(guild_id, month, retention_months, activity, usage, int(gone or 0))


def apply_retention(store: Store, due: list[tuple[int, int, int]]) -> list[RetentionResult]:
    """`delete_member_rows` for each of ``due`` (from `retention_due`)."""
    done = []
    for guild_id, month, keep in due:
        result = delete_member_rows(store, guild_id, month, keep)
        if result is not None:
            done.append(result)
    return done


def describe_retention(settings: GuildSettings, default_months: int = 0) -> str:
    """The retention in force: the guild's own ``retention_months`` or the bot's default."""
    months = default_months if settings.retention_months is None else settings.retention_months
    source = "the bot's default" if settings.retention_months is None else "this server's"
    if months <= 0:
        return f"Retention: everything is kept ({source} setting)"
    return (
        f"Retention: member-level rows of a month are deleted {months} month(s) after it "
        f"ends; its totals and whole-month reports stay ({source} setting)"
    )
