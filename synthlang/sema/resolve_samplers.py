"""`~ sampler` on a field to the IR sampler that draws it, checked against the field's type."""

from __future__ import annotations

from collections.abc import Sequence

from .. import ir
from ..diagnostics import DiagnosticSink, did_you_mean
from ..source import Span
from ..syntax import ast
from ..values import ValueError_, check_value
from .context import Context


def resolve_sampler(ctx: Context, f: ast.Field, t: ir.Type, schema: ir.Schema | None = None) -> ir.Sampler | None:
    """`schema`: the field's record (its fields typed), where a conditional sampler's
    condition is looked up."""
    s = f.source
    assert isinstance(s, ast.SamplerNode)
    sink = ctx.sink
    options = ir.options_of(t)
    tname = ir.type_name(t)
    if s.kind == "draw":
        return _draw(ctx, f)
    if isinstance(t, ir.ListType):
        return _item_count(ctx, f, t)
    if s.kind in ("pick_by", "weights_by"):
        return _conditional(ctx, f, t, schema)
    match s.kind:
        case "uniform":
            if options is not None:
                return ir.UniformSampler()
            if isinstance(t, (ir.IntType, ir.FloatType, ir.DateType)):
                if t.min is None or t.max is None:
                    sink.error("E0205", f"`~ uniform` needs both ends of the range of `{f.name.value}`",
                               s.span, help=f"give it a range, e.g. {t.kind}(1..10)" if t.kind != "date"
                               else "give it a range, e.g. date(2024-01-01..2024-12-31)")
                    return None
                return ir.UniformSampler()
            sink.error("E0205", f"`~ uniform` cannot draw a {tname}", s.span,
                       help="use `~ regex` with a regex-constrained str" if isinstance(t, ir.StrType) and t.pattern
                       else "use `~ pick(...)`, `~ faker(...)` or let the model write it")
            return None
        case "weights":
            if options is None:
                sink.error("E0205", f"`~ weights` needs an enum, a literal union or bool, not {tname}", s.span)
                return None
            ws = _weights(sink, s.args, options, tname, s.span)
            return None if ws is None else ir.WeightsSampler(weights=ws)
        case "pick":
            if isinstance(t, (ir.ListType, ir.RecordType)):
                sink.error("E0205", f"`~ pick` draws single values, not a {tname}", s.span)
                return None
            values = []
            for v in s.args:
                raw = v.value
                if isinstance(v, ast.Lit) and v.kind == "date":
                    raw = v.value.isoformat()
                if isinstance(v, ast.Lit) and v.kind == "percent":
                    raw = v.value / 100
                try:
                    values.append(check_value(t, raw, ctx.schema))
                except ValueError_ as exc:
                    sink.error("E0207", f"picked value does not fit {tname}: {exc.message}", v.span)
                    return None
            return ir.PickSampler(values=tuple(values))
        case "regex":
            if not isinstance(t, ir.StrType) or t.pattern is None:
                sink.error("E0205", "`~ regex` needs a regex-constrained str, e.g. str(/[0-9]{5}/)", s.span)
                return None
            return ir.RegexSampler()
        case "faker":
            provider = s.args[0].value
            if not isinstance(t, (ir.StrType, ir.IntType, ir.FloatType, ir.DateType)):
                sink.error("E0205", f"`~ faker` cannot fill a {tname}", s.span)
                return None
            from ..fakers import provider_fits, provider_names, provider_value_type
            names = provider_names()
            if provider not in names:
                sink.error("E0205", f"Faker has no provider `{provider}`", s.args[0].span,
                           help=did_you_mean(provider, names) or "see Faker's list of standard providers")
                return None
            if not provider_fits(provider, t.kind):
                sink.error("E0205", f"Faker's `{provider}` gives {provider_value_type(provider)}, which cannot "
                           f"fill a {tname}", s.args[0].span,
                           help="choose a provider that returns text (e.g. `name`, `city`, `sentence`)"
                           if isinstance(t, ir.StrType) else None)
                return None
            return ir.FakerSampler(provider=provider)
    return None  # pragma: no cover


def _draw(ctx: Context, f: ast.Field) -> ir.DrawSampler | None:
    """`~ draw(SET[.COLUMN] [matching FIELD]) [weighted by SET.COLUMN]`, as written; what the
    seed set holds is checked once its rows are read (sema/check_draws.py)."""
    s = f.source
    assert isinstance(s, ast.SamplerNode)
    ref, matching, weight = s.args
    if weight is not None:
        if weight.seeds.value != ref.seeds.value:
            ctx.sink.error("E0212", f"the weights of a draw from `{ref.seeds.value}` are a column of "
                           f"`{ref.seeds.value}`, not of `{weight.seeds.value}`", weight.seeds.span,
                           help=f"write `weighted by {ref.seeds.value}.<column>`")
            return None
        if weight.column is None:
            ctx.sink.error("E0212", "`weighted by` names a column of numbers", weight.span,
                           help=f"e.g. `weighted by {ref.seeds.value}.weight`")
            return None
    return ir.DrawSampler(seeds=ref.seeds.value, column=ref.column.value if ref.column else None,
                          weight=weight.column.value if weight is not None else None,
                          matching=matching.value if matching is not None else None)


def _item_count(ctx: Context, f: ast.Field, t: ir.ListType) -> ir.Sampler | None:
    """`items: list[Item](1..4) ~ uniform | weights(...)`: the runtime draws the item count (each
    weight is one count's, from the lowest), then every item's sampled fields."""
    s = f.source
    assert isinstance(s, ast.SamplerNode)
    sink = ctx.sink
    if not isinstance(t.item, ir.RecordType):
        sink.error("E0205", f"`~ {s.kind}` on a list draws its item count, for a list of records; the items of "
                   f"{ir.type_name(t)} have no fields to draw", s.span,
                   help="make the items records with sampled fields, or let the model write the list")
        return None
    lo, hi = ir.item_counts(t)
    match s.kind:
        case "uniform":
            return ir.UniformSampler()
        case "weights":
            ws = []
            for w in s.args:
                if w.kind not in ("int", "float") or w.value < 0:
                    sink.error("E0206", "weights are non-negative numbers", w.span)
                    return None
                ws.append(float(w.value))
            if len(ws) != hi - lo + 1:
                sink.error("E0206", f"{len(ws)} weights for the {hi - lo + 1} item counts {lo}..{hi} of "
                           f"`{f.name.value}`", s.span, help="give one weight per item count, from the lowest")
                return None
            if sum(ws) <= 0:
                sink.error("E0206", "the weights add up to zero", s.span)
                return None
            return ir.WeightsSampler(weights=tuple(ws))
    sink.error("E0205", f"`~ {s.kind}` cannot draw a list; a list's item count is drawn by `~ uniform` or "
               "`~ weights(...)`", s.span)
    return None


def _case_value(key: ast.Lit | ast.Str, cond: ir.Type) -> tuple[bool, object]:
    """(fits, value) of a case's key as a value of the condition's type."""
    raw = key.value
    if isinstance(cond, ir.BoolType):
        return isinstance(raw, bool), raw
    if isinstance(raw, bool) or not isinstance(raw, str):
        raw = str(raw)
    return raw in (ir.options_of(cond) or ()), raw


def _conditional(ctx: Context, f: ast.Field, t: ir.Type, schema: ir.Schema | None) -> ir.Sampler | None:
    """`pick by COND { v: (...), else: (...) }` / `weights by COND { v: (w, ...), ... }`: the
    condition a sibling with a finite set of values, each case's key one of them, once; every
    value covered or an `else`; the picked values fitting the field, or one weight per option."""
    s = f.source
    assert isinstance(s, ast.SamplerNode)
    sink = ctx.sink
    by, cases = s.args[0], s.args[1:]
    cond = schema.field(by.value) if schema is not None else None
    if cond is None or by.value == f.name.value:
        sink.error("E0211", f"`{by.value}` is not another field of this record", by.span,
                   help=did_you_mean(by.value, [x.name for x in schema.fields if x.name != f.name.value])
                   if schema is not None else None)
        return None
    cond_options = ir.options_of(cond.type)
    if cond_options is None:
        sink.error("E0211", f"`{by.value}` is {ir.type_name(cond.type)}; a field is drawn by the value of an enum, "
                   "a literal union or a bool", by.span)
        return None
    options = ir.options_of(t)
    if s.kind == "weights_by" and options is None:
        sink.error("E0205", f"`~ weights by` needs an enum, a literal union or bool, not {ir.type_name(t)}", s.span)
        return None
    if s.kind == "pick_by" and isinstance(t, (ir.ListType, ir.RecordType)):
        sink.error("E0205", f"`~ pick by` draws single values, not a {ir.type_name(t)}", s.span)
        return None
    out: list[ir.SamplerCase] = []
    default: ir.SamplerCase | None = None
    seen: list[object] = []
    for case in cases:
        assert isinstance(case, ast.SamplerCase)
        if case.key is not None:
            fits, when = _case_value(case.key, cond.type)
            if not fits:
                sink.error("E0211", f"`{case.key.value}` is not a value of `{by.value}` ({ir.type_name(cond.type)})",
                           case.key.span, help=did_you_mean(str(case.key.value), [str(o) for o in cond_options])
                           or f"values: {', '.join(_shown(o) for o in cond_options)}")
                return None
            if when in seen:
                sink.error("E0211", f"`{case.key.value}` has two cases", case.key.span)
                return None
            seen.append(when)
        elif default is not None:
            sink.error("E0211", "two `else` cases", case.span)
            return None
        made = _case(ctx, s.kind, case, t, options)
        if made is None:
            return None
        if case.key is None:
            default = made
        else:
            out.append(made.copy(when=when))
    missing = [o for o in cond_options if o not in seen]
    if missing and default is None:
        shown = ", ".join(_shown(o) for o in missing)
        sink.error("E0211", f"no case for {shown} of `{by.value}`", s.span,
                   help="give each value a case, or add `else: (...)` for the rest")
        return None
    sampler = ir.PickBySampler if s.kind == "pick_by" else ir.WeightsBySampler
    return sampler(by=by.value, cases=tuple(out), default=default)


def _weights(sink: DiagnosticSink, args: Sequence[ast.Lit], options: tuple[object, ...], tname: str,
             span: Span | None) -> tuple[float, ...] | None:
    """One non-negative weight per option, not all zero (E0206 otherwise)."""
    ws = []
    for w in args:
        if w.kind not in ("int", "float") or w.value < 0:
            sink.error("E0206", "weights are non-negative numbers", w.span)
            return None
        ws.append(float(w.value))
    if len(ws) != len(options):
        sink.error("E0206", f"{len(ws)} weights for {len(options)} options of {tname}", span,
                   help="give one weight per option, in declaration order")
        return None
    if sum(ws) <= 0:
        sink.error("E0206", "the weights add up to zero", span)
        return None
    return tuple(ws)


def _shown(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _case(ctx: Context, kind: str, case: ast.SamplerCase, t: ir.Type,
          options: tuple[object, ...] | None) -> ir.SamplerCase | None:
    sink = ctx.sink
    if kind == "weights_by":
        assert options is not None
        ws = _weights(sink, case.args, options, ir.type_name(t), case.span)
        return None if ws is None else ir.SamplerCase(weights=ws)
    values = []
    for v in case.args:
        raw = v.value
        if isinstance(v, ast.Lit) and v.kind == "date":
            raw = v.value.isoformat()
        if isinstance(v, ast.Lit) and v.kind == "percent":
            raw = v.value / 100
        try:
            values.append(check_value(t, raw, ctx.schema))
        except ValueError_ as exc:
            sink.error("E0207", f"picked value does not fit {ir.type_name(t)}: {exc.message}", v.span)
            return None
    return ir.SamplerCase(values=tuple(values))


def conditional_cycles(schema: ir.Schema) -> list[list[str]]:
    """Fields drawn by each other's values (`a ~ pick by b`, `b ~ pick by a`): no order draws them."""
    by = {f.name: cond for f in schema.fields if (cond := ir.condition_of(f.sampler)) is not None}
    cycles: list[list[str]] = []
    done: set[str] = set()
    for start in by:
        path, node = [start], by[start]
        while node in by and node not in path and node not in done:
            path.append(node)
            node = by[node]
        if node in path:
            cycle = path[path.index(node):] + [node]
            if not done & set(cycle):
                cycles.append(cycle)
        done |= set(path)
    return cycles
