"""Anonymous tokens that replace a finished month's pseudonyms."""

from __future__ import annotations

import secrets

__all__ = ["TOKEN_PREFIX", "is_token", "new_token", "new_tokens"]

TOKEN_PREFIX = "u"  # noqa: S105 - a label prefix, not a secret


def new_token(month: int) -> str:
    """A fresh random token for ``YYYYMM``, in KazTron's ``uYYYYMM$…`` form.

    It is drawn from `secrets` and has no relation to the user or the old pseudonym.
    """
    return f"{TOKEN_PREFIX}{month:06d}${secrets.token_hex(16)}"


def new_tokens(month: int, count: int) -> list[str]:
    """``count`` fresh tokens for ``YYYYMM``, like `new_token`, from one draw of randomness.

    One call into the OS for all of them: each call gives the GIL up, and a flush thread
    waits for it behind a busy event loop every time (thousands of tokens took seconds).
    """
    pool = secrets.token_bytes(16 * count)
    return [f"{TOKEN_PREFIX}{month:06d}${pool[i : i + 16].hex()}" for i in range(0, 16 * count, 16)]


def is_token(label: str) -> bool:
    """True for an anonymous token."""
    return label.startswith(TOKEN_PREFIX)
