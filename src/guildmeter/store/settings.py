"""Per-guild settings set by commands, and the record of monthly report posts.

Settings are a few ids per guild (moderator channels and roles, the Bot Manager role, the
report channel), read often and written rarely. This module always reads the database:
several processes may share it, and a cache here could not see another's change. The
extension keeps them in memory and refreshes them with every flush (`read_many`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import and_, delete, insert, select, update

from guildmeter.store import schema
from guildmeter.store.sql import Store
from guildmeter.timeutil import utcnow

__all__ = [
    "AGGREGATES_ONLY",
    "DEFAULT_MIN_CELL_USERS",
    "KEEP_MEMBER_ROWS",
    "GuildSettings",
    "MonthlyPosts",
    "SettingName",
    "SettingsStore",
]

SettingName = Literal[
    "mod_channel", "mod_role", "manager_role", "report_channel",
    "min_cell_users", "anonymised_rows", "public_view", "retention_months",
]  # fmt: skip
_SINGLE: frozenset[str] = frozenset(
    {"report_channel", "min_cell_users", "anonymised_rows", "public_view", "retention_months"}
)

#: Members' rights (issue 11): public outputs hide rows with fewer users than this.
DEFAULT_MIN_CELL_USERS = 5
#: ``anonymised_rows`` values: 0 keeps member rows (tokens) of past months, 1 aggregates only.
KEEP_MEMBER_ROWS, AGGREGATES_ONLY = 0, 1


@dataclass(frozen=True)
class GuildSettings:
    mod_channels: frozenset[int] = field(default_factory=frozenset)
    mod_roles: frozenset[int] = field(default_factory=frozenset)
    manager_roles: frozenset[int] = field(default_factory=frozenset)
    report_channel: int | None = None
    min_cell_users: int = DEFAULT_MIN_CELL_USERS
    aggregates_only: bool = False
    #: The dashboard's read-only public page (small cells suppressed) is on.
    public_view: bool = False
    #: Months after its end a month keeps member-level rows (issue 13; 0: all); None: the
    #: configured ``retention_months``.
    retention_months: int | None = None


class SettingsStore:
    """Reads and writes `guild_settings` through a `Store`'s engine."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, guild_id: int) -> GuildSettings:
        """The guild's settings, read from the database."""
        return self.read_many([guild_id])[guild_id]

    read = get

    def read_many(self, guild_ids: Iterable[int]) -> dict[int, GuildSettings]:
        """Settings of several guilds in one query per 500 (every guild asked is answered)."""
        table = schema.guild_settings
        wanted = sorted(set(guild_ids))
        values: dict[int, dict[str, set[int]]] = {g: {} for g in wanted}
        with self.store.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                query = select(table.c.guild_id, table.c.setting, table.c.value).where(
                    table.c.guild_id.in_(chunk)
                )
                for guild_id, setting, value in conn.execute(query):
                    values[int(guild_id)].setdefault(setting, set()).add(int(value))
        return {guild_id: _settings_of(found) for guild_id, found in values.items()}

    def toggle(self, guild_id: int, setting: SettingName, value: int) -> bool:
        """Add ``value`` to a set setting, or remove it if present; True when now present."""
        table = schema.guild_settings
        where = and_(
            table.c.guild_id == guild_id, table.c.setting == setting, table.c.value == value
        )
        with self.store.transaction() as conn:
            removed = conn.execute(delete(table).where(where)).rowcount
            if not removed:
                conn.execute(insert(table).values(guild_id=guild_id, setting=setting, value=value))
        return not removed

    def set_single(self, guild_id: int, setting: SettingName, value: int | None) -> None:
        """Replace a one-value setting (None clears it)."""
        assert setting in _SINGLE
        table = schema.guild_settings
        with self.store.transaction() as conn:
            conn.execute(
                delete(table).where(table.c.guild_id == guild_id, table.c.setting == setting)
            )
            if value is not None:
                conn.execute(insert(table).values(guild_id=guild_id, setting=setting, value=value))


def _settings_of(values: dict[str, set[int]]) -> GuildSettings:
    report = values.get("report_channel")
    return GuildSettings(
        mod_channels=frozenset(values.get("mod_channel", ())),
        mod_roles=frozenset(values.get("mod_role", ())),
        manager_roles=frozenset(values.get("manager_role", ())),
        report_channel=min(report) if report else None,
        min_cell_users=min(values.get("min_cell_users", {DEFAULT_MIN_CELL_USERS})),
        aggregates_only=AGGREGATES_ONLY in values.get("anonymised_rows", set()),
        public_view=1 in values.get("public_view", set()),
        retention_months=min(retention) if (retention := values.get("retention_months")) else None,
    )


class MonthlyPosts:
    """Claims on "post guild G's report for month M", so it happens once across restarts.

    A claim is taken before posting and marked posted after; a failed post releases it so
    a later attempt retries. Two processes racing for one claim: the primary key lets one
    win. A crash between claiming and posting leaves a stale claim, retried after
    ``stale_after``.
    """

    def __init__(self, store: Store, *, stale_after: timedelta = timedelta(hours=1)) -> None:
        self.store = store
        self.stale_after = stale_after

    def claim(self, guild_id: int, month: int, channel_id: int) -> bool:
        table = schema.monthly_posts
        now = utcnow()
        key = and_(table.c.guild_id == guild_id, table.c.month == month)
        with self.store.transaction() as conn:
            conn.execute(
                delete(table).where(
                    key, table.c.posted_at.is_(None), table.c.claimed_at < now - self.stale_after
                )
            )
            inserted = conn.execute(
                self.store.insert(table)
                .values(guild_id=guild_id, month=month, claimed_at=now, channel_id=channel_id)
                .on_conflict_do_nothing(index_elements=["guild_id", "month"])
                .returning(table.c.month)  # rowcount is not reliable for DO NOTHING
            ).first()
        return inserted is not None

    def posted(self, guild_id: int, month: int) -> None:
        table = schema.monthly_posts
        with self.store.transaction() as conn:
            conn.execute(
                update(table)
                .where(table.c.guild_id == guild_id, table.c.month == month)
                .values(posted_at=utcnow())
            )

    def release(self, guild_id: int, month: int) -> None:
        table = schema.monthly_posts
        with self.store.transaction() as conn:
            conn.execute(
                delete(table).where(
                    table.c.guild_id == guild_id,
                    table.c.month == month,
                    table.c.posted_at.is_(None),
                )
            )

    def posted_at(self, guild_id: int, month: int) -> datetime | None:
        table = schema.monthly_posts
        with self.store.engine.connect() as conn:
            found = conn.execute(
                select(table.c.posted_at).where(
                    table.c.guild_id == guild_id, table.c.month == month
                )
            ).scalar()
        return found if isinstance(found, datetime) else None
