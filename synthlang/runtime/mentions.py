"""The decoding regex for a `mentions` field and the spans of the mentioned values."""

from __future__ import annotations

import re

from ..plan.model import MentionConstraint

# Characters that are special in the regex dialects of the engines (Rust `regex` in
# llguidance rejects escapes of anything else, e.g. `\/` or `\ `).
_META = set("\\.+*?()|[]{}^$#&-~")


def escape(value: str) -> str:
    """Escape regex metacharacters only."""
    out = []
    for ch in value:
        if ch in _META:
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        else:
            out.append(ch)
    return "".join(out)


# A mentioned value is never glued to the text around it: the character before it is a space or
# an opening bracket, the one after it a space or punctuation (both inside the gap class).
BEFORE = "[ (]"
AFTER = "[ ,.;:!?)]"
MID_GAP = 40   # at most this much text between two mentioned values; the rest goes after the last


def gap_ranges(mc: MentionConstraint, values: list[str]) -> list[tuple[int, int]] | None:
    """Each of the len(values)+1 gaps' length range, so that the whole text always lies within
    the field's length bounds. A gap between two values needs only its separator (one
    character) and holds at most MID_GAP characters, and text may start with the first value;
    most of the room, and the minimum length, is in the text after the last value (a model that
    has written the values goes on naturally, where one made to write filler before the first
    value writes junk). None if the values cannot fit."""
    total = sum(len(v) for v in values)
    k = len(values) - 1
    room = mc.max_len - total
    need = max(0, mc.min_len - total - k)          # what the text after the last value must add
    if room < k + need:
        return None
    mid_hi = max(1, min(room // (k + 2), MID_GAP, (room - need) // k)) if k else 0
    rest = room - k * mid_hi
    last_hi = max(need, rest - rest // 2)
    return [(0, rest - last_hi)] + [(1, mid_hi)] * k + [(need, last_hi)]


def _gap_patterns(gap_class: str, ranges: list[tuple[int, int]]) -> list[str]:
    def run(a: int, b: int) -> str:
        return f"{gap_class}{{{max(a, 0)},{b}}}" if b > 0 else ""

    def outer(lo: int, hi: int, first: bool) -> str:
        if hi == 0:
            return ""
        body = run(lo - 1, hi - 1) + BEFORE if first else AFTER + run(lo - 1, hi - 1)
        return f"(?:{body})?" if lo == 0 else body

    def middle(lo: int, hi: int) -> str:
        if hi <= 1:
            return " "
        both = AFTER + run(lo - 2, hi - 2) + BEFORE
        return f"(?: |{both})" if lo <= 1 else both

    return [outer(*ranges[0], True)] + [middle(*r) for r in ranges[1:-1]] + [outer(*ranges[-1], False)]


def mention_pattern(mc: MentionConstraint, values: list[str]) -> str | None:
    ranges = gap_ranges(mc, values)
    if ranges is None:
        return None
    gaps = _gap_patterns(mc.gap_class, ranges)
    return "^" + "".join(g + escape(v) for g, v in zip(gaps, values, strict=False)) + gaps[-1] + "$"


def find_spans(mc: MentionConstraint, text: str, values: list[str]) -> list[tuple[int, int]] | None:
    """Spans of the values, in order, in a text the constraint produced; None if absent."""
    ranges = gap_ranges(mc, values)
    if ranges is None:
        return None
    gaps = _gap_patterns(mc.gap_class, ranges)
    pattern = "".join(g + f"({re.escape(v)})" for g, v in zip(gaps, values, strict=False)) + gaps[-1]
    m = re.fullmatch(pattern, text)
    if m is None:
        return None
    return [m.span(i + 1) for i in range(len(values))]
