from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from guildmeter.collect import VoiceTracker
from guildmeter.events import EventKind
from guildmeter.timeutil import hour_index, month_of_hour

from tests.collect.helpers import ready_accumulator, settle

START = datetime(2026, 1, 31, 22, 0, tzinfo=UTC)


def _voice(batch: object) -> dict[tuple[int, int, str], int]:
    return {
        (k[1], k[4], k[3]): v
        for k, v in batch.counts.items()  # type: ignore[attr-defined]
        if k[2] == EventKind.VOICE
    }


@given(
    start=st.floats(0, 86_400 * 3),
    length=st.floats(0, 86_400 * 40),
    checkpoints=st.lists(st.floats(0, 1), max_size=6),
)
def test_session_pieces_add_up_to_the_session_length(
    start: float, length: float, checkpoints: list[float]
) -> None:
    acc, keyring, keys = ready_accumulator()
    voice = VoiceTracker(acc)
    begin = START + timedelta(seconds=start)
    end = begin + timedelta(seconds=length)
    voice.update(1, 500, 20, begin)
    for fraction in sorted(checkpoints):
        voice.checkpoint(begin + timedelta(seconds=length * fraction))
    voice.update(1, 500, None, end)
    pieces = _voice(settle(acc, keyring, keys))
    expected = math.floor(end.timestamp()) - math.floor(begin.timestamp())
    assert sum(pieces.values()) == expected
    assert all(0 < seconds <= 3600 for seconds in pieces.values())
    assert len(voice) == 0


def test_split_at_hours_and_month_uses_the_new_months_pseudonym() -> None:
    acc, keyring, keys = ready_accumulator()
    voice = VoiceTracker(acc)
    voice.update(1, 500, 20, datetime(2026, 1, 31, 23, 40, tzinfo=UTC))
    voice.update(1, 500, None, datetime(2026, 2, 1, 1, 10, 30, tzinfo=UTC))
    pieces = _voice(settle(acc, keyring, keys))
    by_hour = {hour: seconds for (hour, _, _), seconds in pieces.items()}
    h = hour_index(datetime(2026, 1, 31, 23, tzinfo=UTC))
    assert by_hour == {h: 1200, h + 1: 3600, h + 2: 630}
    months = {month_of_hour(hour): label for (hour, _, label) in pieces}
    assert set(months) == {202601, 202602}
    assert months[202601] != months[202602]


def test_mute_and_deafen_do_not_split_and_a_move_changes_channel() -> None:
    acc, keyring, keys = ready_accumulator()
    voice = VoiceTracker(acc)
    t = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    voice.update(1, 500, 20, t)
    voice.update(1, 500, 20, t + timedelta(minutes=5))  # mute
    voice.update(1, 500, 20, t + timedelta(minutes=6))  # deafen
    voice.update(1, 500, 21, t + timedelta(minutes=10))  # move
    voice.update(1, 500, None, t + timedelta(minutes=25))
    by_channel = {channel: s for (_, channel, _), s in _voice(settle(acc, keyring, keys)).items()}
    assert by_channel == {20: 600, 21: 900}


def test_bots_and_ignored_channels_count_no_voice() -> None:
    acc, keyring, keys = ready_accumulator(ignored_channels={99})
    voice = VoiceTracker(acc)
    t = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    voice.update(1, 500, 20, t, bot=True)
    voice.update(1, 501, 99, t)  # e.g. the AFK channel
    voice.update(1, 501, 20, t + timedelta(minutes=1))
    voice.close_all(t + timedelta(minutes=3))
    assert sum(_voice(settle(acc, keyring, keys)).values()) == 120


def test_rebuild_after_restart_loses_nothing_and_invents_nothing() -> None:
    t = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    # A fresh process (restart) finds two people in voice: they count from now on.
    acc, keyring, keys = ready_accumulator()
    voice = VoiceTracker(acc)
    voice.rebuild(1, {500: 20, 501: 21}, t)
    voice.update(1, 500, None, t + timedelta(minutes=2))
    voice.close_all(t + timedelta(minutes=5))
    assert sum(_voice(settle(acc, keyring, keys)).values()) == 120 + 300


def test_rebuild_on_resume_closes_vanished_sessions_when_we_lost_sight() -> None:
    t = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    acc, keyring, keys = ready_accumulator()
    voice = VoiceTracker(acc)
    voice.update(1, 500, 20, t)
    voice.update(1, 501, 20, t)
    lost = t + timedelta(minutes=10)
    # Resumed 5 minutes later: 500 left meanwhile, 501 moved, 502 arrived.
    voice.rebuild(1, {501: 21, 502: 20}, lost + timedelta(minutes=5), lost_since=lost)
    assert voice.in_voice(1) == {501: 21, 502: 20}
    voice.close_all(lost + timedelta(minutes=6))
    pieces = _voice(settle(acc, keyring, keys))
    assert sum(pieces.values()) == 600 + 900 + 60 + 60


def test_a_clock_going_backwards_credits_nothing_twice() -> None:
    acc, keyring, keys = ready_accumulator()
    voice = VoiceTracker(acc)
    t = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    voice.update(1, 500, 20, t)
    voice.checkpoint(t + timedelta(minutes=10))
    voice.checkpoint(t + timedelta(minutes=4))  # clock stepped back
    voice.update(1, 500, None, t + timedelta(minutes=12))
    assert sum(_voice(settle(acc, keyring, keys)).values()) == 720


LOCAL_ZONES = ["Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "America/St_Johns"]


@given(
    zone=st.sampled_from(LOCAL_ZONES),
    start=st.integers(0, 86_400 * 366 * 3),
    length=st.integers(0, 86_400 * 3),
    checkpoints=st.lists(st.floats(0, 1), max_size=4),
)
def test_local_sessions_split_at_local_hour_marks_sum_to_the_session(
    zone: str, start: int, length: int, checkpoints: list[float]
) -> None:
    from guildmeter.zones import Calendars

    calendars = Calendars({1: [(0, zone)]})
    acc, keyring, keys = ready_accumulator(calendars=calendars)
    calendar = calendars.get(1)
    voice = VoiceTracker(acc)
    begin = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=start)
    end = begin + timedelta(seconds=length)
    voice.update(1, 500, 20, begin)
    for fraction in sorted(checkpoints):
        voice.checkpoint(begin + timedelta(seconds=round(length * fraction)))
    voice.update(1, 500, None, end)
    pieces = _voice(settle(acc, keyring, keys))
    assert sum(pieces.values()) == length
    first, last = calendar.bucket_of(begin), calendar.bucket_of(end - timedelta(seconds=1))
    for (bucket, _channel, _label), seconds in pieces.items():
        assert first <= bucket <= last
        span_start = max(calendar.bucket_start_s(bucket), int(begin.timestamp()))
        span_end = min(calendar.bucket_end_s(bucket), int(end.timestamp()))
        assert seconds == span_end - span_start  # exactly the session's part of that hour
