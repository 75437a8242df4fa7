"""Day summaries stay exact under every writer, on every backend (issue 13).

The oracle recomputes each guild's day, month and hour figures in Python from the hourly
rows, with local days taken from each bucket's start on the guild's clock. Distinct users
are counted from every member presence the rows ever showed or a write just wrote (a
presence is kept once seen, so months folded to aggregates only — at month end, or a late
write at once — keep what they had; a forgotten member's presences go with them).
"""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from guildmeter.collect import Batch
from guildmeter.events import EventKind
from guildmeter.store import Store, spans, summaries
from guildmeter.store.rights import RightsStore
from guildmeter.store.settings import AGGREGATES_ONLY, SettingsStore
from guildmeter.store.summaries import WHOLE_GUILD
from guildmeter.zones import GuildCalendar

#: UTC, a half-hour zone, and New York (its DST ends on 1 November 2026, right after the
#: month boundary the window spans).
ZONES = ("UTC", "Asia/Kolkata", "America/New_York")
START_S = int(datetime(2026, 10, 30, tzinfo=UTC).timestamp())
HOURS = 24 * 4
NOW = datetime(2026, 10, 20, tzinfo=UTC)
MSG, JOIN, PART, VOICE, TOTAL = (int(k) for k in EventKind)
_EPOCH_DAY = date(1970, 1, 1)
_guilds = itertools.count(1)

count_keys = st.tuples(
    st.integers(0, len(ZONES) - 1),  # guild
    st.integers(0, HOURS - 1),  # hour of the window
    st.sampled_from([MSG, MSG, VOICE, JOIN, PART, TOTAL]),
    st.integers(0, 5),  # member
    st.sampled_from([10, 11, 12]),  # channel (server-wide events: 0)
)
counts = st.dictionaries(count_keys, st.integers(1, 50), min_size=1, max_size=25)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), counts),
        st.tuples(st.just("import"), counts),
        st.tuples(st.just("anonymise"), st.integers(0, len(ZONES) - 1)),
        st.tuples(st.just("forget"), st.integers(0, len(ZONES) - 1), st.integers(0, 5)),
    ),
    min_size=1,
    max_size=8,
)


@dataclass
class Oracle:
    """What the summaries must hold, from the hourly rows (see the module docstring)."""

    store: Store
    guilds: list[int]
    #: (guild, month, channel, member, event, day) ever seen in the rows.
    seen: set[tuple[int, int, int, int, int, int]] = field(default_factory=set)

    def day(self, calendar: GuildCalendar, bucket: int) -> int:
        return (calendar.bucket_start(bucket).date() - _EPOCH_DAY).days

    def rows(self, guild: int) -> list[tuple[int, int, int, int, int]]:
        with self.store.engine.connect() as conn:
            return [
                (int(h), int(e), int(c), int(m), int(n))
                for h, e, c, m, n in conn.execute(
                    text(
                        "SELECT hour, event, channel_id, member_id, count FROM activity "
                        "WHERE guild_id = :g"
                    ),
                    {"g": guild},
                )
            ]

    def observe(self) -> None:
        for guild in self.guilds:
            calendar = self.store.calendars.get(guild)
            for hour, event, channel, member, _ in self.rows(guild):
                if member and event in (MSG, VOICE):
                    month = calendar.month_of_bucket(hour)
                    self.seen.add((guild, month, channel, member, event, self.day(calendar, hour)))

    def observe_written(self, written: dict[Any, int]) -> None:
        """The presences of counts just written, by their members' ids: a write into an
        anonymised month of an aggregates-only guild folds them at once (no member row
        shows them), but their day bits stay, so the summaries still count them."""
        present = [
            (guild, bucket, event, label, channel)
            for guild, bucket, event, label, channel in written
            if event in (MSG, VOICE) and label
        ]
        with self.store.engine.connect() as conn:  # ids the write made (a pseudonym of an
            # anonymised month: its fresh token's); nothing here is committed
            ids = self.store.member_ids(conn, [(g, b, lbl) for g, b, _, lbl, _ in present], {})
            for guild, bucket, event, label, channel in present:
                calendar = self.store.calendars.get(guild)
                month = calendar.month_of_bucket(bucket)
                member = ids[(guild, month, label)]
                kept = conn.execute(
                    text("SELECT 1 FROM members WHERE id = :i"), {"i": member}
                ).scalar()
                assert kept is not None  # the fold never deletes a late token's members row
                self.seen.add((guild, month, channel, member, event, self.day(calendar, bucket)))

    def forget(self, guild: int, member: int) -> None:
        self.seen = {s for s in self.seen if not (s[0] == guild and s[3] == member)}

    def expected_days(self, guild: int) -> dict[tuple[int, int], tuple[Any, ...]]:
        calendar = self.store.calendars.get(guild)
        sums: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        totals: dict[tuple[int, int], tuple[int, int]] = {}
        for hour, event, channel, _, count in self.rows(guild):
            day = self.day(calendar, hour)
            for key in ((day, channel), (day, WHOLE_GUILD)):
                entry = sums[key]
                if event in (MSG, VOICE, JOIN, PART):
                    entry[(MSG, VOICE, JOIN, PART).index(event)] += count
            for key in ((day, channel), (day, WHOLE_GUILD)):
                if event == TOTAL and (key not in totals or hour > totals[key][0]):
                    totals[key] = (hour, count)
        users: dict[tuple[int, int, int], set[tuple[int, int]]] = defaultdict(set)
        for g, month, channel, member, event, day in self.seen:
            if g == guild:
                for key in ((day, channel, event), (day, WHOLE_GUILD, event)):
                    users[key].add((month, member))
        out = {}
        for (day, channel), (messages, voice, joins, parts) in sums.items():
            total = totals.get((day, channel))
            out[(day, channel)] = (
                messages, voice, len(users[(day, channel, MSG)]),
                len(users[(day, channel, VOICE)]), joins, parts,
                None if total is None else total[1],
            )  # fmt: skip
        return out

    def expected_months(self, guild: int) -> dict[tuple[int, int], tuple[int, int]]:
        users: dict[tuple[int, int, int], set[int]] = defaultdict(set)
        for g, month, channel, member, event, _ in self.seen:
            if g == guild:
                users[(month, channel, event)].add(member)
                users[(month, WHOLE_GUILD, event)].add(member)
        keys = {(m, c) for m, c, _ in users}
        return {(m, c): (len(users[(m, c, MSG)]), len(users[(m, c, VOICE)])) for m, c in keys}

    def check(self) -> None:
        self.observe()
        with self.store.engine.connect() as conn:
            for guild in self.guilds:
                stored = {
                    (int(r[0]), int(r[1])): tuple(None if v is None else int(v) for v in r[2:])
                    for r in conn.execute(
                        text(
                            "SELECT day, channel_id, messages, voice_seconds, active_users, "
                            "voice_users, joins, parts, member_total FROM day_summaries "
                            "WHERE guild_id = :g"
                        ),
                        {"g": guild},
                    )
                }
                assert stored == self.expected_days(guild)
                months = {
                    (int(m), int(c)): (int(a), int(v))
                    for m, c, a, v in conn.execute(
                        text(
                            "SELECT month, channel_id, active_users, voice_users "
                            "FROM month_users WHERE guild_id = :g"
                        ),
                        {"g": guild},
                    )
                }
                expected = self.expected_months(guild)
                assert {k: v for k, v in months.items() if v != (0, 0)} == {
                    k: v for k, v in expected.items() if v != (0, 0)
                }


def _counts(guilds: list[int], store: Store, drawn: dict[Any, int]) -> dict[Any, int]:
    out: dict[Any, int] = {}
    for (g, hour, event, member, channel), count in drawn.items():
        guild = guilds[g]
        bucket = store.calendars.get(guild).bucket_of_s(START_S + hour * 3600 + 1800)
        if event == TOTAL:
            key = (guild, bucket, event, "", 0)
        else:
            where = 0 if event in (JOIN, PART) else channel
            key = (guild, bucket, event, f"h${member:032x}", where)
        out[key] = count
    return out


def _run(store: Store, ops: list[tuple[Any, ...]]) -> None:
    base = next(_guilds) * 10
    guilds = [base + i for i in range(len(ZONES))]
    for guild, zone in zip(guilds, ZONES, strict=True):
        store.set_timezone(guild, zone, NOW)  # no statistics yet: at once
    SettingsStore(store).set_single(guilds[1], "anonymised_rows", AGGREGATES_ONLY)
    oracle = Oracle(store, guilds)
    rights = RightsStore(store)
    batches = itertools.count()
    for op in ops:
        if op[0] == "write":
            written = _counts(guilds, store, op[1])
            store.write_batch(Batch(counts=written, channels={},
                                    batch_id=f"b{base}-{next(batches)}"))  # fmt: skip
            oracle.observe_written(written)
        elif op[0] == "import":
            by_guild: dict[int, dict[Any, int]] = defaultdict(dict)
            for key, value in _counts(guilds, store, op[1]).items():
                by_guild[key[0]][key] = value
            for guild, part in by_guild.items():
                with store.import_session(guild) as session:
                    session.add(part, {})
                oracle.observe_written(part)
        elif op[0] == "anonymise":
            oracle.observe()  # what a fold at month end must keep
            store.anonymise_month(guilds[op[1]], 202610)
        else:
            guild, label = guilds[op[1]], f"h${op[2]:032x}"
            for month in (202610, 202611):
                with store.engine.connect() as conn:
                    member = conn.execute(
                        text("SELECT id FROM members WHERE guild_id = :g AND month = :m "
                             "AND label = :l"), {"g": guild, "m": month, "l": label},
                    ).scalar()  # fmt: skip
                oracle.observe()
                if member is not None:
                    oracle.forget(guild, int(member))
                rights.delete_member(guild, month, label)
        oracle.check()
    for guild in guilds:
        store.delete_guild(guild)
        with store.engine.connect() as conn:
            for table in ("hour_summaries", "member_days", "day_summaries", "month_users"):
                left = conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE guild_id = :g"),
                                    {"g": guild}).scalar()  # fmt: skip
                assert left == 0


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations)
def test_summaries_equal_the_hourly_rows_after_any_writes(
    store_factory: Callable[..., Store], ops: list[tuple[Any, ...]]
) -> None:
    store = _shared_store(store_factory)
    _run(store, ops)


_opened: dict[int, Store] = {}


def _shared_store(store_factory: Callable[..., Store]) -> Store:
    """One store per test run (the factory is the test's): each example takes new guilds."""
    key = id(store_factory)
    if key not in _opened:
        _opened.clear()
        _opened[key] = store_factory()
    return _opened[key]


def _tables(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    with store.engine.connect() as conn:
        return {
            table: sorted(tuple(r) for r in conn.execute(text(f"SELECT * FROM {table}")))
            for table in ("hour_summaries", "member_days", "day_summaries", "month_users")
        }


def test_the_migration_fills_summaries_of_an_existing_database(store: Store) -> None:
    guilds = [next(_guilds) * 10 + i for i in range(len(ZONES))]
    for guild, zone in zip(guilds, ZONES, strict=True):
        store.set_timezone(guild, zone, NOW)
    drawn = {(g, h, e, m, c): 1 + (g + h + m) % 7 for g, h, e, m, c in itertools.product(
        range(3), range(0, HOURS, 5), (MSG, VOICE, JOIN, TOTAL), range(3), (10, 11))}  # fmt: skip
    store.write_batch(Batch(counts=_counts(guilds, store, drawn), channels={}))
    kept = _tables(store)
    assert all(kept.values())
    with store.engine.begin() as conn:  # as before migration 0011
        for table in ("hour_summaries", "member_days", "day_summaries", "month_users"):
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(text("DELETE FROM schema_migrations WHERE version = 11"))
    store.migrate()
    assert _tables(store) == kept
    oracle = Oracle(store, guilds)
    oracle.check()


def test_a_clock_changed_at_once_rebuilds_the_days(store: Store) -> None:
    guild = next(_guilds) * 10
    # Member totals only (no member's activity): a new zone applies at once.
    drawn = {(0, h, TOTAL, 0, 0): 100 + h for h in range(HOURS)}
    store.write_batch(Batch(counts=_counts([guild], store, drawn), channels={}))
    oracle = Oracle(store, [guild])
    oracle.check()
    before = _tables(store)["day_summaries"]
    change = store.set_timezone(guild, "Asia/Kolkata", NOW)
    assert change.from_month is None
    oracle.check()  # the same rows, read as local days of India
    assert _tables(store)["day_summaries"] != before


def test_a_write_split_into_many_statements_counts_every_member_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks of 4 member ids (SQLite): groups of 6 members are split, and a chunk holds
    # parts of several (guild, month, channel) groups and bit patterns.
    monkeypatch.setattr(summaries, "_SQLITE_IDS", 4)
    every = {(g, h, e, m, c): 1 + m for g, h, e, m, c in itertools.product(
        range(3), (0, 30, 60), (MSG, VOICE), range(6), (10, 11))}  # fmt: skip
    some = {key: n for key, n in every.items() if (key[1] + key[3]) % 4 != 1}
    _run(store, [("write", some), ("import", every), ("write", every)])


def test_a_flush_during_a_forget_me_is_counted_once_or_not_at_all(
    store_factory: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (its cached id of the member) writes the member's counts while
    forget-me reads what to subtract: the forget must take the writers' turn first, or it
    deletes rows (and day bits) it never subtracted from the summaries."""
    flusher, forgetter = store_factory(), store_factory()
    guild = next(_guilds) * 10
    member = 3
    first = _counts([guild], flusher, {(0, 2, MSG, member, 10): 2, (0, 5, MSG, 4, 10): 1})
    flusher.write_batch(Batch(counts=first, channels={}, batch_id=f"first-{guild}"))
    later = _counts([guild], flusher, {(0, 2, MSG, member, 10): 5, (0, 40, MSG, member, 11): 1})
    real = summaries.month_first_day
    forgetting = threading.current_thread()
    raced: list[threading.Thread] = []

    def flush() -> None:
        flusher.write_batch(Batch(counts=later, channels={}, batch_id=f"later-{guild}"))

    def between_reads(calendar: GuildCalendar, month: int) -> int:
        # Called by forget_member after it read the member's rows (and by the flush).
        if threading.current_thread() is forgetting and not raced:
            raced.append(threading.Thread(target=flush))
            raced[0].start()
            raced[0].join(2)  # done unless it waits for the forget's turn
        return real(calendar, month)

    monkeypatch.setattr(summaries, "month_first_day", between_reads)
    RightsStore(forgetter).delete_member(guild, 202610, f"h${member:032x}")
    raced[0].join(30)
    assert not raced[0].is_alive()
    Oracle(flusher, [guild]).check()


def test_a_late_flush_during_the_month_end_fold_waits_for_it(
    store_factory: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An "aggregates only" month folded at its end while a late flush writes a row the fold
    has just folded: the fold takes the writers' turn before its rows, as the flush does,
    or each waits for the other (PostgreSQL: "deadlock detected")."""
    flusher, ender = store_factory(), store_factory()
    guild = next(_guilds) * 10
    SettingsStore(ender).set_single(guild, "anonymised_rows", AGGREGATES_ONLY)
    first = _counts([guild], flusher, {(0, 2, MSG, 3, 10): 2, (0, 5, VOICE, 4, 11): 60})
    flusher.write_batch(Batch(counts=first, channels={}, batch_id=f"first-{guild}"))
    late = _counts([guild], flusher, {(0, 2, MSG, 3, 10): 1})
    real = spans.keep_dropped
    ending = threading.current_thread()
    raced: list[threading.Thread] = []
    errors: list[BaseException] = []

    def flush() -> None:
        try:
            flusher.write_batch(Batch(counts=late, channels={}, batch_id=f"late-{guild}"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    def after_the_fold(conn: Any, calendar: GuildCalendar, guild_id: int, month: int) -> None:
        if threading.current_thread() is ending and not raced:
            raced.append(threading.Thread(target=flush))
            raced[0].start()
            raced[0].join(2)  # done unless it waits for the fold's turn
        real(conn, calendar, guild_id, month)

    monkeypatch.setattr(spans, "keep_dropped", after_the_fold)
    ender.anonymise_month(guild, 202610)
    raced[0].join(30)
    assert not raced[0].is_alive() and not errors, errors
    with flusher.engine.connect() as conn:
        total = conn.execute(
            text("SELECT SUM(count) FROM activity WHERE guild_id = :g AND event = :e"),
            {"g": guild, "e": MSG},
        ).scalar()
        members = conn.execute(
            text("SELECT COUNT(*) FROM activity WHERE guild_id = :g AND member_id <> 0"),
            {"g": guild},
        ).scalar()
    assert (total, members) == (3, 0)  # nothing lost, and the late row folded too
