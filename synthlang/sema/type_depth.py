"""check_type_depth: no type nests lists and records more than MAX_TYPE_DEPTH levels deep.

Records and their JSON Schemas are walked recursively everywhere after the checker: building
the plan, writing and reading it (`synthc run plan.json`), validating records, the journal and
the output writers. A type nested deeper than this would run those walks out of stack, or
make a plan that a run refuses; the limit is the one expressions and the syntax already have."""

from __future__ import annotations

from ..syntax import ast
from ..syntax.parser import MAX_DEPTH
from .context import Context
from .record_cycles import components, record_graph

MAX_TYPE_DEPTH = MAX_DEPTH


def _field_depth(t: ast.TypeExpr, depths: dict[str, int]) -> int:
    """How many levels a field's type adds: one per list, and a record's own depth."""
    lists = 0
    while isinstance(t, ast.ListType):
        lists += 1
        t = t.item
    inner = depths.get(t.name.value, 0) if isinstance(t, ast.NamedType) else 0
    return lists + inner


def check_type_depth(ctx: Context) -> None:
    """Report the first schema, innermost first, that nests past the limit (the schemas that
    contain it are too deep for the same reason, and are not reported again), and note in
    ctx.unwalkable every schema too deep or recursive to walk. Records on a cycle count as
    one level: the cycle has an error of its own."""
    graph = record_graph(ctx)
    depths: dict[str, int] = {}
    for part in components(graph):
        cyclic = len(part) > 1 or part[0] in graph[part[0]]
        for name in part:
            decl = ctx.schemas_ast[name]
            inner_bad = any(r in ctx.unwalkable for r in graph[name])
            if cyclic or inner_bad:
                ctx.unwalkable.add(name)
            if cyclic:
                depths[name] = 1
                continue
            deepest = max(decl.fields, key=lambda f: _field_depth(f.type, depths), default=None)
            depths[name] = 1 + (_field_depth(deepest.type, depths) if deepest is not None else 0)
            if depths[name] > MAX_TYPE_DEPTH:
                ctx.unwalkable.add(name)
                if not inner_bad and deepest is not None:
                    ctx.sink.error("E0210", f"`{name}.{deepest.name.value}` nests lists and records "
                                   f"{depths[name]} levels deep; at most {MAX_TYPE_DEPTH} are allowed",
                                   deepest.type.span,
                                   help="flatten the type: records and lists this deep are more than a plan, "
                                        "a run's journal or an output format can hold")
