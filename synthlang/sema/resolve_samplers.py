"""`~ sampler` on a field to the IR sampler that draws it, checked against the field's type."""

from __future__ import annotations

from .. import ir
from ..diagnostics import did_you_mean
from ..syntax import ast
from ..values import ValueError_, check_value
from .context import Context


def resolve_sampler(ctx: Context, f: ast.Field, t: ir.Type) -> ir.Sampler | None:
    s = f.source
    assert isinstance(s, ast.SamplerNode)
    sink = ctx.sink
    options = ir.options_of(t)
    tname = ir.type_name(t)
    if isinstance(t, ir.ListType):
        return _item_count(ctx, f, t)
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
            ws = []
            for w in s.args:
                if w.kind not in ("int", "float") or w.value < 0:
                    sink.error("E0206", "weights are non-negative numbers", w.span)
                    return None
                ws.append(float(w.value))
            if len(ws) != len(options):
                sink.error("E0206", f"{len(ws)} weights for {len(options)} options of {tname}", s.span,
                           help="give one weight per option, in declaration order")
                return None
            if sum(ws) <= 0:
                sink.error("E0206", "the weights add up to zero", s.span)
                return None
            return ir.WeightsSampler(weights=tuple(ws))
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
