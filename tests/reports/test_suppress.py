"""Small-cell suppression: hidden where few, and never recoverable from what is shown."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from guildmeter.reports import DateRange
from guildmeter.reports.compute import Report, ReportRow
from guildmeter.reports.suppress import (
    MESSAGE_SIDE,
    VOICE_SIDE,
    fewer_than,
    hidden_cells,
    suppress_report,
)

MAY = DateRange(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))
SIDES = ((MESSAGE_SIDE, "active_users", "messages"), (VOICE_SIDE, "voice_users", "voice_man_hours"))


def _row(
    case: str, users: int, messages: int, voice_users: int = 0, voice: float = 0.0
) -> ReportRow:
    return ReportRow(
        case, 40, users, voice_users, 1, 0, messages, messages / users if users else 0.0, 0.5,
        voice, voice / voice_users if voice_users else 0.0, 0.1,
    )  # fmt: skip


@st.composite
def partitions(draw: st.DrawFn) -> tuple[list[ReportRow], ReportRow]:
    """Parts (weekdays or hours) and their whole: additive columns sum, users overlap."""
    size = draw(st.sampled_from([7, 24, 2, 3]))
    parts = []
    for index in range(size):
        users = draw(st.integers(0, 12))
        messages = 0 if users == 0 else draw(st.integers(users, users * 30))
        voice_users = draw(st.integers(0, 8))
        voice = 0.0 if voice_users == 0 else float(draw(st.integers(voice_users, 50)))
        parts.append(_row(str(index), users, messages, voice_users, voice))
    max_users = max(p.active_users for p in parts)
    max_voice = max(p.voice_users for p in parts)
    whole = _row(
        "all",
        draw(st.integers(max_users, max_users + sum(p.active_users for p in parts))),
        sum(p.messages for p in parts),
        draw(st.integers(max_voice, max_voice + sum(p.voice_users for p in parts))),
        sum(p.voice_man_hours for p in parts),
    )
    return parts, whole


@given(partitions(), st.integers(1, 10), st.booleans())
def test_small_cells_are_hidden_and_no_hidden_cell_is_recoverable(
    data: tuple[list[ReportRow], ReportRow], min_users: int, whole_known: bool
) -> None:
    parts, whole = data
    hidden, whole_hidden = hidden_cells(parts, min_users, whole=whole if whole_known else None)
    for columns, users, additive in SIDES:
        # Every small cell (some but too few users) is hidden, whole side at once.
        for row, cols in zip(parts, hidden, strict=True):
            if 0 < getattr(row, users) < min_users:
                assert set(columns) <= cols
            assert set(columns) <= cols or not (set(columns) & cols)
        # The adversary's equation: parts sum to the whole (published, unless hidden).
        unknown = [getattr(p, additive) for p, cols in zip(parts, hidden, strict=True)
                   if additive in cols]  # fmt: skip
        if whole_known and additive in whole_hidden:
            unknown.append(getattr(whole, additive))
        # None alone (it would be the whole minus the others), and their sum is positive,
        # so each could be anything from 0 to that sum.
        assert len(unknown) != 1
        if unknown and any(0 < getattr(p, users) < min_users for p in parts):
            assert sum(unknown) > 0


@given(partitions(), st.integers(1, 10))
def test_shown_cells_are_the_exact_figures(
    data: tuple[list[ReportRow], ReportRow], min_users: int
) -> None:
    parts, whole = data
    public = suppress_report(Report("weekday", 1, "all", MAY, parts), min_users, whole=whole)
    for index, row in enumerate(parts):
        for column in (*MESSAGE_SIDE, *VOICE_SIDE, "joins", "parts", "total_users"):
            shown = public.cell(index, column)
            if column in public.hidden[index]:
                assert shown == fewer_than(min_users)
            else:
                assert shown == getattr(row, column)


def test_one_small_weekday_gets_a_complement_so_subtraction_reveals_nothing() -> None:
    parts = [_row(day, 20 + i, 100 + i) for i, day in enumerate("MTWTFSS")]
    parts[3] = _row("T", 1, 37)  # one member awake, 37 messages
    whole = _row("all", 30, sum(p.messages for p in parts))
    hidden, whole_hidden = hidden_cells(parts, 5, whole=whole)
    assert "messages" in hidden[3]
    assert [i for i, h in enumerate(hidden) if "messages" in h] == [0, 3]  # fewest users next
    assert not whole_hidden
    assert all(not (set(VOICE_SIDE) & h) for h in hidden)  # no one in voice: nothing to hide


def test_a_small_full_report_hides_its_per_user_figures() -> None:
    report = Report("full", 1, "all", MAY, [_row("all", 2, 8, 6, 3.0)])
    public = suppress_report(report, 5)
    assert public.cell(0, "active_users") == "fewer than 5"
    assert public.cell(0, "messages_per_user") == "fewer than 5"
    assert public.cell(0, "voice_users") == 6 and public.cell(0, "joins") == 1
    assert suppress_report(report, 2).hidden == (frozenset(),)
