"""check_quota: a `quota FIELD { VALUE: SHARE, ... }` line of a generate block, checked: the
field has a finite set of values (an enum, a literal union, a bool, or an int with both bounds
and at most MAX_QUOTA_INTS values), every value has a share, and the shares add up."""

from __future__ import annotations

import math
import unicodedata
from typing import Any, cast

from .. import ir
from ..diagnostics import Note, did_you_mean
from ..syntax import ast
from .context import Context

MAX_QUOTA_INTS = 1_000  # values of an int field a quota can list (each is a cell)
QUOTA_HELP = "quotas go on enum, literal-union, bool or bounded int fields (`int(1..5)`)"


def quota_options(t: ir.Type) -> tuple[tuple[Any, ...] | None, str]:
    """(the values a quota on a field of type `t` must cover, or None; why there are none).
    An int with both bounds and at most MAX_QUOTA_INTS values has a finite set, as an enum has."""
    if isinstance(t, ir.IntType):
        if t.min is None or t.max is None:
            return None, f"{ir.type_text(t)} has no finite set of values; give it both bounds, e.g. `int(1..5)`"
        size = t.max - t.min + 1
        if size > MAX_QUOTA_INTS:
            return None, f"{ir.type_text(t)} has {size:,} values; a quota lists at most {MAX_QUOTA_INTS:,}"
        return tuple(range(t.min, t.max + 1)), ""
    return ir.options_of(t), f"{ir.type_name(t)} has no finite set of values"


def _is_option(value: Any, options: tuple[Any, ...]) -> bool:
    """Whether a quota key is one of the options, type for type: `1` is no value of a bool
    (though 1 == True in Python), `true` none of an int."""
    return any(type(value) is type(o) and value == o for o in options)


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _option_help(value: Any, options: tuple[Any, ...]) -> str | None:
    if options and isinstance(options[0], int) and not isinstance(options[0], bool):
        return f"the values are the whole numbers {options[0]}..{options[-1]}"
    if isinstance(value, str):
        same = [o for o in options if isinstance(o, str) and _nfkc(o) == _nfkc(value)]
        if same:
            return f"`{value}` and the value `{same[0]}` look alike but are different Unicode text"
    return did_you_mean(_shown(value), [_shown(o) for o in options])


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def check_quota(ctx: Context, q: ast.Quota, schema: ir.Schema, count: int | None) -> ir.Quota | None:
    """The quota line as IR, or None after its diagnostics: a field that can carry one, every
    value of it given a share, the shares in one unit adding up."""
    sink = ctx.sink
    field = schema.field(q.field.value)
    if field is None:
        sink.error("E0101", f"unknown field `{q.field.value}` in {schema.name}", q.field.span,
                   help=did_you_mean(q.field.value, [f.name for f in schema.fields]))
        return None
    options, why = quota_options(field.type)
    if field.source == "derived" or options is None:
        why = "it is derived after generation" if field.source == "derived" else why
        sink.error("E0401", f"`{field.name}` cannot carry a quota: {why}", q.field.span, help=QUOTA_HELP)
        return None
    if field.source == "sampled":
        sink.warning("W0003", f"the quota decides `{field.name}`; its sampler is not used", q.field.span)
    values, shares, units = [], [], set()
    seen: dict[Any, Any] = {}
    for e in q.entries:
        key = e.key
        value = key.value  # a string, a bool, an int or an ident's name
        if not _is_option(value, options):
            sink.error("E0402", f"`{_shown(value)}` is not a value of {ir.type_text(field.type)}", key.span,
                       help=_option_help(value, options))
            continue
        if value in seen:
            sink.error("E0102", f"`{value}` has two shares", key.span, notes=[Note(seen[value], "first here")])
            continue
        seen[value] = key.span
        if e.share.kind == "percent":
            units.add("percent")
        elif e.share.kind == "int":
            units.add("count")
        else:
            sink.error("E0403", "a share is a percentage (25%) or a whole number of records", e.share.span)
            continue
        if e.share.value < 0:
            sink.error("E0403", "a share cannot be negative", e.share.span)
            continue
        values.append(value)
        shares.append(float(e.share.value))
    missing = [o for o in options if o not in seen]
    if missing:
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        shown = ", ".join(_shown(m) for m in missing[:10]) + more
        sink.error("E0402", f"the quota on `{field.name}` does not cover {shown}", q.span,
                   help="give every value a share (0% is allowed)")
    if len(units) > 1:
        sink.error("E0403", "mixing percentages and record counts in one quota", q.span,
                   help="use percentages that sum to 100%, or counts that sum to `count`")
        return None
    if missing or len(values) != len(q.entries):
        return None
    unit = units.pop() if units else "percent"
    total = sum(shares)
    if unit == "percent" and not math.isclose(total, 100.0, abs_tol=1e-9):
        # as many digits as it takes to show it is not 100 (99.99999%, not a rounded 100%)
        shown = next((t for t in (_trimmed(f"{total:.{d}f}") for d in range(12)) if t != "100"), f"{total!r}")
        sink.error("E0403", f"the quota on `{field.name}` sums to {shown}%, not 100%", q.span,
                   help="make the shares add up to exactly 100%, e.g. by giving the last one what is left")
        return None
    if unit == "count" and count is not None and total != count:
        sink.error("E0403", f"the quota on `{field.name}` sums to {total:g} records, but `count` is {count}", q.span)
        return None
    return ir.Quota(field=field.name, values=tuple(values), shares=tuple(shares), unit=cast(ir.QuotaUnit, unit))


def _trimmed(number: str) -> str:
    """`99.990` as `99.99`, `100.0` as `100`; a whole number stays as it is."""
    return number.rstrip("0").rstrip(".") if "." in number else number
