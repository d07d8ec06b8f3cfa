"""The decoding regex for a `mentions` field and the spans of the mentioned values."""

from __future__ import annotations

import re
from typing import Any

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


def surface(mc: MentionConstraint, name: str, value: Any) -> str:
    """How a mentioned value is written in the text: a rounded float with its decimals (12.50)."""
    decimals = mc.decimals.get(name)
    if decimals is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{decimals}f}"
    return str(value)


def _get(node: Any, parts: list[str]) -> Any:
    for part in parts:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _list_at(parent: dict, parts: list[str]) -> int | None:
    """How many parts lead to the list a mentioned path goes through; None if none does."""
    node: Any = parent
    for i, part in enumerate(parts[:-1]):
        node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, list):
            return i + 1
    return None


def mention_values(mc: MentionConstraint, parent: dict) -> list[tuple[str, str]]:
    """(label, text) of every mentioned value, in the order the text holds them. Consecutive
    paths into one list (`items.product, items.qty`) go item by item: each item's product then
    its quantity, labelled `items[0].product`, `items[0].qty`, `items[1].product`, ..."""
    out: list[tuple[str, str]] = []
    paths = [name.split(".") for name in mc.values]
    i = 0
    while i < len(paths):
        k = _list_at(parent, paths[i])
        if k is None:
            out.append((mc.values[i], surface(mc, mc.values[i], _get(parent, paths[i]))))
            i += 1
            continue
        prefix, j = paths[i][:k], i + 1
        while j < len(paths) and paths[j][:k] == prefix and _list_at(parent, paths[j]) == k:
            j += 1
        items = _get(parent, prefix) or []
        for n, item in enumerate(items):
            for name, path in zip(mc.values[i:j], paths[i:j]):
                out.append((f"{'.'.join(prefix)}[{n}].{'.'.join(path[k:])}", surface(mc, name, _get(item, path[k:]))))
        i = j
    return out


_ITEM_LABEL = re.compile(r"^(.*?)\[([0-9]+)\]\.(.*)$")


def span_entry(label: str, start: int, end: int) -> dict[str, Any]:
    """A span as `_meta.spans` holds it: the mentioned path (the entity type a tagger learns)
    and, for a list's item, which item (`items[2].qty` -> field `items.qty`, item 2)."""
    m = _ITEM_LABEL.match(label)
    if m is None:
        return {"field": label, "start": start, "end": end}
    return {"field": f"{m.group(1)}.{m.group(3)}", "item": int(m.group(2)), "start": start, "end": end}
