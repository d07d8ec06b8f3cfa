"""check_request_sizes: every request a block makes fits the limit a plan is run under.

The plan asks the engine for as many tokens as the longest JSON text its bounds allow (one token
per character, plus TOKEN_MARGIN), and `synthc run plan.json` refuses a plan
asking for more than validate_plan.MAX_TOKENS. `str(1..100000000)` on a model-written field
would compile to such a plan, or run for hours before failing; it is refused here, at the
bound that causes it, with the limit named."""

from __future__ import annotations

from .. import ir
from ..sema.context import Context
from ..source import Span
from .json_schema import SchemaBuilder
from .validate_plan import MAX_TOKENS

# JSON punctuation and escapes can make a value longer than its characters; this margin covers them.
TOKEN_MARGIN = 16
MAX_VALUE_CHARS = MAX_TOKENS - TOKEN_MARGIN  # the longest JSON text one request may ask for


def _requests(ctx: Context, g: ir.Generate, schema: ir.Schema) -> list[tuple[str, ir.Schema, tuple[str, ...]]]:
    """(what, the schema a request writes, the fields it leaves out) for each request a
    record of the block takes, as build_plan makes them."""
    quota = tuple(q.field for q in g.quotas)
    if not g.steps:
        return [(f"a record of generate {g.id}", schema, quota)]
    out = []
    for step in g.steps:
        if step.turns:  # a dialogue: each turn writes one message's content
            t = schema.require(step.fields[0]).type
            assert isinstance(t, ir.ListType) and isinstance(t.item, ir.RecordType)  # check_steps made sure
            message = ctx.schemas[t.item.name]
            out.append((f"a turn of dialogue `{step.fields[0]}`", message,
                        tuple(f.name for f in message.fields if f.name != "content")))
        else:
            keep = step.fields[:1] if step.candidates else step.fields
            out.append((f"the step writing {', '.join(step.fields)}", schema,
                        tuple(f.name for f in schema.fields if f.name not in keep) + quota))
    return out


def _longest(ctx: Context, builder: SchemaBuilder, schema: ir.Schema,
             exclude: tuple[str, ...]) -> tuple[ir.Schema, ir.FieldDef, int] | None:
    """The model-written field whose worst case is the longest, followed into the records
    it holds down to the field whose own bounds make it long."""
    best = None
    fields = [f for f in schema.fields if f.source == "model" and f.name not in exclude]
    while fields:
        field = max(fields, key=lambda f: builder.value(f.type)[1])
        best = (schema, field, builder.value(field.type)[1])
        inner = field.type
        while isinstance(inner, ir.ListType):
            inner = inner.item
        if not isinstance(inner, ir.RecordType):
            break
        schema = ctx.schemas[inner.name]
        fields = [f for f in schema.fields if f.source == "model"]
    return best


def _type_span(ctx: Context, schema: ir.Schema, field: ir.FieldDef) -> Span | None:
    """The field's type as written (the bounds to change), else its name."""
    decl = ctx.schemas_ast.get(schema.name)
    found = next((f for f in decl.fields if f.name.value == field.name), None) if decl else None
    return found.type.span if found is not None else field.span


def check_request_sizes(ctx: Context, g: ir.Generate, schema: ir.Schema) -> bool:
    """False (after a located error) when a request of the block would ask for more tokens
    than a plan may."""
    if schema.name in ctx.unwalkable or any(not e.values for e in ctx.enums.values()):
        return True  # reported already: too deep or recursive to walk, or an enum with no values
    builder = SchemaBuilder(lambda n: ctx.schemas[n])
    ok = True
    for what, written, exclude in _requests(ctx, g, schema):
        _, chars = builder.record(written, exclude=exclude)
        if chars <= MAX_VALUE_CHARS:
            continue
        ok = False
        longest = _longest(ctx, builder, written, exclude)
        if longest is not None and longest[2] > MAX_VALUE_CHARS:
            owner, field, alone = longest
            ctx.sink.error("E0202", f"`{owner.name}.{field.name}` ({ir.type_text(field.type)}) may be written "
                           f"as {alone:,} characters of JSON; a request asks for at most {MAX_TOKENS:,} tokens",
                           _type_span(ctx, owner, field),
                           help=f"lower its upper bound: a plan allows one token for each character of the "
                                f"longest value the bounds permit, and at most {MAX_VALUE_CHARS:,} in all")
        else:
            shown = f", the longest `{longest[1].name}` ({longest[2]:,})" if longest else ""
            ctx.sink.error("E0202", f"{what} may be written as {chars:,} characters of JSON{shown}; a request "
                           f"asks for at most {MAX_TOKENS:,} tokens", g.span,
                           help="tighten the length bounds of its fields, or write the record in steps")
    return ok
