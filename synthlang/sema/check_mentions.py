"""`mentions`: a model-written string that must contain other fields' values verbatim, checked
for feasibility (the values fit the string's length bounds)."""

from __future__ import annotations

from .. import ir
from ..diagnostics import did_you_mean
from ..regexes import width
from ..syntax import ast
from .context import Context

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
        return (f"a float has no one way to be written (0.5, .5, 0.50), so no text can be checked to contain "
                f"`{name}`; mention an int (`{name}: int(...) ~ uniform`) or a str field instead")
    if isinstance(t, ir.BoolType):
        return f"true and false are not words a text contains; mention an enum or a literal union instead of `{name}`"
    return "mention str, int, enum, literal-union or date fields (one value each)"


def _source_example(t: ir.Type | None) -> str:
    if isinstance(t, ir.StrType):
        return "`~ regex`" if t.pattern is not None else '`~ faker("city")` or `~ pick("a", "b")`'
    if isinstance(t, (ir.IntType, ir.DateType, ir.EnumType, ir.LiteralType)):
        return "`~ uniform`"
    return "`~ faker(...)` or `~ regex`" if t is None else "`~ pick(...)`"


def check_mentions(ctx: Context, f: ast.Field, t: ir.Type,
              siblings: list[tuple[ast.Field, ir.Type | None]]) -> tuple[str, ...]:
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
    by_name = {sf.name.value: (sf, st) for sf, st in siblings}
    names: list[str] = []
    lo_sum, hi_sum, unknown = 0, 0, False
    for m in f.mentions:
        if m.value in names:
            sink.error("E0208", f"`{m.value}` is mentioned twice", m.span)
            continue
        if m.value == f.name.value:
            sink.error("E0208", "a field cannot mention itself", m.span)
            continue
        if m.value not in by_name:
            sink.error("E0101", f"unknown field `{m.value}`", m.span, help=did_you_mean(m.value, by_name))
            continue
        mf, mt = by_name[m.value]
        if mt is not None and mt.kind not in SCALAR_MENTION_KINDS:
            sink.error("E0208", f"`{m.value}` cannot be mentioned: it is {ir.type_text(mt)}", m.span,
                       help=_kind_help(m.value, mt))
            continue
        if not isinstance(mf.source, ast.SamplerNode):
            sink.error("E0208", f"`{m.value}` is not sampled; only `~` fields are known before the model writes",
                       m.span, help=f"give `{m.value}` a source such as {_source_example(mt)}")
            continue
        if mt is None:
            continue  # its type has an error of its own
        names.append(m.value)
        lo, hi = _max_len_of(mt, None)
        lo_sum += lo
        if hi is None:
            unknown = True
        else:
            hi_sum += hi
    separators = max(len(names) - 1, 0)     # a space at least between two mentioned values
    lo_sum, hi_sum = lo_sum + separators, hi_sum + separators
    if lo_sum > t.max_len:
        sink.error("E0208", f"the mentioned values and their separators need at least {lo_sum} characters, but "
                   f"`{f.name.value}` holds at most {t.max_len}", f.type.span)
    elif not unknown and hi_sum > t.max_len:
        sink.warning("W0005", f"the mentioned values and their separators can take {hi_sum} characters, more than the "
                     f"{t.max_len} `{f.name.value}` holds; draws that do not fit are drawn again", f.type.span)
    return tuple(names)
