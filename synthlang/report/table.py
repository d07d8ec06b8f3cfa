"""A table for the terminal: columns sized to the width available, long values wrapped inside
their cells, control characters and escape sequences shown as text, never sent."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from ..diagnostics import printable

MIN_COLUMN = 6


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return printable(json.dumps(value, ensure_ascii=False))
    return printable(str(value).replace("\n", " ↵ "))


def render_table(headers: list[str], rows: list[list[Any]], width: int) -> str:
    texts = [[cell_text(v) for v in row] for row in rows]
    n = len(headers)
    natural = [max([len(headers[i])] + [len(r[i]) for r in texts]) for i in range(n)]
    room = max(n * (MIN_COLUMN + 3) + 1, width) - (3 * n + 1)
    widths = list(natural)
    while sum(widths) > room:  # narrow the widest column, one character at a time
        i = max(range(n), key=lambda k: widths[k])
        if widths[i] <= MIN_COLUMN:
            break
        widths[i] -= 1

    def line(left: str, mid: str, right: str) -> str:
        return left + mid.join("─" * (w + 2) for w in widths) + right

    def row_lines(values: list[str]) -> list[str]:
        wrapped = [textwrap.wrap(v, w, break_long_words=True, replace_whitespace=True) or [""]
                   for v, w in zip(values, widths)]
        height = max(len(c) for c in wrapped)
        return ["│" + "│".join(f" {(c[k] if k < len(c) else ''):<{w}} " for c, w in zip(wrapped, widths)) + "│"
                for k in range(height)]

    out = [line("┌", "┬", "┐"), *row_lines(headers), line("├", "┼", "┤")]
    for i, r in enumerate(texts):
        if i:
            out.append(line("├", "┼", "┤"))
        out += row_lines(r)
    out.append(line("└", "┴", "┘"))
    return "\n".join(out)
