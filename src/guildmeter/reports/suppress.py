"""Small-cell suppression for outputs that members other than moderators can read.

A row with fewer than ``min_users`` (but some) active users hides its message side — active
users, messages, messages per user and its deviation — and likewise its voice side with
voice users: "1 active user at 04:00, 37 messages" would tell everyone who was awake.
Rows with no users at all show their zeros (they are about nobody).

Complementary suppression: messages and voice hours add up, the parts of a weekday or hourly
report to the whole period, which may be published too (the monthly post). If exactly one
cell of that sum were hidden, it would be the whole minus the others; so the number of
hidden cells among the parts and the whole is kept at zero or at least two, hiding the
next-smallest part where needed. An adversary then learns only the sum of the hidden cells,
never one of them: with two or more hidden cells and a positive sum, each could be anything
from 0 to that sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from guildmeter.reports.compute import Report, ReportRow

__all__ = [
    "MESSAGE_SIDE",
    "VOICE_SIDE",
    "PublicReport",
    "fewer_than",
    "hidden_cells",
    "suppress_report",
]

MESSAGE_SIDE = ("active_users", "messages", "messages_per_user", "messages_per_user_stdev")
VOICE_SIDE = (
    "voice_users", "voice_man_hours", "voice_hours_per_user", "voice_hours_per_user_stdev",
)  # fmt: skip
#: (columns hidden together, their user count, their additive column)
_SIDES = (
    (MESSAGE_SIDE, "active_users", "messages"),
    (VOICE_SIDE, "voice_users", "voice_man_hours"),
)


def fewer_than(min_users: int) -> str:
    """What a hidden cell shows."""
    return f"fewer than {min_users}"


def _small(row: ReportRow, users: str, min_users: int) -> bool:
    count: int = getattr(row, users)
    return 0 < count < min_users


def hidden_cells(
    parts: Sequence[ReportRow], min_users: int, *, whole: ReportRow | None = None
) -> tuple[list[frozenset[str]], frozenset[str]]:
    """Columns to hide per part, and in the whole (the sum of the parts: the full period).

    ``whole`` None: the whole is assumed published elsewhere (and not small). Pure.
    """
    hidden: list[set[str]] = [set() for _ in parts]
    whole_hidden: set[str] = set()
    for columns, users, additive in _SIDES:
        hide = [_small(row, users, min_users) for row in parts]
        whole_small = whole is not None and _small(whole, users, min_users)
        candidates = [i for i, h in enumerate(hide) if not h]
        if parts and candidates and sum(hide) + whole_small == 1:
            # One unknown in "parts = whole": recoverable. Hide the shown part with the
            # fewest users, preferring one with users (a zero part would tell little).
            candidates.sort(
                key=lambda i: (getattr(parts[i], users) == 0, getattr(parts[i], users),
                               getattr(parts[i], additive), i)
            )  # fmt: skip
            hide[candidates[0]] = True
        for index, flag in enumerate(hide):
            if flag:
                hidden[index].update(columns)
        if whole_small:
            whole_hidden.update(columns)
    return [frozenset(h) for h in hidden], frozenset(whole_hidden)


@dataclass(frozen=True)
class PublicReport:
    """A report as non-moderators may read it: ``hidden[i]`` are row i's hidden columns."""

    report: Report
    hidden: tuple[frozenset[str], ...]
    min_users: int

    def cell(self, index: int, column: str) -> object:
        """The row's value, or "fewer than N" where hidden."""
        if column in self.hidden[index]:
            return fewer_than(self.min_users)
        return getattr(self.report.rows[index], column)

    @property
    def any_hidden(self) -> bool:
        return any(self.hidden)


def suppress_report(
    report: Report, min_users: int, *, whole: ReportRow | None = None
) -> PublicReport:
    """Suppress a report for a public output; ``whole``: the full row of the same period."""
    if report.kind == "full" or len(report.rows) == 1:
        _none, own = hidden_cells([], min_users, whole=report.rows[0])
        return PublicReport(report, (own,), min_users)
    parts, _whole = hidden_cells(report.rows, min_users, whole=whole)
    return PublicReport(report, tuple(parts), min_users)
