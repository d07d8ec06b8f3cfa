"""resolve_schemas: the pass that turns enums and schemas into IR: field types (resolve_types),
record cycles (record_cycles), samplers (resolve_samplers), derived expressions, and mentions
(check_mentions)."""

from __future__ import annotations

from typing import Any

from .. import ir
from ..diagnostics import Note
from ..syntax import ast
from .check_mentions import check_mentions
from .context import Context
from .derived_cycles import derived_cycles
from .record_cycles import record_cycles
from .resolve_samplers import conditional_cycles, resolve_sampler
from .resolve_types import SchemaResolver
from .type_depth import check_type_depth
from .typecheck import describe, group, lower_expr


def resolve_schemas(ctx: Context) -> None:
    resolver = SchemaResolver(ctx)
    for name, enum_decl in ctx.enums_ast.items():
        members: dict[str, ast.Name] = {}
        for m in enum_decl.members:
            if m.value in members:
                ctx.sink.error("E0102", f"enum member `{m.value}` appears twice", m.span,
                               notes=[Note(members[m.value].span, "first here")])
            members[m.value] = m
        if not enum_decl.members:
            ctx.sink.error("E0202", f"enum `{name}` has no members", enum_decl.name.span)
        ctx.enums[name] = ir.Enum(name=name, values=tuple(members))

    for cycle in record_cycles(ctx):
        ctx.sink.error("E0210", "record types contain each other: " + " -> ".join(cycle),
                       ctx.schemas_ast[cycle[0]].name.span,
                       help="a record cannot contain itself; generated records must be finite")
    check_type_depth(ctx)

    # phase 1: field types (so that derived expressions can see every field)
    typed: dict[str, list[tuple[ast.Field, ir.Type | None]]] = {}
    for name, decl in ctx.schemas_ast.items():
        fields = []
        seen: dict[str, ast.Field] = {}
        for f in decl.fields:
            if f.name.value in seen:
                ctx.sink.error("E0102", f"field `{f.name.value}` appears twice in {name}", f.name.span,
                               notes=[Note(seen[f.name.value].name.span, "first here")])
                continue
            seen[f.name.value] = f
            fields.append((f, resolver.resolve_type(f.type)))
        typed[name] = fields
        ctx.schemas[name] = ir.Schema(name=name, span=decl.name.span, fields=tuple(
            ir.FieldDef(name=f.name.value, type=t, optional=f.optional, span=f.name.span)
            for f, t in fields if t is not None))

    # phase 2: sources, mentions, derived expressions
    for name, fields in typed.items():
        out = []
        for f, t in fields:
            if t is None:
                continue
            spec: dict[str, Any] = {"name": f.name.value, "type": t, "optional": f.optional, "span": f.name.span}
            if isinstance(f.source, ast.SamplerNode):
                spec["source"] = "sampled"
                spec["sampler"] = resolve_sampler(ctx, f, t, ctx.schemas[name])
            elif f.source is None and isinstance(t, ir.ListType) and isinstance(t.item, ir.RecordType) \
                    and draws_fields(ctx, t.item.name):
                # a list of records with sampled fields is drawn: its item count uniformly
                spec["source"] = "sampled"
                spec["sampler"] = ir.UniformSampler()
            elif isinstance(f.source, ast.Derived):
                spec["source"] = "derived"
                expr, et, ok = lower_expr(ctx, f.source.expr, ctx.schemas[name], "derived field")
                if ok and group(et) not in ("any", "null") and group(et) != group(t):
                    ctx.sink.error("E0209", f"`{f.name.value}` is declared {ir.type_name(t)} but its "
                                   f"expression gives {describe(et)}", f.source.span)
                elif ok and isinstance(t, ir.IntType) and isinstance(et, ir.FloatType):
                    ctx.sink.error("E0209", f"`{f.name.value}` is an int but its expression gives a float",
                                   f.source.span, help="declare it float, or wrap the expression in round(...)")
                spec["derived"] = expr
            elif f.source is None and (isinstance(t, ir.StrType) and t.max_len is None and t.pattern is None
                                       or isinstance(t, ir.ListType) and t.max_items is None):
                what = "string" if isinstance(t, ir.StrType) else "list"
                ctx.sink.warning("W0001", f"the model writes `{f.name.value}` with no upper bound on its "
                                 f"{'length' if what == 'string' else 'item count'}", f.type.span,
                                 help=("generation would run to max_tokens; the plan caps it at "
                                       f"{ir.DEFAULT_MAX_LEN if what == 'string' else ir.DEFAULT_MAX_ITEMS}; "
                                       f"write e.g. {'str(..400)' if what == 'string' else 'list[...](0..5)'}"))
            out.append(ir.FieldDef(**spec))
        ctx.schemas[name] = ir.Schema(name=name, fields=tuple(out), span=ctx.schemas[name].span)
        _report_derived_cycles(ctx, ctx.schemas[name], fields)
        for fd in ctx.schemas[name].fields:
            s = fd.sampler
            if isinstance(s, ir.ConditionalSampler) and ctx.schemas[name].require(s.by).source == "derived":
                ctx.sink.error("E0211", f"`{fd.name}` is drawn by the value of `{s.by}`, which is derived after "
                               "generation", fd.span, help=f"draw `{fd.name}` by a sampled or quota field")
        for cycle in conditional_cycles(ctx.schemas[name]):
            field = ctx.schemas[name].require(cycle[0])
            ctx.sink.error("E0211", "fields are drawn by each other's values: " + " -> ".join(cycle), field.span,
                           help="draw one of them by its own sampler")

    # phase 3: mentions, once every schema's sources are known (a text may mention the items of a
    # drawn list, or a total derived from them)
    for name, fields in typed.items():
        schema = ctx.schemas[name]
        texts = {f.name.value: check_mentions(ctx, f, t, schema) for f, t in fields if t is not None and f.mentions}
        if texts:
            ctx.schemas[name] = schema.copy(fields=tuple(
                fd.copy(mentions=texts[fd.name]) if fd.name in texts else fd for fd in schema.fields))


def draws_fields(ctx: Context, schema_name: str, seen: frozenset[str] = frozenset()) -> bool:
    """Whether a record of this schema has sampled fields (its own, or its nested records')."""
    decl = ctx.schemas_ast.get(schema_name)
    if decl is None or schema_name in seen:
        return False
    for f in decl.fields:
        if isinstance(f.source, ast.SamplerNode):
            return True
        inner = f.type.item if isinstance(f.type, ast.ListType) else f.type
        if f.source is None and isinstance(inner, ast.NamedType) \
                and draws_fields(ctx, inner.name.value, seen | {schema_name}):
            return True
    return False


def _report_derived_cycles(ctx: Context, schema: ir.Schema, fields: list[tuple[ast.Field, ir.Type | None]]) -> None:
    """Derived fields that need each other's values: no record could ever be derived."""
    spans = {f.name.value: f.source.span for f, _ in fields if isinstance(f.source, ast.Derived)}
    for cycle in derived_cycles(schema):
        others = [Note(spans[n], f"`{n}` is derived here") for n in dict.fromkeys(cycle[1:-1])]
        shown = " -> ".join(cycle)
        if len(cycle) == 2:
            ctx.sink.error("E0209", f"`{cycle[0]}` is derived from itself", spans[cycle[0]],
                           help="derive it from fields that are written or sampled")
            continue
        ctx.sink.error("E0209", f"derived fields depend on each other: {shown}", spans[cycle[0]], notes=others,
                       help="derive one of them from fields that are written or sampled")
