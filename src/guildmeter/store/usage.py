"""Writes of the usage tables: raw rows and the daily summaries, in one transaction.

The daily summaries are what `/stats` reads, so that it stays fast however large the raw
tables grow: per day and command the uses, failures and total time, a latency histogram
(for medians and 95th percentiles), per day and kind the generation jobs and their time,
and per day the members seen; and their roll-ups over months (`guildmeter.store.rollups`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, delete, func, insert, select

from guildmeter.store import rollups, schema
from guildmeter.store.sql import Store
from guildmeter.usage_records import (
    LATENCY_BASE_MS,
    LATENCY_GROWTH,
    ActivityRecord,
    CommandUse,
    Generation,
    LabelledUsage,
    latency_bucket,
)

__all__ = ["LATENCY_BASE_MS", "LATENCY_GROWTH", "LabelledUsage", "UsageStore", "latency_bucket"]


class UsageStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, batch_id: str, items: Sequence[LabelledUsage]) -> None:
        store = self.store
        session: dict[tuple[int, int, str], int] = {}
        with store.transaction() as conn:
            if store.batch_seen(conn, batch_id):
                return
            ids = store.member_ids(
                conn, {(i.record.guild_id, i.hour, i.label) for i in items}, session
            )
            commands: list[dict[str, Any]] = []
            generations: list[dict[str, Any]] = []
            activity: list[dict[str, Any]] = []
            daily_commands: dict[tuple[int, int, str], list[float]] = defaultdict(
                lambda: [0, 0, 0.0]
            )
            latency: Counter[tuple[int, int, str, int]] = Counter()
            daily_generations: dict[tuple[int, int, bool, str, str], list[float]] = defaultdict(
                lambda: [0, 0.0]
            )
            users: Counter[tuple[int, int, int]] = Counter()
            for item in items:
                r = item.record
                calendar = store.calendars.get(r.guild_id)
                member = ids[(r.guild_id, calendar.month_of_bucket(item.hour), item.label)]
                day = calendar.local_hours(item.hour) // 24  # the guild's local day
                users[(r.guild_id, day, member)] += 1
                base = {"guild_id": r.guild_id, "day": day, "at": r.at, "member_id": member}
                if isinstance(r, CommandUse):
                    commands.append(
                        base | {"channel_id": r.channel_id, "command": r.command, "kind": r.kind,
                                "duration_ms": r.duration_ms, "ok": r.ok, "error": r.error}
                    )  # fmt: skip
                    totals = daily_commands[(r.guild_id, day, r.command)]
                    totals[0] += 1
                    totals[1] += 0 if r.ok else 1
                    totals[2] += r.duration_ms
                    latency[(r.guild_id, day, r.command, latency_bucket(r.duration_ms))] += 1
                elif isinstance(r, Generation):
                    generations.append(
                        base | {"prompt": r.prompt, "resolution": r.resolution,
                                "loras": ",".join(r.loras), "upscale": r.upscale,
                                "seconds": r.seconds, "is_video": r.is_video,
                                "generation_type": r.generation_type}
                    )  # fmt: skip
                    key = (r.guild_id, day, r.is_video, r.generation_type, r.resolution)
                    daily_generations[key][0] += 1
                    daily_generations[key][1] += r.seconds
                elif isinstance(r, ActivityRecord):
                    activity.append(base | {"action": r.action, "details": r.details})
            for table, rows in (
                (schema.usage_commands, commands),
                (schema.usage_generations, generations),
                (schema.usage_activity, activity),
            ):
                if rows:
                    conn.execute(insert(table), rows)
            self._add(conn, schema.usage_daily_commands, ["guild_id", "day", "command"],
                      ["uses", "failures", "total_ms"],
                      [(*k, *v) for k, v in sorted(daily_commands.items())])  # fmt: skip
            self._add(conn, schema.usage_daily_latency, ["guild_id", "day", "command", "bucket"],
                      ["uses"], [(*k, v) for k, v in sorted(latency.items())])  # fmt: skip
            self._add(conn, schema.usage_daily_generations,
                      ["guild_id", "day", "is_video", "generation_type", "resolution"],
                      ["jobs", "total_seconds"],
                      [(*k, *v) for k, v in sorted(daily_generations.items())])  # fmt: skip
            self._add(conn, schema.usage_daily_users, ["guild_id", "day", "member_id"],
                      ["actions"], [(*k, v) for k, v in sorted(users.items())])  # fmt: skip
            # The roll-ups /stats reads for long windows (see `guildmeter.store.rollups`).
            periods = rollups.latency_rollup_counts(latency)
            self._add(conn, rollups.latency_rollups,
                      ["guild_id", "level", "first_day", "command", "bucket"], ["uses"],
                      [(*k, v) for k, v in sorted(periods.items())])  # fmt: skip
            masks = rollups.user_masks(users)
            self._add(conn, rollups.monthly_users, ["guild_id", "month_day", "member_id"],
                      ["days_mask"], [(*k, v) for k, v in sorted(masks.items())],
                      combine="|")  # fmt: skip
            store.record_batch(conn, batch_id)
        store.remember_members(session)

    def _add(
        self,
        conn: Connection,
        table: Table,
        keys: list[str],
        values: list[str],
        rows: list[tuple[Any, ...]],
        *,
        combine: str = "+",
    ) -> None:
        """Upsert ``rows`` (keys then values), adding the values to existing rows (or, with
        ``combine="|"``, or-ing bit masks into them)."""
        if not rows:
            return
        statement = self.store.insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=keys,
            set_={name: table.c[name].op(combine)(statement.excluded[name]) for name in values},
        )
        names = keys + values
        conn.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])

    def row_counts(self, guild_id: int | None) -> dict[str, int]:
        """Rows per usage table, for one guild or (None) all of them."""
        out = {}
        with self.store.engine.connect() as conn:
            for table in (*schema.usage_tables, *rollups.rollup_tables):
                query = select(func.count()).select_from(table)
                if guild_id is not None:
                    query = query.where(table.c.guild_id == guild_id)
                out[table.name] = int(conn.execute(query).scalar() or 0)
        return out

    def reset(self, guild_id: int | None) -> dict[str, int]:
        """Delete every usage row of a guild (None: of every guild); rows deleted per table."""
        out = {}
        with self.store.transaction() as conn:
            for table in (*schema.usage_tables, *rollups.rollup_tables):
                statement = delete(table)
                if guild_id is not None:
                    statement = statement.where(table.c.guild_id == guild_id)
                out[table.name] = int(conn.execute(statement).rowcount or 0)
        return out
