"""UTC hour and month arithmetic.

Whole UTC hours counted from the Unix epoch ("hour index") and months as ``YYYYMM``
integers: portable between SQLite and PostgreSQL, cheap to compare and index. They are a
UTC guild's buckets and months; `guildmeter.zones` defines every guild's, on its own clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

__all__ = [
    "EPOCH",
    "add_months",
    "ensure_aware",
    "hour_index",
    "hour_start",
    "month_bounds",
    "month_of",
    "month_of_hour",
    "month_start",
    "utcnow",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def ensure_aware(when: datetime) -> datetime:
    """Return ``when`` in UTC; refuse naive datetimes, whose meaning is a guess."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when.isoformat()} — a timezone-aware time is required")
    return when.astimezone(UTC)


def hour_index(when: datetime) -> int:
    """Whole UTC hours since the epoch that contain ``when``."""
    return int(ensure_aware(when).timestamp() // 3600)


def hour_start(index: int) -> datetime:
    """The UTC datetime at which hour ``index`` begins."""
    return EPOCH + timedelta(hours=index)


def month_of(when: datetime) -> int:
    """``YYYYMM`` of the UTC month containing ``when``."""
    utc = ensure_aware(when)
    return utc.year * 100 + utc.month


@lru_cache(maxsize=1 << 16)
def month_of_hour(index: int) -> int:
    """``YYYYMM`` of the UTC month containing hour ``index`` (memoised: hot in flushes)."""
    start = hour_start(index)
    return start.year * 100 + start.month


def month_start(month: int) -> datetime:
    """The first instant of ``YYYYMM``, UTC."""
    return datetime(month // 100, month % 100, 1, tzinfo=UTC)


def add_months(month: int, delta: int) -> int:
    """``YYYYMM`` shifted by ``delta`` months."""
    zero_based = (month // 100) * 12 + (month % 100 - 1) + delta
    return (zero_based // 12) * 100 + zero_based % 12 + 1


def month_bounds(month: int) -> tuple[datetime, datetime]:
    """[start, end) of ``YYYYMM`` as UTC datetimes."""
    return month_start(month), month_start(add_months(month, 1))
