"""Derived fields that depend on each other (`a = b + 1`, `b = a - 1`): no order computes them,
so every record would be rejected at run time. Found here, so the checker reports them."""

from __future__ import annotations

from collections.abc import Iterator

from .. import ir


def _refs(e: ir.Expr) -> Iterator[str]:
    """The first names of the paths an expression reads (a field of the record's own scope)."""
    stack = [e]
    while stack:
        node = stack.pop()
        if node.op == "ref" and node.path:
            yield node.path[0]
        stack.extend(node.args)


def derived_cycles(schema: ir.Schema) -> list[list[str]]:
    """Each cycle among the schema's derived fields once, as the names along it with the first
    repeated at the end (`["a", "b", "a"]`), in declaration order of the first field."""
    derived = {f.name: f for f in schema.fields if f.source == "derived" and f.derived is not None}
    edges = {name: [r for r in dict.fromkeys(_refs(f.derived)) if r in derived]
             for name, f in derived.items() if f.derived is not None}
    cycles: list[list[str]] = []
    done: set[str] = set()
    for start in derived:
        if start in done:
            continue
        # depth first with an explicit stack (a schema may hold thousands of fields)
        path: list[str] = [start]
        on_path = {start}
        todo = [iter(edges[start])]
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                name = path.pop()
                on_path.discard(name)
                done.add(name)
                todo.pop()
                continue
            if nxt in on_path:
                cycles.append(path[path.index(nxt):] + [nxt])
                continue
            if nxt in done:
                continue
            path.append(nxt)
            on_path.add(nxt)
            todo.append(iter(edges[nxt]))
    return cycles
