"""Record types that contain each other (directly or through lists): generated records must be
finite. Also the order in which records contain each other, for the nesting depth
(type_depth.py).

Everything here is iterative: a spec may chain thousands of schemas (`schema R1 { r: R0 }`,
...), far deeper than Python's stack."""

from __future__ import annotations

from collections import deque

from ..syntax import ast
from .context import Context


def record_refs(t: ast.TypeExpr) -> list[str]:
    """The type names a field's type refers to (through any number of lists)."""
    while isinstance(t, ast.ListType):
        t = t.item
    return [t.name.value] if isinstance(t, ast.NamedType) else []


def record_graph(ctx: Context) -> dict[str, list[str]]:
    """Schema name -> the schemas its fields contain, in field order, each once."""
    return {name: list(dict.fromkeys(r for f in decl.fields for r in record_refs(f.type) if r in ctx.schemas_ast))
            for name, decl in ctx.schemas_ast.items()}


def components(graph: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected components (Tarjan's algorithm), each emitted after every
    component it reaches: contained records come before the records that contain them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                part = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    part.append(member)
                    if member == node:
                        break
                out.append(part)
    return out


def record_cycles(ctx: Context) -> list[list[str]]:
    """The cycles to report, each as the names along it with the first repeated at the end
    (`["A", "B", "A"]`): for each schema on a cycle, in declaration order, the shortest cycle
    through it, unless an earlier cycle passed through it already."""
    graph = record_graph(ctx)
    cyclic: dict[str, set[str]] = {}
    for part in components(graph):
        if len(part) > 1 or part[0] in graph[part[0]]:
            members = set(part)
            cyclic.update((m, members) for m in part)
    found: list[list[str]] = []
    reported: set[str] = set()
    for name in ctx.schemas_ast:
        if name in cyclic and name not in reported:
            cycle = _shortest_cycle(graph, name, cyclic[name])
            reported.update(cycle)
            found.append(cycle)
    return found


def _shortest_cycle(graph: dict[str, list[str]], start: str, within: set[str]) -> list[str]:
    """The shortest path from `start` back to itself inside its component (breadth first)."""
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in graph[node]:
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [start] + list(reversed(path[:-1])) + [start]
            if nxt in within and nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"{start} is on no cycle")  # pragma: no cover - the caller checked
