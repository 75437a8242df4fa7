"""Per-guild settings and monthly-post claims, on every backend."""

from __future__ import annotations

from guildmeter.store import Store
from guildmeter.store.settings import MonthlyPosts, SettingsStore


def test_toggles_and_single_values_persist(store: Store) -> None:
    settings = SettingsStore(store)
    assert settings.toggle(1, "mod_channel", 10) is True
    assert settings.toggle(1, "mod_channel", 11) is True
    assert settings.toggle(1, "mod_channel", 10) is False
    settings.set_single(1, "report_channel", 12)
    settings.set_single(1, "report_channel", 13)
    fresh = SettingsStore(store).get(1)  # another process sees the same
    assert fresh.mod_channels == {11}
    assert fresh.report_channel == 13
    assert SettingsStore(store).get(2).mod_channels == frozenset()
    settings.set_single(1, "report_channel", None)
    assert settings.get(1).report_channel is None


def test_a_monthly_post_is_claimed_once_and_released_on_failure(store: Store) -> None:
    first, second = MonthlyPosts(store), MonthlyPosts(store)
    assert first.claim(1, 202605, 99)
    assert not second.claim(1, 202605, 99)  # another process is posting it
    first.release(1, 202605)  # the post failed
    assert second.claim(1, 202605, 99)
    second.posted(1, 202605)
    first.release(1, 202605)  # releasing a posted month does nothing
    assert not first.claim(1, 202605, 99)
    assert first.posted_at(1, 202605) is not None
    assert first.claim(2, 202605, 99)  # other guilds are separate
