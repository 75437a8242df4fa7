"""Reports computed by the database: date ranges, activity reports, charts' series."""

from __future__ import annotations

from guildmeter.reports.compute import REPORT_COLUMNS, Report, ReportRow, compute_report
from guildmeter.reports.daterange import DateRange, parse_daterange

__all__ = [
    "REPORT_COLUMNS",
    "DateRange",
    "Report",
    "ReportRow",
    "compute_report",
    "parse_daterange",
]
