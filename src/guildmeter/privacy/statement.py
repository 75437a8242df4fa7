"""What guildmeter tells members about their data: `/privacy` and the host bot's statement.

The month-end instant comes from `month_end` alone: the end of the guild's local month
(its timezone, `guildmeter.zones`), shown on the guild's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from guildmeter.collection import ALL_COLLECTED, Collection
from guildmeter.timeutil import add_months
from guildmeter.zones import UTC_CALENDAR, GuildCalendar, format_offset

__all__ = [
    "END_USER_DATA_STATEMENT",
    "LINKAGE_WARNING",
    "key_destroyed_at",
    "month_end",
    "privacy_statement",
]

#: The host bot's end-user data statement (Red-DiscordBot: ``__red_end_user_data_statement__``).
END_USER_DATA_STATEMENT = (
    "This bot counts, per hour, how many messages each member posts in each channel, their "
    "time in voice channels, their joins and leaves, and their use of the bot's commands, "
    "under a pseudonym that is a keyed hash of the user id with a key drawn per server and "
    "per month. It never stores message content, names or user ids. At the end of each "
    "month every pseudonym is replaced by a random token and the month's key is destroyed. "
    "Within a month a pseudonym links one member's activity across channels. Members can "
    "opt out (`privacy optout`: nothing about them is counted from then on) and ask to be "
    "forgotten (`privacy forget`: their rows of months not yet anonymised are deleted); "
    "deletion requests relayed by Discord are handled the same way by the bot owner. A "
    "server's managers may have the bot count, the same way, the messages of up to a year "
    "before it joined, from the channel history it can read (members who opted out are "
    "not counted). Where a retention period is set, each month's per-member rows are "
    "deleted that many months after it ends; only its totals and whole-month reports stay."
)

#: The honest limit of a monthly token, said wherever we promise privacy.
LINKAGE_WARNING = (
    "Within a month one token stands for one member across channels: someone who reads "
    "the server's channels may recognise a member from their token's pattern (“4 messages "
    "in #general”) and so learn where else, hidden channels included, they were active."
)


def month_end(now: datetime, calendar: GuildCalendar = UTC_CALENDAR) -> datetime:
    """The end of the guild's statistics month containing ``now``: its local midnight of
    the next 1st (in the zone of the next month), as an aware datetime in that zone."""
    return calendar.month_start(add_months(calendar.month_of(now), 1))


def key_destroyed_at(
    now: datetime, grace: timedelta, calendar: GuildCalendar = UTC_CALENDAR
) -> datetime:
    """When the current month's key is destroyed: the first flush after month end + grace."""
    end = month_end(now, calendar)
    return (end.astimezone(UTC) + grace).astimezone(end.tzinfo)  # elapsed time, local clock


def privacy_statement(
    *,
    guild_name: str | None,
    now: datetime,
    grace: timedelta,
    min_cell_users: int,
    aggregates_only: bool,
    opted_out: bool | None = None,
    collection: Collection = ALL_COLLECTED,
    calendar: GuildCalendar = UTC_CALENDAR,
    retention_months: int = 0,
) -> str:
    """The `/privacy` answer (well under Discord's 2,000 characters).

    ``collection``: what this bot's intents let it count (joins and leaves need Server
    Members, prefix commands Message Content); the statement never claims more.
    ``retention_months``: the retention in force for the guild (0: everything is kept).
    """
    where = f"in **{guild_name[:80]}**" if guild_name else "in each server"
    destroyed = key_destroyed_at(now, grace, calendar)
    kept = (
        "only the month's aggregate counts are kept: per-member rows are dropped (its "
        "bot-usage records keep their tokens)"
        if aggregates_only
        else "the month's counts are kept under random tokens (one per member per month)"
    )
    lines = [
        f"**What guildmeter counts about you {where}**",
        "Per hour: messages you post per channel, your time per voice channel, "
        + ("your joins and leaves, " if collection.members else "")
        + "and your use of the bot's commands — under a monthly pseudonym (a "
        "keyed hash of your user id; the key is drawn per server and per month).",
        "**Never kept:** message content, your user id, your name.",
        f"**When the link to you dies:** this month's key is destroyed at "
        f"{destroyed:%Y-%m-%d %H:%M} {_zone_text(destroyed)}; then every pseudonym becomes "
        "a random token. "
        "Until then the bot can still recompute your pseudonym, so this month's rows are "
        "your personal data.",
        f"**How long:** after the month ends {kept}"
        + (
            f", for {retention_months} month(s); then they are deleted and only the month's "
            "totals and whole-month reports stay. "
            if retention_months > 0
            else ", until the server's administrators delete them (no retention period is set). "
        )
        + "Outputs other members can read show rows with fewer than "
        f"{min_cell_users} members as “fewer than {min_cell_users}”.",
        f"**Honest limit:** {LINKAGE_WARNING}",
        "**Your choices:** `/privacy optout` — nothing about you is counted here from then on"
        + (
            " (a join or leave still counts toward the server's totals, for nobody); "
            if collection.members
            else "; "
        )
        + "`/privacy optin` undoes it. `/privacy forget` deletes your rows of the months not "
        "yet anonymised (it first says what it would delete). "
        + (
            "Prefix forms: `.privacy optout`, `.privacy optin`, `.privacy forget yes`. "
            if collection.message_content
            else ""
        )
        + "The bot owner handles deletion requests relayed by Discord the same way.",
    ]
    if not collection.complete:
        lines.insert(2, "**Not collected here:** " + "; ".join(collection.missing()) + ".")
    if opted_out is not None:
        lines.append(
            "**You:** opted out of this server's statistics."
            if opted_out
            else "**You:** counted (not opted out)."
        )
    return "\n".join(lines)


def _zone_text(when: datetime) -> str:
    """``UTC`` for UTC guilds (as before), else the zone and its offset."""
    offset = when.utcoffset()
    if not offset and str(when.tzinfo) == "UTC":
        return "UTC"
    assert offset is not None
    return f"{when.tzinfo} (UTC{format_offset(offset)})"
