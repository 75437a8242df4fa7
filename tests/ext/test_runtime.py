"""Heavy-job limits: per member, per guild and in all; a slot is always given back."""

from __future__ import annotations

import pytest

from guildmeter.ext.checks import NotAllowed
from guildmeter.ext.runtime import JobLimits


async def test_limits_per_member_per_guild_and_in_all() -> None:
    limits = JobLimits(per_member=1, per_guild=2, total=3)
    async with limits.slot(1, 10):
        with pytest.raises(NotAllowed, match="You already have"):
            async with limits.slot(1, 10):
                pass
        async with limits.slot(1, 11):
            with pytest.raises(NotAllowed, match="This server already"):
                async with limits.slot(1, 12):
                    pass
            async with limits.slot(2, 10):  # the same member in another guild
                with pytest.raises(NotAllowed, match="The bot is busy"):
                    async with limits.slot(3, 30):
                        pass
                assert limits.running == 3
    assert limits.running == 0


async def test_a_failing_job_gives_its_slot_back() -> None:
    limits = JobLimits(per_member=1, per_guild=1, total=1)
    with pytest.raises(RuntimeError):
        async with limits.slot(1, 10):
            raise RuntimeError("the job failed")
    async with limits.slot(1, 10):
        assert limits.running == 1
