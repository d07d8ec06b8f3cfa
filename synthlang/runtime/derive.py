"""Derived fields of one record: each expression evaluated in its parent record, in every item
where a list lies on its path, in the plan's order (what a field reads comes before it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import ir
from ..expr import EvalError, Unknown, evaluate
from ..plan.model import DerivedField


class DeriveError(Exception):
    def __init__(self, path: tuple[str, ...], message: str):
        super().__init__(message)
        self.path, self.message = path, message


def parents_of(record: dict, path: tuple[str, ...]) -> Iterator[dict]:
    """The records that hold the field at `path` (its last part): the record itself, a nested
    record, or every item of a list on the way."""
    nodes: list[Any] = [record]
    for part in path[:-1]:
        nxt: list[Any] = []
        for node in nodes:
            value = node.get(part) if isinstance(node, dict) else None
            nxt.extend(value if isinstance(value, list) else [value])
        nodes = nxt
    yield from (n for n in nodes if isinstance(n, dict))


def _is_int_field(schemas: dict[str, ir.Schema], schema: ir.Schema, path: tuple[str, ...]) -> bool:
    node = schema
    for part in path[:-1]:
        t = node.require(part).type
        if isinstance(t, ir.ListType):
            t = t.item
        if not isinstance(t, ir.RecordType):
            return False
        node = schemas[t.name]
    f = node.field(path[-1])
    return f is not None and isinstance(f.type, ir.IntType)


def derive(derived: tuple[DerivedField, ...], record: dict, schemas: dict[str, ir.Schema], schema: ir.Schema,
           early_only: bool = False) -> None:
    """Sets every derived field of `record` (only those known before the model writes with
    `early_only`); raises DeriveError for one whose expression fails (a division by zero)."""
    for d in derived:
        if early_only and not d.early:
            continue
        as_int = _is_int_field(schemas, schema, d.path)
        for parent in parents_of(record, d.path):
            try:
                value = evaluate(d.expr, parent)
            except (EvalError, Unknown, TypeError, ValueError, OverflowError) as exc:
                raise DeriveError(d.path, str(exc)) from None
            if isinstance(value, float) and value.is_integer() and as_int:
                value = int(value)
            parent[d.path[-1]] = value
