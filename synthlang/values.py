"""Checking and normalising values against IR types: shared by seed loading and the runtime."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import date
from typing import Any

from . import ir, regexes

SchemaLookup = Callable[[str], "ir.Schema | None"]


class ValueError_(Exception):
    """A value does not fit its type; `path` names the field inside nested values."""

    def __init__(self, message: str, path: str = ""):
        super().__init__(message)
        self.message, self.path = message, path


def _clip(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _no_constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not a JSON value")


# how deep what synthc stores itself nests at most (journal lines, result cache entries, a run's
# manifest and evaluation): records nest as deep as their schema, far less than this; a value
# nested deeper would run the recursive walks over it (checks, json.dumps, the writers) out of stack
MAX_STORED_DEPTH = 256
# the largest file synthc writes and reads back whole: a plan, which embeds its seed rows, and a
# run's manifest and evaluation, which grow with its cells and test rows
MAX_STORED_BYTES = 512 * 2**20


def load_json(text: str, max_depth: int | None = None, limit: int | None = None, nan: bool = False) -> Any:
    """json.loads for data from outside (seed and test rows, engine replies) and for what synthc
    stored (with `max_depth` MAX_STORED_DEPTH and `nan`): no integers of thousands of digits, no
    nesting deep enough to exhaust the stack (nor deeper than `max_depth` arrays and objects),
    no more than `limit` characters, no lone surrogates, no NaN or Infinity unless `nan` (Python
    writes them for such a float, so a file synthc wrote may hold them). Raises ValueError
    (json.JSONDecodeError is one) with the reason."""
    if limit is not None and len(text) > limit:
        raise ValueError(f"longer than the limit of {limit} characters ({len(text)})")
    try:
        value = json.loads(text, parse_constant=None if nan else _no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    deep = max_depth is not None and text.count("[") + text.count("{") > max_depth
    if deep or "\\u" in text or not _encodable(text):  # else no value can be too deep or hold a surrogate
        _check_text(value, max_depth)
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(value: Any, max_depth: int | None) -> None:
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("the text holds a lone UTF-16 surrogate, which no output format can store") from None
        elif isinstance(v, (dict, list)):
            if max_depth is not None and depth > max_depth:
                raise ValueError(f"nested deeper than {max_depth} levels")
            stack.extend((x, depth + 1) for x in (list(v.keys()) + list(v.values()) if isinstance(v, dict) else v))


_ASCII_INT = re.compile(r"[+-]?[0-9]+")
INT_MAX = 2**63 - 1   # integers fit in 64 bits, as in every output format


def coerce_text(t: ir.Type, text: str) -> Any:
    """Turn a CSV cell into a value of type t (JSON for lists and records)."""
    match t:
        case ir.IntType():
            digits = text.strip()
            # ASCII digits only: Python's int() also reads `1_0` and `٣` (an Arabic-Indic three)
            if not _ASCII_INT.fullmatch(digits):
                raise ValueError_(f"`{_clip(text)}` is not an integer (digits 0-9, an optional sign)")
            if len(digits.lstrip("+-0")) > 19 or not -INT_MAX <= int(digits) <= INT_MAX:
                raise ValueError_(f"`{_clip(text)}` is out of range for an integer")
            return int(digits)
        case ir.FloatType():
            try:
                value = float(text)
            except ValueError:
                raise ValueError_(f"`{_clip(text)}` is not a number") from None
            if not math.isfinite(value):
                raise ValueError_(f"`{_clip(text)}` is not a finite number")
            return value
        case ir.BoolType():
            low = text.strip().lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            raise ValueError_(f"`{_clip(text)}` is not a boolean (true or false)")
        case ir.ListType() | ir.RecordType():
            try:
                return load_json(text)
            except ValueError as exc:
                raise ValueError_(f"`{_short(text)}` is not JSON (lists and records are written as JSON "
                                  f"in CSV): {exc}") from None
    return text


def check_value(t: ir.Type, value: Any, schemas: SchemaLookup, path: str = "",
                require_generated: bool = True) -> Any:
    """Validate `value` against `t`; return it normalised (dates as ISO text). Raises ValueError_."""
    match t:
        case ir.StrType():
            if not isinstance(value, str):
                raise ValueError_(f"expected a string, got {_short(value)}", path)
            if t.min_len is not None and len(value) < t.min_len:
                raise ValueError_(f"length {len(value)} is below the minimum {t.min_len}", path)
            if t.max_len is not None and len(value) > t.max_len:
                raise ValueError_(f"length {len(value)} is above the maximum {t.max_len}", path)
            if t.pattern is not None and not regexes.fullmatch(t.pattern, value):
                raise ValueError_(f"{_short(value)} does not match /{t.pattern}/", path)
            return value
        case ir.IntType():
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise ValueError_(f"expected an integer, got {_short(value)}", path)
            if not -INT_MAX <= value <= INT_MAX:
                raise ValueError_(f"{_short(value)} does not fit in a 64-bit integer", path)
            _check_bounds(value, t.min, t.max, path)
            return value
        case ir.FloatType():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError_(f"expected a number, got {_short(value)}", path)
            _check_bounds(value, t.min, t.max, path)
            return float(value)
        case ir.BoolType():
            if not isinstance(value, bool):
                raise ValueError_(f"expected true or false, got {_short(value)}", path)
            return value
        case ir.DateType():
            if isinstance(value, date):
                value = value.isoformat()
            if not isinstance(value, str):
                raise ValueError_(f"expected a date, got {_short(value)}", path)
            try:
                parsed = date.fromisoformat(value)
            except ValueError:
                raise ValueError_(f"{_short(value)} is not a date (YYYY-MM-DD)", path) from None
            iso = parsed.isoformat()
            _check_bounds(iso, t.min, t.max, path)
            return iso
        case ir.EnumType() | ir.LiteralType():
            if value not in t.values:
                from .diagnostics import did_you_mean
                hint = did_you_mean(str(value), t.values) if isinstance(value, str) else None
                allowed = ", ".join(t.values[:8]) + (", …" if len(t.values) > 8 else "")
                raise ValueError_(f"{_short(value)} is not one of {allowed}" + (f" ({hint})" if hint else ""), path)
            return value
        case ir.ListType():
            if not isinstance(value, list):
                raise ValueError_(f"expected a list, got {_short(value)}", path)
            if t.min_items is not None and len(value) < t.min_items:
                raise ValueError_(f"{len(value)} items, below the minimum {t.min_items}", path)
            if t.max_items is not None and len(value) > t.max_items:
                raise ValueError_(f"{len(value)} items, above the maximum {t.max_items}", path)
            return [check_value(t.item, v, schemas, f"{path}[{i}]", require_generated) for i, v in enumerate(value)]
        case ir.RecordType():
            schema = schemas(t.name)
            if schema is None:
                raise ValueError_(f"unknown record type {t.name}", path)
            if not isinstance(value, dict):
                raise ValueError_(f"expected a {t.name} record, got {_short(value)}", path)
            return check_record(schema, value, schemas, prefix=path, require_generated=require_generated)
    raise ValueError_(f"unsupported type {t.kind}", path)  # pragma: no cover


def _check_bounds(value, lo, hi, path) -> None:
    if lo is not None and value < lo:
        raise ValueError_(f"{_short(value)} is below the minimum {_short(lo)}", path)
    if hi is not None and value > hi:
        raise ValueError_(f"{_short(value)} is above the maximum {_short(hi)}", path)


def find_in_order(text: str, values: list[str]) -> list[tuple[int, int]] | None:
    """Spans of the values found one after the other in text (each after the previous one),
    or None if one is missing: how real rows' mentions are located."""
    spans, pos = [], 0
    for value in values:
        at = text.find(value, pos)
        if at < 0:
            return None
        spans.append((at, at + len(value)))
        pos = at + len(value)
    return spans


def check_record(schema: ir.Schema, row: dict, schemas: SchemaLookup, prefix: str = "",
                 require_generated: bool = False) -> dict:
    """Validate a record. Fields with a `~` or `=` source may be absent unless require_generated."""
    out: dict = {}
    for f in schema.fields:
        path = f"{prefix}.{f.name}" if prefix else f.name
        if f.name not in row or row[f.name] is None:
            if f.optional or (f.source != "model" and not require_generated):
                out[f.name] = None
                continue
            raise ValueError_("missing" if f.name not in row else "is null but the field is not optional", path)
        out[f.name] = check_value(f.type, row[f.name], schemas, path, require_generated)
    return out


def match_key(values: list) -> str:
    """A hashable key for a list of field values (seed rows indexed by the values they match)."""
    return json.dumps(values, sort_keys=True, default=str)
