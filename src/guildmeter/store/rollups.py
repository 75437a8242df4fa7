"""Roll-ups of the usage day summaries, so that `/stats 30` costs what `/stats 7` costs.

Two tables, both kept exact by the usage writer and by every deletion (forget-me,
opt-out, `/reset_stats`):

- ``usage_latency_rollups``: the latency histogram summed over *periods*: whole months
  (level 2) and the four parts of each month (level 1: days 1-8, 9-16, 17-24, 25-end).
  A window's histogram is added up from whole periods inside it and the day rows at its
  edges; where an edge covers most of a period, the period is taken whole and the days
  outside the window are subtracted (`plan`). A window of any length then reads at most
  a few periods and about 8 days of rows, where the day rows alone cost one read per day.
- ``usage_monthly_users``: per guild, month and member, a bit mask of the member's active
  days in the month (bit i: day i+1). Members get a new pseudonym each month, so this is
  one row per member-month; a window's distinct and active (two days or more) members
  come from ``mask & window`` without reading a row per member and day, exactly for any
  range, partial months included.

Days are the day numbers of the day summaries (the guild's local days since 1970-01-01);
a month is the calendar month of those dates, whatever the guild's zone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
)

from guildmeter.store import schema

__all__ = [
    "DAY",
    "MONTH",
    "PART",
    "latency_periods",
    "latency_rollup_counts",
    "latency_rollups",
    "month_first_day",
    "month_masks",
    "monthly_users",
    "part_first_day",
    "period_days",
    "plan",
    "rollup_tables",
    "user_masks",
]

DAY, PART, MONTH = 0, 1, 2  # levels of `plan` pieces (DAY pieces are day-summary rows)
_EPOCH = date(1970, 1, 1)
_PART_DAYS = 8

latency_rollups = Table(
    "usage_latency_rollups",
    schema.metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("level", SmallInteger, nullable=False),  # PART or MONTH
    Column("first_day", Integer, nullable=False),  # the period's first day number
    Column("command", String(100), nullable=False),
    Column("bucket", SmallInteger, nullable=False),
    Column("uses", BigInteger, nullable=False),
    PrimaryKeyConstraint("guild_id", "level", "first_day", "command", "bucket"),
)

monthly_users = Table(
    "usage_monthly_users",
    schema.metadata,
    Column("guild_id", BigInteger, nullable=False),
    Column("month_day", Integer, nullable=False),  # the month's first day number
    Column("member_id", BigInteger, nullable=False),
    Column("days_mask", BigInteger, nullable=False),  # bit i: active on month_day + i
    PrimaryKeyConstraint("guild_id", "month_day", "member_id"),
)

#: The roll-up tables, in the order a reset deletes them.
rollup_tables = (latency_rollups, monthly_users)


def _date(day: int) -> date:
    return _EPOCH + timedelta(days=day)


def _number(when: date) -> int:
    return (when - _EPOCH).days


def month_first_day(day: int) -> int:
    """The day number of the 1st of ``day``'s month."""
    return _number(_date(day).replace(day=1))


def _month_end(first: int) -> int:
    """The last day number of the month starting on day ``first``."""
    start = _date(first)
    following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return _number(following) - 1


def part_first_day(day: int) -> int:
    """The first day number of ``day``'s part of its month (days 1-8, 9-16, 17-24, 25-)."""
    first = month_first_day(day)
    return first + _PART_DAYS * min((day - first) // _PART_DAYS, 3)


def period_days(level: int, first: int) -> tuple[int, int]:
    """First and last day number of the period of ``level`` starting on ``first``."""
    if level == DAY:
        return first, first
    end = _month_end(month_first_day(first))
    if level == MONTH:
        return first, end
    return first, end if first - month_first_day(first) >= 3 * _PART_DAYS else first + 7


def _period_of(level: int, day: int) -> tuple[int, int]:
    if level == MONTH:
        return period_days(MONTH, month_first_day(day))
    if level == PART:
        return period_days(PART, part_first_day(day))
    return day, day


def latency_periods(day: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The (level, first day) roll-up periods a day's latency row adds to."""
    return (PART, part_first_day(day)), (MONTH, month_first_day(day))


def plan(first: int, last: int) -> dict[tuple[int, int], int]:
    """Signed pieces whose sum is exactly the days [first, last]: {(level, first day): ±1}.

    Fewest pieces: within a period only partly in the window, either its smaller periods
    (or days) inside the window, or the whole period minus those outside, whichever is
    fewer.
    """
    pieces: Counter[tuple[int, int]] = Counter()
    for piece, sign in _cover(first, last, MONTH):
        pieces[piece] += sign
    return {piece: sign for piece, sign in sorted(pieces.items()) if sign}


def _cover(lo: int, hi: int, level: int) -> list[tuple[tuple[int, int], int]]:
    if lo > hi:
        return []
    if level == DAY:
        return [((DAY, d), 1) for d in range(lo, hi + 1)]
    out: list[tuple[tuple[int, int], int]] = []
    day = lo
    while day <= hi:
        start, end = _period_of(level, day)
        a, b = max(lo, start), min(hi, end)
        if (a, b) == (start, end):
            out.append(((level, start), 1))
        else:
            inside = _cover(a, b, level - 1)
            outside = _cover(start, a - 1, level - 1) + _cover(b + 1, end, level - 1)
            if 1 + len(outside) < len(inside):
                out.append(((level, start), 1))
                out += [(piece, -sign) for piece, sign in outside]
            else:
                out += inside
        day = end + 1
    return out


def month_masks(first: int, last: int) -> dict[int, int]:
    """Per month overlapping [first, last] (its first day number), the window's day bits."""
    masks: dict[int, int] = {}
    day = first
    while day <= last:
        start = month_first_day(day)
        end = min(last, _month_end(start))
        masks[start] = sum(1 << (d - start) for d in range(day, end + 1))
        day = end + 1
    return masks


def user_masks(
    active: Iterable[tuple[int, int, int]],
) -> dict[tuple[int, int, int], int]:
    """(guild, day, member) activity as {(guild, month's first day, member): day bits}."""
    masks: dict[tuple[int, int, int], int] = {}
    for guild_id, day, member_id in active:
        month = month_first_day(day)
        key = (guild_id, month, member_id)
        masks[key] = masks.get(key, 0) | 1 << (day - month)
    return masks


def latency_rollup_counts(
    latency: Mapping[tuple[int, int, str, int], int],
) -> Counter[tuple[int, int, int, str, int]]:
    """(guild, day, command, bucket) uses as (guild, level, first day, command, bucket)."""
    out: Counter[tuple[int, int, int, str, int]] = Counter()
    for (guild_id, day, command, bucket), uses in latency.items():
        for level, start in latency_periods(day):
            out[(guild_id, level, start, command, bucket)] += uses
    return out
