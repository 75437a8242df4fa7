"""What the usage tables keep: times per hour, never a direct-message channel id."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from guildmeter.activity import ActivityStats
from guildmeter.store import Store, schema
from guildmeter.store.migrations import apply_migrations
from guildmeter.usage.tracker import ActivityRecord, Generation

DM_CHANNEL = 987_654_321_987_654_321
GUILD_CHANNEL = 555_000_555_000_555
AT = datetime(2026, 5, 1, 12, 34, 56, 789_000, tzinfo=UTC)


def test_a_dm_channel_id_is_never_kept_and_times_are_per_hour(store: Store) -> None:
    stats = ActivityStats(store)
    usage = stats.usage
    usage.command("draw", guild_id=None, channel_id=DM_CHANNEL, user_id=7, kind="slash",
                  duration_ms=5, ok=True, at=AT)  # fmt: skip
    usage.command("draw", guild_id=1, channel_id=GUILD_CHANNEL, user_id=7, kind="slash",
                  duration_ms=5, ok=True, at=AT)  # fmt: skip
    usage.generation(Generation(1, 7, AT, None, "1024x1024", (), 1.0, 2.0, False, "standard"))
    usage.activity(ActivityRecord(1, 7, AT, "vote", ""))
    assert stats.flush(datetime(2026, 5, 1, 13, tzinfo=UTC)).error is None
    with store.engine.connect() as conn:
        channels = set(conn.scalars(select(schema.usage_commands.c.channel_id)))
        times = {
            *conn.scalars(select(schema.usage_commands.c.at)),
            *conn.scalars(select(schema.usage_generations.c.at)),
            *conn.scalars(select(schema.usage_activity.c.at)),
        }
    assert channels == {0, GUILD_CHANNEL}
    assert {t.replace(tzinfo=UTC) if t.tzinfo is None else t for t in times} == {
        datetime(2026, 5, 1, 12, tzinfo=UTC)
    }


def test_the_dm_channel_id_is_not_in_the_database_bytes(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "dm.db"))
    stats = ActivityStats(store)
    stats.usage.command("help", guild_id=None, channel_id=DM_CHANNEL, user_id=7, kind="prefix",
                        duration_ms=1, ok=True, at=AT)  # fmt: skip
    stats.flush(datetime(2026, 5, 1, 13, tzinfo=UTC))
    store.close()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for encoded in (str(DM_CHANNEL).encode(), DM_CHANNEL.to_bytes(8, "big"),
                    DM_CHANNEL.to_bytes(8, "little")):  # fmt: skip
        assert encoded not in data


def test_the_migration_cleans_rows_written_by_earlier_versions(store: Store) -> None:
    table = schema.usage_commands
    with store.engine.begin() as conn:
        conn.execute(
            table.insert().values(
                guild_id=0,
                day=20574,
                at=AT,
                channel_id=DM_CHANNEL,
                member_id=1,
                command="help",
                kind="prefix",
                duration_ms=1.0,
                ok=True,
                error=None,
            )
        )
        migrations = schema.schema_migrations
        conn.execute(migrations.delete().where(migrations.c.version == 10))
        apply_migrations(conn)
    with store.engine.connect() as conn:
        (row,) = conn.execute(select(table.c.channel_id, table.c.at))
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
    assert row.channel_id == 0
    assert at == datetime(2026, 5, 1, 12, tzinfo=UTC)
