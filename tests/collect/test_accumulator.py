from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from guildmeter.errors import InvalidEventError
from guildmeter.events import EventKind
from guildmeter.timeutil import hour_index

from tests.collect.helpers import ready_accumulator, settle, totals_by_event

T = datetime(2026, 5, 17, 14, 25, tzinfo=UTC)


def test_counts_per_hour_user_and_channel() -> None:
    acc, keyring, keys = ready_accumulator()
    for _ in range(3):
        acc.message(1, 10, 500, T)
    acc.message(1, 11, 500, T)
    acc.message(1, 10, 501, T + timedelta(hours=1))
    batch = settle(acc, keyring, keys)
    by_channel_hour = {(k[1], k[4]): v for k, v in batch.counts.items()}
    assert by_channel_hour == {
        (hour_index(T), 10): 3,
        (hour_index(T), 11): 1,
        (hour_index(T) + 1, 10): 1,
    }
    labels = {k[3] for k in batch.counts}
    assert len(labels) == 2 and all(label.startswith("h$") for label in labels)


def test_events_wait_for_their_key_and_nothing_is_lost() -> None:
    acc, keyring, keys = ready_accumulator()
    acc.message(1, 10, 500, T)
    assert acc.keys_needed() == {(1, 202605)}
    assert not acc.drain().counts  # nothing resolved yet, nothing lost either
    acc.message(1, 10, 500, T)
    batch = settle(acc, keyring, keys)
    assert sum(batch.counts.values()) == 2


def test_member_total_keeps_the_latest_value_in_the_hour() -> None:
    acc, keyring, keys = ready_accumulator()
    acc.member_total(1, 120, T)
    acc.member_total(1, 118, T + timedelta(minutes=5))
    acc.member_total(1, 130, T + timedelta(hours=1))
    batch = settle(acc, keyring, keys)
    totals = sorted((k[1], v) for k, v in batch.counts.items() if k[2] == EventKind.TOTAL_USERS)
    assert totals == [(hour_index(T), 118), (hour_index(T) + 1, 130)]


def test_bots_and_ignored_users_and_channels_are_not_counted() -> None:
    acc, keyring, keys = ready_accumulator(ignored_users={666}, ignored_channels={13})
    acc.message(1, 10, 500, T, bot=True)
    acc.message(1, 10, 666, T)
    acc.message(1, 13, 500, T)
    acc.join(1, 777, T, bot=True)
    acc.part(1, 666, T)
    acc.message(1, 10, 500, T)
    assert totals_by_event(settle(acc, keyring, keys)) == {EventKind.MSG: 1}


def test_joins_and_parts_are_server_wide() -> None:
    acc, keyring, keys = ready_accumulator()
    acc.join(1, 500, T)
    acc.part(1, 500, T)
    batch = settle(acc, keyring, keys)
    assert {k[4] for k in batch.counts} == {0}
    assert totals_by_event(batch) == {EventKind.JOIN: 1, EventKind.PART: 1}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda acc: acc.add("reaction", 1, 10, 500, T), "unknown event kind 'reaction'"),
        (lambda acc: acc.add("msg", 1, 10, 500, T, -1), "cannot be negative"),
        (lambda acc: acc.member_total(1, -5, T), "cannot be negative"),
        (lambda acc: acc.message(1, 10, 500, datetime(2026, 1, 1)), "naive datetime"),
    ],
)
def test_bad_input_gets_a_clear_error_and_changes_nothing(call: object, message: str) -> None:
    acc, keyring, keys = ready_accumulator()
    acc.message(1, 10, 500, T)
    with pytest.raises(InvalidEventError, match=message):
        call(acc)  # type: ignore[operator]
    assert sum(settle(acc, keyring, keys).counts.values()) == 1


def test_generic_add_accepts_event_names() -> None:
    acc, keyring, keys = ready_accumulator()
    acc.add("MSG", 1, 10, 500, T, 4)
    acc.add(EventKind.VOICE, 1, 20, 500, T, 60)
    acc.add("total_users", 1, 0, 0, T, 99)
    assert totals_by_event(settle(acc, keyring, keys)) == {
        EventKind.MSG: 4,
        EventKind.VOICE: 60,
        EventKind.TOTAL_USERS: 99,
    }


def test_a_clock_that_goes_backwards_still_counts_each_event_once() -> None:
    acc, keyring, keys = ready_accumulator()
    acc.message(1, 10, 500, T)
    acc.message(1, 10, 500, T - timedelta(hours=3))
    assert sum(settle(acc, keyring, keys).counts.values()) == 2


def test_the_listener_fast_path_counts_like_message() -> None:
    from guildmeter.ext.cog import hour_of_snowflake

    snowflake = (int(T.timestamp() * 1000) - 1_420_070_400_000) << 22 | 77
    assert hour_of_snowflake(snowflake) == hour_index(T)
    fast, fast_ring, fast_keys = ready_accumulator(ignored_channels={12})
    slow, slow_ring, slow_keys = ready_accumulator(ignored_channels={12})
    for acc in (fast, slow):  # before and after the key is loaded: both paths
        ring, keys = (fast_ring, fast_keys) if acc is fast else (slow_ring, slow_keys)
        for channel in (10, 11, 12):
            if acc is fast:
                acc.message_at_hour(1, channel, 500, hour_of_snowflake(snowflake))
            else:
                acc.message(1, channel, 500, T)
        settle(acc, ring, keys)
    fast.message_at_hour(1, 10, 500, hour_of_snowflake(snowflake))
    slow.message(1, 10, 500, T)
    assert (
        {(k[1], k[4]): v for k, v in settle(fast, fast_ring, fast_keys).counts.items()}
        == {(k[1], k[4]): v for k, v in settle(slow, slow_ring, slow_keys).counts.items()}
        == {(hour_index(T), 10): 1}
    )
