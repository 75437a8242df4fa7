"""The store and the tracker do not import each other (no import circle)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "must_not_load"),
    [
        ("guildmeter.store.usage", "guildmeter.usage"),
        ("guildmeter.store.rights", "guildmeter.usage"),
        ("guildmeter.reports.usage", "guildmeter.usage"),
        ("guildmeter.usage_records", "guildmeter.store"),
    ],
)
def test_importing_one_side_does_not_load_the_other(module: str, must_not_load: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"loaded = sorted(m for m in sys.modules if m == {must_not_load!r} "
        f"or m.startswith({must_not_load!r} + '.'))\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_record_types_are_the_same_objects_everywhere() -> None:
    from guildmeter import usage, usage_records
    from guildmeter.store import usage as store_usage
    from guildmeter.usage import tracker

    assert tracker.Generation is usage.Generation is usage_records.Generation
    assert store_usage.latency_bucket is usage_records.latency_bucket


def test_no_store_module_imports_the_tracker_even_lazily() -> None:
    """Imports inside functions or under TYPE_CHECKING count too: they close the circle."""
    import ast
    from pathlib import Path

    import guildmeter.store

    offenders = []
    for path in sorted(Path(guildmeter.store.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            offenders += [
                f"{path.name}: {n}"
                for n in names
                if n == "guildmeter.usage" or n.startswith("guildmeter.usage.")
            ]
    assert offenders == []
