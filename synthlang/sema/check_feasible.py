"""never_passes: whether a `check` is false for every record its schema's bounds allow, and why.

A check runs on a record that has already been validated against its schema (derived fields
included), so every number lies in its field's range and every text and list in its length
range. Evaluating the check over those ranges instead of values (interval arithmetic) shows
when no record can pass it: `len(text) > 100` on `text: str(5..50)`. Such a block can never be
filled, however many attempts a run makes, so the checker says so at once.

The analysis only ever answers "never" when that is certain: anything it does not model
(regexes, text functions, division) counts as possibly true and possibly false. A null (an
optional field left empty) makes an ordering comparison false, as at run time."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import ir
from ..expr import to_source
from ..regexes import width
from .context import Context

INF = math.inf


@dataclass(frozen=True)
class _Range:
    """The numbers an expression can take, and whether it can be null."""

    lo: float
    hi: float
    null: bool = False

    def text(self) -> str:
        if self.lo == self.hi:
            return f"always {_num(self.lo)}"
        if self.lo == -INF:
            return f"at most {_num(self.hi)}"
        if self.hi == INF:
            return f"at least {_num(self.lo)}"
        return f"between {_num(self.lo)} and {_num(self.hi)}"


_ANY = _Range(-INF, INF, True)


@dataclass(frozen=True)
class _Truth:
    """Whether an expression can be true and whether it can be false; `why` says what makes
    it never true, for the message."""

    can_true: bool
    can_false: bool
    why: str = ""


_UNKNOWN = _Truth(True, True)


def _bare(source: str) -> str:
    """An expression's text without the parentheses to_source puts around a whole binary one."""
    return source[1:-1] if source.startswith("(") and source.endswith(")") else source


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


class _Ranges:
    def __init__(self, ctx: Context, schema: ir.Schema):
        self.ctx, self.schema = ctx, schema
        self.read: dict[str, ir.FieldDef] = {}  # the fields whose bounds decided, for the help

    def truth(self, e: ir.Expr) -> _Truth:
        match e.op:
            case "lit" if isinstance(e.value, bool):
                return _Truth(e.value, not e.value, "it is the constant false")
            case "not":
                inner = self.truth(e.args[0])
                return _Truth(inner.can_false, inner.can_true, "its operand is always true")
            case "and":
                parts = [self.truth(a) for a in e.args]
                never = next((p for p in parts if not p.can_true), None)
                return _Truth(never is None, any(p.can_false for p in parts), never.why if never else "")
            case "or":
                parts = [self.truth(a) for a in e.args]
                return _Truth(any(p.can_true for p in parts), all(p.can_false for p in parts),
                              "; ".join(p.why for p in parts if p.why))
            case "<" | "<=" | ">" | ">=" | "==" | "!=":
                return self._compare(e)
        return _UNKNOWN

    def _compare(self, e: ir.Expr) -> _Truth:
        a, b = (self.value(x) for x in e.args)
        if a is None or b is None:
            return _UNKNOWN
        op = e.op
        if op in (">", ">="):  # a > b is b < a
            a, b, op = b, a, "<" if op == ">" else "<="
        null = a.null or b.null
        if op == "<":
            can_true, can_false = a.lo < b.hi, a.hi >= b.lo or null
        elif op == "<=":
            can_true, can_false = a.lo <= b.hi, a.hi > b.lo or null
        else:
            overlap = a.lo <= b.hi and b.lo <= a.hi
            single = a.lo == a.hi == b.lo == b.hi and not null
            equal_true, equal_false = overlap or (a.null and b.null), not single
            can_true, can_false = (equal_true, equal_false) if op == "==" else (equal_false, equal_true)
        why = "" if can_true else self._why(e, *(self.value(x) for x in e.args))
        return _Truth(can_true, can_false, why)

    def _why(self, e: ir.Expr, a: _Range | None, b: _Range | None) -> str:
        shown = [f"`{_bare(to_source(x))}` is {r.text()}" for x, r in zip(e.args, (a, b))
                 if r is not None and x.op != "lit"]
        return " and ".join(shown) or f"`{_bare(to_source(e))}` is never true"

    def value(self, e: ir.Expr) -> _Range | None:
        """The range of a numeric expression; None for one that is not a number (or not modelled)."""
        match e.op:
            case "lit" if isinstance(e.value, (int, float)) and not isinstance(e.value, bool):
                return _Range(e.value, e.value)
            case "lit" if e.value is None:
                return _Range(INF, -INF, True)  # null: no number at all
            case "ref":
                found = self._field(e.path or ())
                return _number_range(found[0].type, found[1]) if found else None
            case "call" if e.value in ("len", "count") and len(e.args) == 1 and e.args[0].op == "ref":
                found = self._field(e.args[0].path or ())
                return _length_range(found[0].type, found[1]) if found else None
            case "neg":
                r = self.value(e.args[0])
                return _Range(-r.hi, -r.lo, r.null) if r else None
            case "+" | "-" | "*":
                a, b = self.value(e.args[0]), self.value(e.args[1])
                return _arith(e.op, a, b) if a and b else None
        return None

    def _field(self, path: tuple[str, ...]) -> tuple[ir.FieldDef, bool] | None:
        """The field a path names, and whether it can be null (it, or a record on the way, is
        optional)."""
        schema: ir.Schema | None = self.schema
        optional = False
        f = None
        for part in path:
            f = schema.field(part) if schema is not None else None
            if f is None:
                return None
            optional = optional or f.optional
            schema = self.ctx.schemas.get(f.type.name) if isinstance(f.type, ir.RecordType) else None
        if f is None:
            return None
        self.read[".".join(path)] = f
        return f, optional


def _number_range(t: ir.Type, null: bool) -> _Range | None:
    if isinstance(t, (ir.IntType, ir.FloatType)):
        return _Range(-INF if t.min is None else t.min, INF if t.max is None else t.max, null)
    return None


def _length_range(t: ir.Type, null: bool) -> _Range | None:
    """The lengths a value of type t can have (a null's len is null)."""
    match t:
        case ir.StrType(min_len=lo, max_len=hi, pattern=p):
            wlo, whi = width(p) if p is not None else (0, None)
            lo = max(lo or 0, wlo)
            hi = hi if whi is None else whi if hi is None else min(hi, whi)
            return _Range(lo, INF if hi is None else hi, null)
        case ir.ListType(min_items=lo, max_items=hi):
            return _Range(lo or 0, INF if hi is None else hi, null)
        case ir.EnumType(values=v) | ir.LiteralType(values=v):
            return _Range(min(map(len, v)), max(map(len, v)), null)
        case ir.DateType():
            return _Range(10, 10, null)
    return None


def _arith(op: str, a: _Range, b: _Range) -> _Range:
    null = a.null or b.null
    if op == "+":
        return _Range(a.lo + b.lo, a.hi + b.hi, null)
    if op == "-":
        return _Range(a.lo - b.hi, a.hi - b.lo, null)
    if INF in (abs(a.lo), abs(a.hi), abs(b.lo), abs(b.hi)):
        return _ANY  # inf * 0 has no answer; an unbounded product is not worth modelling
    products = [x * y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    return _Range(min(products), max(products), null)


def never_passes(ctx: Context, check: ir.Expr, schema: ir.Schema) -> tuple[str, str] | None:
    """(why, help) when no record within `schema`'s bounds can pass `check`, else None. `why`
    names the ranges that decide (`len(text)` is at most 50), `help` the bounds they come from."""
    ranges = _Ranges(ctx, schema)
    truth = ranges.truth(check)
    if truth.can_true:
        return None
    bounds = ", ".join(f"`{path}: {ir.type_text(f.type)}{'?' if f.optional else ''}`"
                       for path, f in sorted(ranges.read.items()))
    help = (f"the bounds it reads: {bounds}; loosen the check or widen the bounds" if bounds
            else "remove the check, or write one that some record can pass")
    return truth.why or "it is never true", help
