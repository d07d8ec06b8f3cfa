"""The token budget: how much spec text the compiler accepts, counted before parsing.

Checking time grows with the number of tokens, not bytes (a 2 MB prompt is one token, a 2 MB
run of tiny declarations is half a million). Counting is one regex pass that stops at the
limit, so an oversized spec is refused in milliseconds instead of parsed for tens of seconds."""

from __future__ import annotations

import re

MAX_SPEC_TOKENS = 50_000  # a spec and its imports together; the examples have about 200 each

# the lexer's tokens, approximately: strings whole, comments skipped, words and numbers whole,
# any other character one token (a regex literal may count as several, which errs on the safe side)
_TOKEN = re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*"""|"(?:[^"\\\n]|\\.)*"|(#[^\n]*)|[\w.%]+|\S')


def count_tokens(text: str, limit: int) -> tuple[int, int | None]:
    """The number of tokens in `text`, counting no further than `limit` + 1, and the offset of
    the first token past the limit (None when the text is within it)."""
    count = 0
    for match in _TOKEN.finditer(text):
        if match.group(1) is not None:
            continue
        count += 1
        if count > limit:
            return count, match.start()
    return count, None
