"""Reports as JSON, in DESIGN.md's shape."""

from __future__ import annotations

import json

from guildmeter.reports.compute import Report

__all__ = ["report_json"]


def report_json(report: Report, *, indent: int | None = 2) -> str:
    return json.dumps(report.to_json(), indent=indent, ensure_ascii=False)
