"""Discord's payload limits, so a message or command Discord would refuse fails the test.

Each check returns the list of problems (empty when the payload is acceptable), worded
like Discord's "Invalid Form Body" errors.
"""

from __future__ import annotations

import re
from typing import Any

CONTENT_MAX = 2000
EMBEDS_MAX = 10
EMBED_TOTAL_MAX = 6000
EMBED_TITLE_MAX = 256
EMBED_DESCRIPTION_MAX = 4096
EMBED_FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_MAX = 256
FILES_MAX = 10
FILE_BYTES_MAX = 10 * 1024 * 1024  # a bot's upload limit in a server without boosts
COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")
COMMAND_DESCRIPTION_MAX = 100
COMMAND_OPTIONS_MAX = 25
CHOICES_MAX = 25


_MENTION = re.compile(r"@everyone|@here|<@[!&]?\d+>")


def would_ping(payload: dict[str, Any]) -> bool:
    """Whether Discord would notify someone: a mention in the content that
    ``allowed_mentions`` does not switch off (without it, Discord parses every mention)."""
    if not _MENTION.search(payload.get("content") or ""):
        return False
    allowed = payload.get("allowed_mentions")
    if allowed is None:
        return True
    return bool(allowed.get("parse") or allowed.get("users") or allowed.get("roles"))


def message_problems(payload: dict[str, Any], files: dict[str, bytes]) -> list[str]:
    problems = []
    content = payload.get("content") or ""
    if len(content) > CONTENT_MAX:
        problems.append(f"content: {len(content)} characters, at most {CONTENT_MAX}")
    embeds = payload.get("embeds") or []
    if len(embeds) > EMBEDS_MAX:
        problems.append(f"embeds: {len(embeds)}, at most {EMBEDS_MAX}")
    for index, embed in enumerate(embeds):
        problems.extend(f"embeds[{index}].{p}" for p in embed_problems(embed))
    if len(files) > FILES_MAX:
        problems.append(f"files: {len(files)}, at most {FILES_MAX}")
    for name, data in files.items():
        if len(data) > FILE_BYTES_MAX:
            problems.append(f"file {name}: {len(data)} bytes, at most {FILE_BYTES_MAX}")
    if not content and not embeds and not files and not payload.get("components"):
        problems.append("cannot send an empty message")
    return problems


def embed_problems(embed: dict[str, Any]) -> list[str]:
    problems = []
    total = 0

    def text(key: str, value: Any, limit: int) -> None:
        nonlocal total
        length = len(str(value or ""))
        total += length
        if length > limit:
            problems.append(f"{key}: {length} characters, at most {limit}")

    text("title", embed.get("title"), EMBED_TITLE_MAX)
    text("description", embed.get("description"), EMBED_DESCRIPTION_MAX)
    text("footer.text", (embed.get("footer") or {}).get("text"), FOOTER_MAX)
    text("author.name", (embed.get("author") or {}).get("name"), AUTHOR_MAX)
    fields = embed.get("fields") or []
    if len(fields) > EMBED_FIELDS_MAX:
        problems.append(f"fields: {len(fields)}, at most {EMBED_FIELDS_MAX}")
    for index, field in enumerate(fields):
        if not field.get("name") or not field.get("value"):
            problems.append(f"fields[{index}]: name and value are required")
        text(f"fields[{index}].name", field.get("name"), FIELD_NAME_MAX)
        text(f"fields[{index}].value", field.get("value"), FIELD_VALUE_MAX)
    if total > EMBED_TOTAL_MAX:
        problems.append(f"embed of {total} characters, at most {EMBED_TOTAL_MAX}")
    return problems


def command_problems(command: dict[str, Any], where: str = "") -> list[str]:
    """An application command (or option) definition, as PUT /applications/.../commands."""
    problems = []
    name = command.get("name", "")
    where = f"{where}{name}"
    if not COMMAND_NAME.match(name) or (command.get("type", 1) == 1 and name != name.lower()):
        problems.append(f"{where}: invalid name {name!r}")
    description = command.get("description", "")
    if command.get("type", 1) == 1 and not 1 <= len(description) <= COMMAND_DESCRIPTION_MAX:
        problems.append(f"{where}: description of {len(description)} characters, 1 to 100")
    options = command.get("options") or []
    if len(options) > COMMAND_OPTIONS_MAX:
        problems.append(f"{where}: {len(options)} options, at most {COMMAND_OPTIONS_MAX}")
    seen_optional = False
    for option in options:
        if option.get("type") in (1, 2):
            problems.extend(command_problems({**option, "type": 1}, f"{where} "))
            continue
        problems.extend(command_problems({**option, "type": 1, "options": []}, f"{where} "))
        if option.get("required"):
            if seen_optional:
                problems.append(f"{where}: required option {option['name']} after optional")
        else:
            seen_optional = True
        if len(option.get("choices") or []) > CHOICES_MAX:
            problems.append(f"{where} {option['name']}: more than {CHOICES_MAX} choices")
    return problems
