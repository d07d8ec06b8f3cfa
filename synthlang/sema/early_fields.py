"""early_fields: the fields of a record known before the model writes: sampled ones (a drawn
list's items included) and derived ones that read nothing else (`total = sum(items.qty)`).
Prompts may show them and texts may mention them; the runtime derives them right after drawing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .. import ir

SchemaLookup = Callable[[str], "ir.Schema | None"]


def reads(e: ir.Expr, bound: frozenset[str] = frozenset()) -> Iterator[tuple[str, ...]]:
    """The field paths an expression reads, from its record (names a comprehension binds are not
    fields: `i.qty` in `... for i in items` reads `items`, through `i`)."""
    match e.op:
        case "ref" if e.path:
            if e.path[0] not in bound:
                yield e.path
        case "each":
            yield from reads(e.args[1], bound)
            yield from reads(e.args[0], bound | {e.value})
        case "index":
            base = e.args[0]
            if base.op == "ref" and base.path and base.path[0] not in bound:
                yield base.path + tuple(e.path or ())
            yield from reads(e.args[1], bound)
        case _:
            for a in e.args:
                yield from reads(a, bound)


def early_fields(schema: ir.Schema, schemas: SchemaLookup, given: frozenset[str] = frozenset()) -> set[str]:
    """The names of the fields of `schema` known before the model writes; `given`: names known
    anyway (a block's quota fields)."""
    known = set(given) | {f.name for f in schema.fields if f.source == "sampled"}
    changed = True
    while changed:   # a derived field may read another early one
        changed = False
        for f in schema.fields:
            if f.source == "derived" and f.derived is not None and f.name not in known \
                    and all(known_path(schema, p, schemas, known) for p in reads(f.derived)):
                known.add(f.name)
                changed = True
    return known


def known_path(schema: ir.Schema, path: tuple[str, ...], schemas: SchemaLookup, known: set[str]) -> bool:
    """Whether the value at `path` is known before the model writes (`known`: the record's own
    early fields). Inside a drawn list or a nested record, the item's own early fields are."""
    f = schema.field(path[0]) if path else None
    if f is None:
        return False
    if len(path) == 1:
        return f.name in known
    inner = f.type.item if isinstance(f.type, ir.ListType) else f.type
    sub = schemas(inner.name) if isinstance(inner, ir.RecordType) else None
    # a nested record is there before the model writes (its sampled fields are); a list only
    # when it is drawn
    if sub is None or (isinstance(f.type, ir.ListType) and f.name not in known):
        return False
    return known_path(sub, path[1:], schemas, early_fields(sub, schemas))
