"""The tables, as SQLAlchemy Core objects shared by the store and the reports.

Times are hour buckets (``hour``: for a UTC guild whole UTC hours since the epoch, for
others the local hours of `guildmeter.zones`) and months are the guild's local ``YYYYMM``.
Users appear only as rows of ``members``: one row per
pseudonym (or, after month-end, anonymous token) per guild and month; activity rows point
at it by integer id, so month-end anonymisation rewrites one small table and never
touches a count.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "activity",
    "activity_by_member",
    "channels",
    "flush_log",
    "flush_log_by_time",
    "guild_keys",
    "guild_settings",
    "guild_timezones",
    "imports",
    "members",
    "metadata",
    "monthly_posts",
    "schema_migrations",
    "usage_activity",
    "usage_commands",
    "usage_daily_commands",
    "usage_daily_generations",
    "usage_daily_latency",
    "usage_daily_users",
    "usage_generations",
    "usage_tables",
]

metadata = MetaData()

#: An integer that is SQLite's rowid alias there and a 64-bit identity on PostgreSQL.
_RowId = Integer().with_variant(BigInteger(), "postgresql")

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

guild_keys = Table(
    "guild_keys",
    metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("month", Integer, nullable=False),
    # NULL once the month is anonymised: the key is destroyed, never shown to anyone.
    Column("key", LargeBinary, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("anonymised_at", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("guild_id", "month"),
)

members = Table(
    "members",
    metadata,
    Column("id", _RowId, primary_key=True, autoincrement=True),
    Column("guild_id", BigInteger, nullable=False),
    Column("month", Integer, nullable=False),
    # "h$…" keyed pseudonym during the month, "uYYYYMM$…" random token afterwards.
    Column("label", String(128), nullable=False),
    UniqueConstraint("guild_id", "month", "label", name="uq_members_guild_month_label"),
)

activity = Table(
    "activity",
    metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("event", SmallInteger, nullable=False),
    Column("hour", Integer, nullable=False),
    Column("channel_id", BigInteger, nullable=False),  # 0: server-wide
    Column("member_id", BigInteger, nullable=False),  # 0: nobody (member totals)
    Column("count", BigInteger, nullable=False),
    # Reports filter on guild, event and an hour range: that is the clustering order.
    PrimaryKeyConstraint("guild_id", "event", "hour", "channel_id", "member_id"),
    sqlite_with_rowid=False,
)

#: Per-user report sums read each member's rows in order (see migration 0003).
activity_by_member = Index(
    "ix_activity_member",
    activity.c.guild_id,
    activity.c.event,
    activity.c.member_id,
    activity.c.hour,
    activity.c.channel_id,
    activity.c.count,
)

channels = Table(
    "channels",
    metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("channel_id", BigInteger, nullable=False),
    Column("name", String(200), nullable=False),
    PrimaryKeyConstraint("guild_id", "channel_id"),
)

flush_log = Table(
    "flush_log",
    metadata,
    Column("batch_id", String(32), primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

flush_log_by_time = Index("ix_flush_log_applied_at", flush_log.c.applied_at)

imports = Table(
    "imports",
    metadata,
    Column("guild_id", BigInteger, nullable=False),
    # SHA-256 of the file's bytes: the same file imported twice is recognised and skipped.
    Column("fingerprint", String(64), nullable=False),
    Column("filename", String(500), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("guild_id", "fingerprint"),
)

guild_settings = Table(
    "guild_settings",
    metadata,
    Column("guild_id", BigInteger, nullable=False),
    # "mod_channel", "mod_role", "manager_role" (sets) or "report_channel" (one value).
    Column("setting", String(32), nullable=False),
    Column("value", BigInteger, nullable=False),
    PrimaryKeyConstraint("guild_id", "setting", "value"),
)

#: A guild's timezone from a statistics month on (issue 12); no row: the configured default.
guild_timezones = Table(
    "guild_timezones",
    metadata,
    Column("guild_id", BigInteger, nullable=False),
    # YYYYMM of the first month the zone governs; 0 for "since the beginning".
    Column("from_month", Integer, nullable=False),
    Column("zone", String(64), nullable=False),
    PrimaryKeyConstraint("guild_id", "from_month"),
)

monthly_posts = Table(
    "monthly_posts",
    metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("month", Integer, nullable=False),
    # Claimed before posting (so two processes never both post), then marked posted.
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("posted_at", DateTime(timezone=True), nullable=True),
    Column("channel_id", BigInteger, nullable=False),
    PrimaryKeyConstraint("guild_id", "month"),
)

# -- bot-usage analytics (the seed's command usage, generation stats, user activity and
# daily summaries). ``day`` is whole UTC days since the epoch; users are ``members`` rows,
# exactly like the activity statistics, so month-end anonymisation covers them too.
# Guild 0 holds what happened in direct messages.

usage_commands = Table(
    "usage_commands",
    metadata,
    Column("id", _RowId, primary_key=True, autoincrement=True),
    Column("guild_id", BigInteger, nullable=False),
    Column("day", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("channel_id", BigInteger, nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("command", String(100), nullable=False),
    Column("kind", String(16), nullable=False),  # prefix, slash, context_menu
    Column("duration_ms", Float, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error", String(100), nullable=True),  # the exception's type name
    Index("ix_usage_commands_guild_day", "guild_id", "day"),
)

usage_generations = Table(
    "usage_generations",
    metadata,
    Column("id", _RowId, primary_key=True, autoincrement=True),
    Column("guild_id", BigInteger, nullable=False),
    Column("day", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("prompt", Text, nullable=True),  # only when the owner enables store_prompts
    Column("resolution", String(32), nullable=False),
    Column("loras", Text, nullable=False),  # comma-separated names, may be empty
    Column("upscale", Float, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("is_video", Boolean, nullable=False),
    Column("generation_type", String(32), nullable=False),
    Index("ix_usage_generations_guild_day", "guild_id", "day"),
)

usage_activity = Table(
    "usage_activity",
    metadata,
    Column("id", _RowId, primary_key=True, autoincrement=True),
    Column("guild_id", BigInteger, nullable=False),
    Column("day", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("action", String(64), nullable=False),
    Column("details", Text, nullable=False),
    Index("ix_usage_activity_guild_day", "guild_id", "day"),
)

usage_daily_commands = Table(
    "usage_daily_commands",
    metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("day", Integer, nullable=False),
    Column("command", String(100), nullable=False),
    Column("uses", BigInteger, nullable=False),
    Column("failures", BigInteger, nullable=False),
    Column("total_ms", Float, nullable=False),
    PrimaryKeyConstraint("guild_id", "day", "command"),
)

#: Latency histogram: bucket b holds durations in (0.1·1.05^(b-1), 0.1·1.05^b] ms.
usage_daily_latency = Table(
    "usage_daily_latency",
    metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("day", Integer, nullable=False),
    Column("command", String(100), nullable=False),
    Column("bucket", SmallInteger, nullable=False),
    Column("uses", BigInteger, nullable=False),
    PrimaryKeyConstraint("guild_id", "day", "command", "bucket"),
    # /stats sums each (command, bucket) over the days: read in that order, no sorting.
    Index("ix_usage_daily_latency_bucket", "guild_id", "command", "bucket", "day", "uses"),
)

usage_daily_generations = Table(
    "usage_daily_generations",
    metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("day", Integer, nullable=False),
    Column("is_video", Boolean, nullable=False),
    Column("generation_type", String(32), nullable=False),
    Column("resolution", String(32), nullable=False),
    Column("jobs", BigInteger, nullable=False),
    Column("total_seconds", Float, nullable=False),
    PrimaryKeyConstraint("guild_id", "day", "is_video", "generation_type", "resolution"),
)

usage_daily_users = Table(
    "usage_daily_users",
    metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("day", Integer, nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("actions", BigInteger, nullable=False),
    PrimaryKeyConstraint("guild_id", "day", "member_id"),
    # Distinct users and their active days: each member's days read together.
    Index("ix_usage_daily_users_member", "guild_id", "member_id", "day"),
)

#: Every usage table, in the order a reset deletes them.
usage_tables = (
    usage_commands,
    usage_generations,
    usage_activity,
    usage_daily_commands,
    usage_daily_latency,
    usage_daily_generations,
    usage_daily_users,
)
