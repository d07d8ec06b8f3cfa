"""Record types that contain each other (directly or through lists): generated records must be
finite."""

from __future__ import annotations

from ..syntax import ast
from .context import Context


def record_cycle(ctx: Context, name: str, path: list[str]) -> list[str] | None:
    schema = ctx.schemas_ast.get(name)
    if schema is None:
        return None
    for f in schema.fields:
        for ref in _record_refs(f.type):
            if ref == path[0]:
                return path + [ref]
            if ref not in path and ref in ctx.schemas_ast:
                found = record_cycle(ctx, ref, path + [ref])
                if found:
                    return found
    return None


def _record_refs(t: ast.TypeExpr) -> list[str]:
    match t:
        case ast.NamedType(name=n):
            return [n.value]
        case ast.ListType(item=i):
            return _record_refs(i)
    return []
