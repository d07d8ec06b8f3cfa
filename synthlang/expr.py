"""Evaluating compiled expressions (checks, derived fields) against a record.

Expressions are data (ir.Expr); nothing here runs user code. `evaluate` raises Unknown when
a referenced field is not in the record, which the compiler uses to decide statically
whether a quota cell can ever pass a check.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from . import ir, regexes
from .values import INT_MAX


class Unknown(Exception):
    """A referenced value is not known (partial evaluation)."""


class EvalError(Exception):
    """A runtime error inside an expression, e.g. division by zero."""


def lookup(record: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at `path`; through a list, one value per item (`items.qty`)."""
    value: Any = record
    for i, part in enumerate(path):
        if value is None:
            return None
        if isinstance(value, list):
            return [lookup(item, path[i:]) for item in value]
        if not isinstance(value, Mapping) or part not in value:
            raise Unknown(".".join(path))
        value = value[part]
    return value


def _index(expr: ir.Expr, record: Mapping[str, Any]) -> Any:
    items = evaluate(expr.args[0], record)
    at = evaluate(expr.args[1], record)
    if items is None or at is None:
        return None
    if not isinstance(items, list) or isinstance(at, bool) or not isinstance(at, int):
        raise EvalError("only a list is indexed, and by an int")
    if not -len(items) <= at < len(items):
        raise EvalError(f"index {at} is out of range for {len(items)} items")
    return lookup(items[at], expr.path) if expr.path else items[at]


def _each(expr: ir.Expr, record: Mapping[str, Any]) -> Any:
    items = evaluate(expr.args[1], record)
    if items is None:
        return None
    if not isinstance(items, list):
        raise EvalError("`for ... in` needs a list")
    return [evaluate(expr.args[0], {**record, expr.value: item}) for item in items]


def _item_by_item(op: str, left: Any, right: Any) -> list:
    """Arithmetic over lists, item by item (a number on one side goes with every item)."""
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            raise EvalError(f"`{op}` over lists of {len(left)} and {len(right)} items")
        pairs = list(zip(left, right))
    elif isinstance(left, list):
        pairs = [(x, right) for x in left]
    else:
        pairs = [(left, y) for y in right]
    return [None if a is None or b is None else _arith(op, a, b) for a, b in pairs]


def _num_args(name: str, args: list) -> list:
    for a in args:
        if isinstance(a, bool) or not isinstance(a, (int, float)):
            raise EvalError(f"{name}() expects numbers")
    return args


def _call(name: str, args: list) -> Any:
    if any(a is None for a in args):
        return None
    match name:
        case "len":
            return len(args[0])
        case "lower":
            return args[0].lower()
        case "upper":
            return args[0].upper()
        case "round":
            if len(args) == 1:
                return int(round(args[0]))
            return round(float(args[0]), int(args[1]))
        case "abs":
            return abs(args[0])
        case "min" | "max":
            items = args[0] if len(args) == 1 and isinstance(args[0], list) else args
            if not items:
                return None
            return (min if name == "min" else max)(_num_args(name, list(items)))
        case "sum":
            return sum(_num_args(name, list(args[0])))
        case "count":
            if len(args) == 2:
                return args[0].count(args[1]) if isinstance(args[0], (str, list)) else 0
            return len(args[0])
    raise EvalError(f"unknown function {name}")


_COMPARE = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def evaluate(expr: ir.Expr, record: Mapping[str, Any]) -> Any:
    op = expr.op
    if op == "lit":
        return expr.value
    if op == "ref":
        return lookup(record, expr.path or ())
    if op == "list":
        return [evaluate(a, record) for a in expr.args]
    if op == "index":
        return _index(expr, record)
    if op == "each":
        return _each(expr, record)
    if op == "and":
        return _and_or(expr, record, stop=False)
    if op == "or":
        return _and_or(expr, record, stop=True)
    if op == "not":
        return not _truthy(evaluate(expr.args[0], record))
    if op == "call":
        args = [evaluate(a, record) for a in expr.args]
        try:
            return _finite(_call(expr.value, args))
        except (OverflowError, ValueError, TypeError, AttributeError) as exc:
            raise EvalError(f"{expr.value}(): {exc}") from None
    if op == "matches":
        value = evaluate(expr.args[0], record)
        return value is not None and regexes.search(expr.value, str(value))
    if op == "neg":
        value = evaluate(expr.args[0], record)
        return None if value is None else _finite(-value)
    left = evaluate(expr.args[0], record)
    right = evaluate(expr.args[1], record)
    if op in ("==", "!="):
        return _COMPARE[op](left, right)
    if op in ("in", "not_in"):
        found = left in right if right is not None else False
        return found if op == "in" else not found
    if op == "contains":
        if left is None or right is None:
            return False
        return right in left
    if left is None or right is None:
        return None
    if op in _COMPARE:
        return _COMPARE[op](left, right)
    if (isinstance(left, list) or isinstance(right, list)) and not (op == "+" and isinstance(left, list)
                                                                  and isinstance(right, list)):
        return _item_by_item(op, left, right)
    return _arith(op, left, right)


def _arith(op: str, left: Any, right: Any) -> Any:
    if isinstance(left, list) != isinstance(right, list):
        raise EvalError(f"`{op}` needs numbers")
    try:
        match op:
            case "+":
                return _finite(left + right)
            case "-":
                return _finite(left - right)
            case "*":
                return _finite(left * right)
            case "/":
                return _finite(left / right)
            case "%":
                return _finite(left % right)
    except ZeroDivisionError:
        raise EvalError("division by zero") from None
    except OverflowError:
        raise EvalError("number out of range") from None
    raise EvalError(f"unknown operator {op}")  # pragma: no cover


def _finite(value: Any) -> Any:
    """Arithmetic never yields inf or nan, nor an integer past 64 bits: an overflowing
    expression is an error, like 1/0."""
    if isinstance(value, float) and not math.isfinite(value):
        raise EvalError("the result is not a finite number")
    if isinstance(value, int) and not isinstance(value, bool) and not -INT_MAX <= value <= INT_MAX:
        raise EvalError("the result does not fit in a 64-bit integer")
    return value


def _truthy(value: Any) -> bool:
    return value is True or (value not in (None, False) and bool(value))


def _and_or(expr: ir.Expr, record: Mapping[str, Any], stop: bool) -> bool:
    """and (stop=False) / or (stop=True) that tolerates an Unknown side when the other decides."""
    unknown = False
    for arg in expr.args:
        try:
            if _truthy(evaluate(arg, record)) is stop:
                return stop
        except Unknown:
            unknown = True
    if unknown:
        raise Unknown("partial")
    return not stop


def passes(expr: ir.Expr, record: Mapping[str, Any]) -> bool:
    """True when the check holds for a complete record (errors count as failure)."""
    try:
        return _truthy(evaluate(expr, record))
    except (EvalError, TypeError, Unknown, ValueError, OverflowError):
        return False


def to_source(expr: ir.Expr) -> str:
    """A readable rendering of an expression, for rejection reasons and reports."""
    op = expr.op
    if op == "lit":
        if isinstance(expr.value, str):
            return json.dumps(expr.value, ensure_ascii=False)
        return str(expr.value).lower() if isinstance(expr.value, bool) else str(expr.value)
    if op == "ref":
        return ".".join(expr.path or ())
    if op == "list":
        return "[" + ", ".join(to_source(a) for a in expr.args) + "]"
    if op == "call":
        return f"{expr.value}(" + ", ".join(to_source(a) for a in expr.args) + ")"
    if op == "not":
        return f"not {to_source(expr.args[0])}"
    if op == "neg":
        return f"-{to_source(expr.args[0])}"
    if op == "matches":
        return f"{to_source(expr.args[0])} matches /{expr.value}/"
    if op == "index":
        tail = "".join("." + p for p in expr.path or ())
        return f"{to_source(expr.args[0])}[{to_source(expr.args[1])}]{tail}"
    if op == "each":
        return f"[{to_source(expr.args[0])} for {expr.value} in {to_source(expr.args[1])}]"
    word = {"not_in": "not in"}.get(op, op)
    return f"({to_source(expr.args[0])} {word} {to_source(expr.args[1])})"

