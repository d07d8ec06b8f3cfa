"""`mentions`: a model-written string that must contain other fields' values verbatim, checked
for feasibility (the values fit the string's length bounds)."""

from __future__ import annotations

from .. import ir
from ..diagnostics import did_you_mean
from ..regexes import width
from ..syntax import ast
from .context import Context
from .early_fields import early_fields, known_path

SCALAR_MENTION_KINDS = ("str", "int", "enum", "literal", "date")


def _max_len_of(t: ir.Type, f_sampler: ir.Sampler | None) -> tuple[int, int | None]:
    """Known (min, max) text length of a sampled scalar value when written out."""
    match t:
        case ir.StrType(min_len=lo, max_len=hi, pattern=p):
            if isinstance(f_sampler, ir.PickSampler):
                lens = [len(str(v)) for v in f_sampler.values]
                return min(lens), max(lens)
            if p is not None:
                wlo, whi = width(p)
                lo = max(lo or 0, wlo)
                hi = whi if hi is None else (hi if whi is None else min(hi, whi))
            return lo or 0, hi
        case ir.EnumType(values=v) | ir.LiteralType(values=v):
            return min(map(len, v)), max(map(len, v))
        case ir.DateType():
            return 10, 10
        case ir.IntType(min=lo, max=hi):
            if lo is not None and hi is not None:
                lens = [len(str(lo)), len(str(hi))]
                return 1, max(lens) + 0
            return 1, None
    return 0, None


def _kind_help(name: str, t: ir.Type) -> str:
    """How to mention what a field of type t means, when t has no one text form."""
    if isinstance(t, ir.FloatType):
        return (f"a float has no one way to be written (0.5, .5, 0.50); derive it with a number of decimals, "
                f"`{name}: float = round(..., 2)`, and it is written with those (12.50), or mention an int or str")
    if isinstance(t, ir.BoolType):
        return f"true and false are not words a text contains; mention an enum or a literal union instead of `{name}`"
    return "mention str, int, enum, literal-union, date or rounded float fields (one value each)"


def _source_example(t: ir.Type | None) -> str:
    if isinstance(t, ir.StrType):
        return "`~ regex`" if t.pattern is not None else '`~ faker("city")` or `~ pick("a", "b")`'
    if isinstance(t, (ir.IntType, ir.DateType, ir.EnumType, ir.LiteralType)):
        return "`~ uniform`"
    return "`~ faker(...)` or `~ regex`" if t is None else "`~ pick(...)`"


def rounded_to(f: ir.FieldDef) -> int | None:
    """The decimals of a float derived as `round(x, N)`: it is written with exactly N."""
    e = f.derived
    if f.source != "derived" or e is None or e.op != "call" or e.value != "round" or len(e.args) != 2:
        return None
    digits = e.args[1]
    if digits.op == "lit" and isinstance(digits.value, int) and not isinstance(digits.value, bool) \
            and 0 <= digits.value <= 12:
        return digits.value
    return None


def resolve_path(ctx: Context, schema: ir.Schema, path: tuple[str, ...]
                 ) -> tuple[ir.FieldDef | None, ir.FieldDef | None, str | None]:
    """(the field a mentioned path names, the list it goes through or None, the problem or None)."""
    through: ir.FieldDef | None = None
    node: ir.Schema | None = schema
    f: ir.FieldDef | None = None
    for i, part in enumerate(path):
        if node is None:
            return None, None, f"`{'.'.join(path[:i])}` is not a record"
        f = node.field(part)
        if f is None:
            return None, None, f"unknown field `{part}` in {node.name}" + (
                f" ({hint})" if (hint := did_you_mean(part, [x.name for x in node.fields])) else "")
        if i == len(path) - 1:
            break
        inner = f.type.item if isinstance(f.type, ir.ListType) else f.type
        if isinstance(f.type, ir.ListType):
            if through is not None:
                return None, None, f"`{'.'.join(path[:i + 1])}` is a list inside a list; mention one list's items"
            through = f
        node = ctx.schema(inner.name) if isinstance(inner, ir.RecordType) else None
    return f, through, None


def mention_decimals(ctx: Context, schema: ir.Schema, names: tuple[str, ...]) -> dict[str, int]:
    """The mentioned floats' decimals (see rounded_to), by mentioned path."""
    out: dict[str, int] = {}
    for name in names:
        f, _, _ = resolve_path(ctx, schema, tuple(name.split(".")))
        if f is not None and isinstance(f.type, ir.FloatType) and (n := rounded_to(f)) is not None:
            out[name] = n
    return out


def check_mentions(ctx: Context, f: ast.Field, t: ir.Type, schema: ir.Schema) -> tuple[str, ...]:
    """The mentioned paths of a text field of `schema` (fully built: its samplers and derived
    expressions known), each checked: it exists, has one text form, is known before the model
    writes, and all of them fit the text's length bounds."""
    sink = ctx.sink
    if f.source is not None or not isinstance(t, ir.StrType):
        sink.error("E0208", "only a model-written str can mention other fields", f.mentions[0].span)
        return ()
    if t.pattern is not None:
        sink.error("E0208", "a field with `mentions` cannot also carry a regex", f.mentions[0].span)
        return ()
    if t.max_len is None:
        sink.error("E0208", f"`{f.name.value}` needs a length bound to mention other fields",
                   f.type.span, help="write e.g. str(60..500)")
        return ()
    early = early_fields(schema, ctx.schema)
    decl = ctx.schemas_ast.get(schema.name)
    names: list[str] = []
    lo_sum, hi_sum, unknown, count = 0, 0, False, 0
    for m in f.mentions:
        path = tuple(m.value.split("."))
        if m.value in names:
            sink.error("E0208", f"`{m.value}` is mentioned twice", m.span)
            continue
        if m.value == f.name.value:
            sink.error("E0208", "a field cannot mention itself", m.span)
            continue
        mf, through, problem = resolve_path(ctx, schema, path)
        declared = next((d for d in decl.fields if d.name.value == path[0]), None) if decl else None
        if mf is None and declared is not None and schema.field(path[0]) is None:
            # declared with a type that has an error of its own
            if not isinstance(declared.source, ast.SamplerNode):
                sink.error("E0208", f"`{m.value}` is not sampled; only `~` fields are known before the model writes",
                           m.span, help=f"give `{m.value}` a source such as {_source_example(None)}")
            continue
        if mf is None:
            if len(path) == 1:
                sink.error("E0101", f"unknown field `{m.value}`", m.span,
                           help=did_you_mean(m.value, [x.name for x in schema.fields]))
            else:
                sink.error("E0101" if problem and problem.startswith("unknown") else "E0208",
                           f"cannot mention `{m.value}`: {problem}", m.span)
            continue
        mt = mf.type
        decimals = rounded_to(mf) if isinstance(mt, ir.FloatType) else None
        if mt.kind not in SCALAR_MENTION_KINDS and decimals is None:
            sink.error("E0208", f"`{m.value}` cannot be mentioned: it is {ir.type_text(mt)}", m.span,
                       help=_kind_help(m.value, mt))
            continue
        if through is not None and through.source != "sampled":
            sink.error("E0208", f"`{m.value}` goes through `{through.name}`, which the model writes; only the items of "
                       "a drawn list are known before the model writes", m.span,
                       help=f"give the items of `{through.name}` sampled fields, so the list is drawn")
            continue
        if not known_path(schema, path, ctx.schema, early):
            what = "derived from fields the model writes" if mf.source == "derived" else "not sampled"
            sink.error("E0208", f"`{m.value}` is {what}; only `~` fields, and fields derived from them, are known "
                       "before the model writes", m.span,
                       help=None if mf.source == "derived"
                       else f"give `{mf.name}` a source such as {_source_example(mt)}")
            continue
        names.append(m.value)
        lo, hi = _max_len_of(mt, mf.sampler) if decimals is None else (decimals + 2, None)
        times_lo, times_hi = (1, 1)
        if through is not None:
            assert isinstance(through.type, ir.ListType)
            times_lo, times_hi = ir.item_counts(through.type)
        lo_sum += lo * times_lo
        count += times_lo
        if hi is None:
            unknown = True
        else:
            hi_sum += hi * times_hi
    separators = max(count - 1, 0)     # a space at least between two mentioned values
    lo_sum, hi_sum = lo_sum + separators, hi_sum + separators
    if lo_sum > t.max_len:
        sink.error("E0208", f"the mentioned values and their separators need at least {lo_sum} characters, but "
                   f"`{f.name.value}` holds at most {t.max_len}", f.type.span)
    elif not unknown and hi_sum > t.max_len:
        sink.warning("W0005", f"the mentioned values and their separators can take {hi_sum} characters, more than the "
                     f"{t.max_len} `{f.name.value}` holds; draws that do not fit are drawn again", f.type.span)
    return tuple(names)
