"""Files for people: the raw dump, report CSV and JSON, and KazTron imports."""

from __future__ import annotations

from guildmeter.export.csv_gz import (
    DUMP_HEADER,
    NOT_ANONYMISED_WARNING,
    DumpResult,
    write_dump,
    write_report_csv,
)
from guildmeter.export.json_out import report_json
from guildmeter.export.kaztron_import import ImportFormatError, ImportResult, import_files

__all__ = [
    "DUMP_HEADER",
    "NOT_ANONYMISED_WARNING",
    "DumpResult",
    "ImportFormatError",
    "ImportResult",
    "import_files",
    "report_json",
    "write_dump",
    "write_report_csv",
]
