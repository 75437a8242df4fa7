"""Reports read members in chunks of ids (`guildmeter.reports.chunks`) once a month has
thousands of them; the tests' months have a handful, so here every chunk holds two ids:
each report below is read in several chunks, on two connections at once, and must still
equal its reference."""

from __future__ import annotations

import pytest

from guildmeter.reports import chunks


@pytest.fixture(autouse=True)
def small_member_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunks, "MEMBERS_PER_CHUNK", 2)
