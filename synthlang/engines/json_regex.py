"""A record's JSON Schema as one regex, for the backends that constrain decoding by regex
(Outlines, on vLLM and on llama.cpp), with the bounds outlines_core leaves out written in.

outlines_core turns a JSON Schema into a regex but drops `minimum` and `maximum`: `int(1..5)`
becomes any integer. Each bounded number is therefore swapped for a placeholder constant before
outlines_core sees the schema, and the placeholder in its regex for an exact regex of the numbers
within the bounds: integers (either bound may be absent, negative ones included) and decimals
written without an exponent."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

_PLACEHOLDER = "x9synthlangbound{}x9"


def json_regex(schema: dict) -> str:
    """Outlines' compact regex for `schema` (no whitespace between JSON tokens), with every
    bounded integer and number matched exactly within its bounds."""
    from outlines_core.json_schema import build_regex_from_schema

    ranges: list[str] = []
    swapped = _swap_bounded(schema, ranges)
    regex = build_regex_from_schema(json.dumps(swapped), whitespace_pattern="")  # properties in their order
    for i, number in enumerate(ranges):
        placeholder = f'"{_PLACEHOLDER.format(i)}"'
        if placeholder not in regex:  # never skip a bound silently
            raise ValueError("outlines_core wrote a constant differently; the numeric bounds cannot be written in")
        regex = regex.replace(placeholder, f"({number})")
    return regex


def _swap_bounded(node: Any, ranges: list[str]) -> Any:
    """The schema with each integer or number node that has a bound replaced by a placeholder
    constant; the exact regex of each is appended to `ranges`."""
    if isinstance(node, list):
        return [_swap_bounded(x, ranges) for x in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if kind in ("integer", "number") and ("minimum" in node or "maximum" in node):
        lo, hi = node.get("minimum"), node.get("maximum")
        ranges.append(integer_range(_int(lo, up=True), _int(hi, up=False)) if kind == "integer"
                      else decimal_range(None if lo is None else Decimal(repr(lo)),
                                         None if hi is None else Decimal(repr(hi))))
        return {"const": _PLACEHOLDER.format(len(ranges) - 1)}
    return {k: _swap_bounded(v, ranges) for k, v in node.items()}


def _int(bound: Any, up: bool) -> int | None:
    """An integer bound from a JSON Schema bound (which may be a float, as 1.5 for `minimum`)."""
    if bound is None:
        return None
    d = Decimal(repr(bound))
    return int(d.to_integral_value(rounding="ROUND_CEILING" if up else "ROUND_FLOOR"))


# ---- integers -----------------------------------------------------------------------------

def integer_range(lo: int | None, hi: int | None) -> str:
    """A regex of exactly the integers from lo to hi as JSON writes them (None: unbounded)."""
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"empty range {lo}..{hi}")
    parts = []
    if lo is None or lo < 0:  # negative numbers: `-` and a magnitude from max(1, -hi) to -lo
        smallest = 1 if hi is None or hi >= 0 else -hi
        parts.append("-" + _naturals(smallest, None if lo is None else -lo))
    if hi is None or hi >= 0:
        parts.append(_naturals(max(lo, 0) if lo is not None else 0, hi))
    return "|".join(parts)


def _naturals(a: int, b: int | None) -> str:
    """Non-negative integers from a to b (None: no end), no leading zeros."""
    top = len(str(b)) if b is not None else len(str(a))
    alternatives = []
    for length in range(len(str(a)), top + 1):
        lo = str(a) if length == len(str(a)) else "1" + "0" * (length - 1)
        hi = str(b) if b is not None and length == len(str(b)) else "9" * length
        alternatives.append(_same_length(lo, hi))
    if b is None:  # every longer number
        alternatives.append(f"[1-9][0-9]{{{len(str(a))},}}")
    return "(?:" + "|".join(alternatives) + ")"


def _same_length(lo: str, hi: str) -> str:
    """Digit strings of one length from lo to hi."""
    n = len(lo)
    if lo == hi:
        return lo
    if lo[1:] == "0" * (n - 1) and hi[1:] == "9" * (n - 1):
        return _digit(lo[0], hi[0]) + (f"[0-9]{{{n - 1}}}" if n > 1 else "")
    if lo[0] == hi[0]:
        return lo[0] + _same_length(lo[1:], hi[1:])
    parts = [lo[0] + _same_length(lo[1:], "9" * (n - 1))]
    if int(hi[0]) - int(lo[0]) > 1:
        parts.append(_digit(str(int(lo[0]) + 1), str(int(hi[0]) - 1)) + f"[0-9]{{{n - 1}}}")
    parts.append(hi[0] + _same_length("0" * (n - 1), hi[1:]))
    return "(?:" + "|".join(parts) + ")"


def _digit(lo: str, hi: str) -> str:
    return lo if lo == hi else f"[{lo}-{hi}]"


# ---- decimals -----------------------------------------------------------------------------

def decimal_range(lo: Decimal | None, hi: Decimal | None) -> str:
    """A regex of the numbers from lo to hi written as JSON numbers without an exponent
    (`3`, `3.25`, `-0.5`)."""
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"empty range {lo}..{hi}")
    parts = []
    if lo is None or lo < 0:
        parts.append("-" + _positive(Decimal(0) if hi is None or hi >= 0 else -hi, None if lo is None else -lo))
    if hi is None or hi >= 0:
        parts.append(_positive(max(lo, Decimal(0)) if lo is not None else Decimal(0), hi))
    return "|".join(parts)


def _split(d: Decimal) -> tuple[int, str]:
    """The integer part and the fraction's digits (no trailing zeros) of a non-negative decimal."""
    text = format(d, "f")
    whole, _, frac = text.partition(".")
    return int(whole), frac.rstrip("0")


def _positive(a: Decimal, b: Decimal | None) -> str:
    """Non-negative decimals from a to b (None: no end)."""
    ia, fa = _split(a)
    if b is not None:
        ib, fb = _split(b)
        if ia == ib:
            inner = _between(fa, fb)
            return f"{ia}" + (f"(?:\\.{inner})?" if not fa else f"\\.{inner}")
    any_fraction = "(?:\\.[0-9]+)?"
    parts = [f"{ia}" + (any_fraction if not fa else f"\\.{_at_least(fa)}")]
    if b is None:
        parts.append(_naturals(ia + 1, None) + any_fraction)
    else:
        if ib - ia > 1:
            parts.append(_naturals(ia + 1, ib - 1) + any_fraction)
        parts.append(f"{ib}" + (f"(?:\\.{_at_most(fb)})?" if fb else "(?:\\.0+)?"))
    return "(?:" + "|".join(parts) + ")"


def _at_least(f: str) -> str:
    """Fraction digits D (one at least) with 0.D >= 0.f; f has no trailing zeros."""
    c, rest = int(f[0]), f[1:]
    parts = [f"[{c + 1}-9][0-9]*"] if c < 9 else []
    parts.append(f"{c}" + (_at_least(rest) if rest else "[0-9]*"))
    return "(?:" + "|".join(parts) + ")"


def _at_most(f: str) -> str:
    """Fraction digits D (one at least) with 0.D <= 0.f."""
    if not f:
        return "0+"
    c, rest = int(f[0]), f[1:]
    parts = [f"[0-{c - 1}][0-9]*"] if c > 0 else []
    parts.append(f"{c}" + (f"(?:{_at_most(rest)})?" if rest else "0*"))
    return "(?:" + "|".join(parts) + ")"


def _between(fa: str, fb: str) -> str:
    """Fraction digits D (one at least) with 0.fa <= 0.D <= 0.fb."""
    if not fa:
        return _at_most(fb)
    c1, c2 = int(fa[0]), int(fb[0])
    if c1 == c2:
        inner = _between(fa[1:], fb[1:])
        return f"{c1}" + (f"(?:{inner})?" if not fa[1:] else inner)
    parts = [f"{c1}" + (_at_least(fa[1:]) if fa[1:] else "[0-9]*")]
    if c2 - c1 > 1:
        parts.append(f"[{c1 + 1}-{c2 - 1}][0-9]*")
    parts.append(f"{c2}" + (f"(?:{_at_most(fb[1:])})?" if fb[1:] else "0*"))
    return "(?:" + "|".join(parts) + ")"
