"""Tokens: KazTron's ``uYYYYMM$…`` form, fresh each time, one draw for many."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from guildmeter.privacy.anonymize import is_token, new_token, new_tokens

TOKEN = re.compile(r"u\d{6}\$[0-9a-f]{32}")


@given(st.integers(min_value=201501, max_value=209912), st.integers(min_value=0, max_value=300))
def test_many_tokens_have_the_single_tokens_form_and_never_repeat(month: int, count: int) -> None:
    tokens = new_tokens(month, count)
    assert len(tokens) == count == len(set(tokens))
    for token in [*tokens, new_token(month)]:
        assert TOKEN.fullmatch(token) and token.startswith(f"u{month}$") and is_token(token)
    assert new_token(month) not in tokens
