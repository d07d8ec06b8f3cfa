"""The values a text mentions, as the text writes them: each mentioned path's value (one per
item through a list), its surface form and its label. The compiler (seed rows) and the runtime
(decoding constraints, spans) read them from here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def surface(decimals_of: Mapping[str, int], name: str, value: Any) -> str:
    """How a mentioned value is written in the text: a rounded float with its decimals (12.50)."""
    decimals = decimals_of.get(name)
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


def mention_values(names: tuple[str, ...], decimals: Mapping[str, int], parent: dict,
                   skip_absent: bool = False) -> list[tuple[str, str]]:
    """(label, text) of every mentioned value, in the order the text holds them. Consecutive
    paths into one list (`items.product, items.qty`) go item by item: each item's product then
    its quantity, labelled `items[0].product`, `items[0].qty`, `items[1].product`, ...
    `skip_absent`: leave out a value the record lacks (a seed row may), else it reads `None`."""
    out: list[tuple[str, Any]] = []
    paths = [name.split(".") for name in names]
    i = 0
    while i < len(paths):
        k = _list_at(parent, paths[i])
        if k is None:
            out.append((names[i], _get(parent, paths[i])))
            i += 1
            continue
        prefix, j = paths[i][:k], i + 1
        while j < len(paths) and paths[j][:k] == prefix and _list_at(parent, paths[j]) == k:
            j += 1
        items = _get(parent, prefix) or []
        for n, item in enumerate(items):
            for path in paths[i:j]:
                out.append((f"{'.'.join(prefix)}[{n}].{'.'.join(path[k:])}", _get(item, path[k:])))
        i = j
    return [(label, surface(decimals, path_of(label), v)) for label, v in out if not (skip_absent and v is None)]


def path_of(label: str) -> str:
    """The mentioned path a label is of: `items[2].qty` -> `items.qty`."""
    m = _ITEM_LABEL.match(label)
    return label if m is None else f"{m.group(1)}.{m.group(3)}"


_ITEM_LABEL = re.compile(r"^(.*?)\[([0-9]+)\]\.(.*)$")


def span_entry(label: str, start: int, end: int) -> dict[str, Any]:
    """A span as `_meta.spans` holds it: the mentioned path (the entity type a tagger learns)
    and, for a list's item, which item (`items[2].qty` -> field `items.qty`, item 2)."""
    m = _ITEM_LABEL.match(label)
    if m is None:
        return {"field": label, "start": start, "end": end}
    return {"field": path_of(label), "item": int(m.group(2)), "start": start, "end": end}


def value_at(parent: dict, label: str) -> Any:
    """The value a label names: `total`, `items[2].qty`."""
    m = _ITEM_LABEL.match(label)
    if m is None:
        return _get(parent, label.split("."))
    items = _get(parent, m.group(1).split("."))
    at = int(m.group(2))
    return _get(items[at], m.group(3).split(".")) if isinstance(items, list) and at < len(items) else None
