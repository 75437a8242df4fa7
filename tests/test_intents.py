"""The fallback order when Discord refuses privileged intents, and what each set collects."""

from __future__ import annotations

from guildmeter.collection import Collection
from guildmeter.intents import collection_of, fallback, intents_for


def test_message_content_is_dropped_first_then_server_members_then_nothing() -> None:
    first = fallback(intents_for("all"))
    assert first is not None
    after_content, line = first
    assert (after_content.members, after_content.message_content) == (True, False)
    assert "Server Members and Message Content" in line
    assert "reconnecting without Message Content" in line
    second = fallback(after_content)
    assert second is not None
    minimal, line = second
    assert minimal == intents_for("minimal")
    assert line.startswith("Discord refused the Server Members intent")
    assert "joins and parts are no longer collected" in line
    assert fallback(minimal) is None
    # the unprivileged intents are never dropped
    assert minimal.guilds and minimal.voice_states and minimal.guild_messages


def test_configured_without_message_content_a_refusal_is_server_members() -> None:
    step = fallback(intents_for("no-message-content"))
    assert step is not None
    assert step[0] == intents_for("minimal")
    assert "Server Members" in step[1]


def test_what_each_set_of_intents_collects() -> None:
    assert collection_of(intents_for("all")) == Collection(members=True, message_content=True)
    assert collection_of(intents_for("all")).missing() == []
    minimal = collection_of(intents_for("minimal"))
    assert minimal.missing() == [
        "joins and parts: not collected — the bot lacks the Server Members intent",
        "member totals: Discord's approximate member count, once an hour — the bot lacks "
        "the Server Members intent",
        "commands: slash only (prefix commands cannot be read) — the bot lacks the Message "
        "Content intent; messages are still counted",
    ]
    assert "messages per channel: collected (message content is never read)" in minimal.lines()
    assert "voice time: collected" in minimal.lines()


def test_host_bots_reach_the_fallback_from_the_package() -> None:
    import guildmeter
    from guildmeter import intents

    assert guildmeter.start_with_fallback is intents.start_with_fallback
    assert "start_with_fallback" in guildmeter.__all__
