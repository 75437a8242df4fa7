"""An independent computation of the reports, in plain Python, from the events fed in."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@dataclass(frozen=True)
class Fed:
    """One event as a test fed it: raw user id (or '' for totals), channel name or ''."""

    when: datetime
    event: str
    user: str
    channel: str
    count: int


def case_of(kind: str, when: datetime) -> str:
    if kind == "full":
        return "all"
    if kind == "weekday":
        return WEEKDAYS[when.weekday()]
    return str(when.hour)


def cases(kind: str) -> list[str]:
    return (
        ["all"]
        if kind == "full"
        else WEEKDAYS
        if kind == "weekday"
        else [str(h) for h in range(24)]
    )


def reference_report(
    events: list[Fed], kind: str, start: datetime, end: datetime, channel: str | None
) -> list[dict[str, object]]:
    rows = []
    for case in cases(kind):
        chosen = [e for e in events if start <= e.when < end and case_of(kind, e.when) == case]
        msgs: dict[str, int] = defaultdict(int)
        voice: dict[str, int] = defaultdict(int)
        joins = parts = 0
        latest_total: tuple[datetime, int] | None = None
        for e in chosen:
            if e.event == "msg" and (channel is None or e.channel == channel):
                msgs[e.user] += e.count
            elif e.event == "voice" and (channel is None or e.channel == channel):
                voice[e.user] += e.count
            elif e.event == "join":
                joins += e.count
            elif e.event == "part":
                parts += e.count
            elif e.event == "total_users":
                hour = e.when.replace(minute=0, second=0, microsecond=0)
                if latest_total is None or hour >= latest_total[0]:
                    latest_total = (hour, e.count)
        hours = [s / 3600 for s in voice.values()]
        rows.append(
            {
                "case": case,
                "total_users": latest_total[1] if latest_total else 0,
                "active_users": len(msgs),
                "voice_users": len(voice),
                "joins": joins,
                "parts": parts,
                "messages": sum(msgs.values()),
                "messages_per_user": statistics.fmean(msgs.values()) if msgs else 0.0,
                "messages_per_user_stdev": statistics.stdev(msgs.values())
                if len(msgs) > 1
                else 0.0,
                "voice_man_hours": sum(hours),
                "voice_hours_per_user": statistics.fmean(hours) if hours else 0.0,
                "voice_hours_per_user_stdev": statistics.stdev(hours) if len(hours) > 1 else 0.0,
            }
        )
    return rows


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
