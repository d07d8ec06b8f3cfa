"""The decoding regex for a `mentions` field and the spans of the mentioned values."""

from __future__ import annotations

import math
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


def gap_bounds(mc: MentionConstraint, values: list[str]) -> tuple[int, int] | None:
    """Each of the len(values)+1 gaps gets lo..hi characters so that the whole text always
    lies within the field's length bounds. None if the values cannot fit."""
    total = sum(len(v) for v in values)
    gaps = len(values) + 1
    room = mc.max_len - total
    if room < 0:
        return None
    hi = room // gaps
    lo = math.ceil(max(0, mc.min_len - total) / gaps)
    return (lo, hi) if lo <= hi else None


def mention_pattern(mc: MentionConstraint, values: list[str]) -> str | None:
    bounds = gap_bounds(mc, values)
    if bounds is None:
        return None
    gap = f"{mc.gap_class}{{{bounds[0]},{bounds[1]}}}"
    return "^" + gap + gap.join(escape(v) for v in values) + gap + "$"


def find_spans(mc: MentionConstraint, text: str, values: list[str]) -> list[tuple[int, int]] | None:
    """Spans of the values, in order, in a text the constraint produced; None if absent."""
    bounds = gap_bounds(mc, values)
    if bounds is None:
        return None
    gap = f"{mc.gap_class}{{{bounds[0]},{bounds[1]}}}"
    pattern = gap + gap.join(f"({re.escape(v)})" for v in values) + gap
    m = re.fullmatch(pattern, text)
    if m is None:
        return None
    return [m.span(i + 1) for i in range(len(values))]
