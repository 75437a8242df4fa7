"""Forget-me: delete one member's rows of every month not yet anonymised.

A pseudonym can only be computed while its month's key exists, which is exactly while the
month is not anonymised; anonymised months hold random tokens that nothing links to the
member, so there is nothing of theirs to find there. Deletion is followed by the same
scrub as key destruction, so the pseudonym's bytes do not survive in the database files.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from guildmeter.privacy.keyring import pseudonym_of
from guildmeter.store import Store
from guildmeter.store.rights import MemberRows, RightsStore

__all__ = ["ForgetReport", "describe_forget", "forget_in_store", "plan_forget"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForgetReport:
    """What a forget request found (``done`` False: a dry run) or deleted."""

    done: bool
    months: list[MemberRows] = field(default_factory=list)
    #: Guild-months already anonymised: they hold nothing linked to the member.
    anonymised_months: int = 0
    #: Counters, voice sessions and usage records dropped from memory (the bot's only).
    in_memory: int = 0

    @property
    def activity_rows(self) -> int:
        return sum(m.activity_rows for m in self.months)

    @property
    def messages(self) -> int:
        return sum(m.messages for m in self.months)

    @property
    def voice_seconds(self) -> int:
        return sum(m.voice_seconds for m in self.months)

    @property
    def usage_records(self) -> int:
        return sum(m.usage_records for m in self.months)

    def with_memory(self, dropped: int) -> ForgetReport:
        return ForgetReport(self.done, self.months, self.anonymised_months, dropped)


def member_labels(rights: RightsStore, user_id: int, guild_id: int | None) -> list[
    tuple[int, int, str]
]:  # fmt: skip
    """``(guild, month, pseudonym)`` of the member in every month whose key still exists."""
    return [(g, m, pseudonym_of(key, user_id)) for g, m, key in rights.live_keys(guild_id)]


def plan_forget(store: Store, user_id: int, guild_id: int | None = None) -> ForgetReport:
    """What `forget_in_store` would delete (read only)."""
    rights = RightsStore(store)
    found = [
        rows
        for g, m, label in member_labels(rights, user_id, guild_id)
        if not (rows := rights.member_rows(g, m, label)).empty
    ]
    return ForgetReport(False, found, rights.anonymised_months(guild_id))


def forget_in_store(
    store: Store, user_id: int, guild_id: int | None = None, *, labels: Iterable[
        tuple[int, int, str]
    ] | None = None, scrub: bool = True,
) -> ForgetReport:  # fmt: skip
    """Delete the member's rows of every month not yet anonymised (one guild, or all), scrub.

    ``labels`` (from `member_labels`) lets a caller that also purges memory compute them once.
    ``scrub=False``: the caller scrubs (the bot does it outside its flush lock, bounded).
    """
    rights = RightsStore(store)
    wanted = list(labels) if labels is not None else member_labels(rights, user_id, guild_id)
    deleted = [
        rows for g, m, label in wanted if not (rows := rights.delete_member(g, m, label)).empty
    ]
    if scrub and deleted:
        rights.scrub()
    report = ForgetReport(True, deleted, rights.anonymised_months(guild_id))
    log.info(
        "forget: %d activity rows and %d usage records deleted in %d guild-months",
        report.activity_rows,
        report.usage_records,
        len(deleted),
    )
    return report


def describe_forget(report: ForgetReport) -> str:
    """One short paragraph for the member (or the operator): what was, or would be, deleted."""
    verb = "Deleted" if report.done else "This would delete"
    if report.months:
        months = ", ".join(sorted({f"{m.month // 100}-{m.month % 100:02d}" for m in report.months}))
        text = (
            f"{verb} your statistics of {months}: {report.activity_rows:,} hourly counts "
            f"({report.messages:,} messages, {report.voice_seconds / 3600:,.1f} voice hours) "
            f"and {report.usage_records:,} bot-usage records."
        )
    else:
        text = (
            "Nothing of yours is stored for the months still in progress."
            if report.done
            else "Nothing of yours is stored for the months still in progress; "
            "there is nothing to delete."
        )
    if report.in_memory:
        text += f" Also dropped from memory: {report.in_memory:,} counts not yet written."
    text += (
        " Months already anonymised hold only random tokens that nothing links to you, "
        "so nothing there can be found or deleted as yours."
    )
    return text
