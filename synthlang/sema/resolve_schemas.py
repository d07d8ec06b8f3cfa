"""resolve_schemas: enums and schemas to IR types; constraints, samplers, mentions, derived fields."""

from __future__ import annotations

from typing import Any

from .. import ir
from ..diagnostics import Note, did_you_mean
from ..regexes import compile_error, strip_anchors, unsupported_feature, width
from ..syntax import ast
from ..values import ValueError_, check_value
from .collect_declarations import BUILTIN_TYPES
from .context import Context
from .typecheck import describe, group, lower_expr

SCALAR_MENTION_KINDS = ("str", "int", "enum", "literal", "date")


def _range_bounds(ctx: Context, arg: ast.RangeArg, kind: str, tname: str) -> tuple[Any, Any] | None:
    """(lo, hi) as python values of the right kind, or None after a diagnostic."""
    want = {"int": ("int",), "len": ("int",), "float": ("int", "float"), "date": ("date",)}[kind]
    vals: list[Any] = []
    for b in (arg.lo, arg.hi):
        if b is None:
            vals.append(None)
            continue
        if b.kind not in want:
            label = {"int": "integers", "len": "integer lengths", "float": "numbers", "date": "dates"}[kind]
            ctx.sink.error("E0201", f"the range of `{tname}` takes {label}", b.span)
            return None
        vals.append(b.value)
    lo, hi = vals
    if kind == "len" and ((lo is not None and lo < 0) or (hi is not None and hi < 0)):
        ctx.sink.error("E0202", "a length cannot be negative", arg.span)
        return None
    if lo is not None and hi is not None and lo > hi:
        ctx.sink.error("E0202", f"empty range: {lo} is above {hi}", arg.span,
                       help=f"write {hi}..{lo}" if kind != "date" else None)
        return None
    if kind == "float":
        lo = float(lo) if lo is not None else None
        hi = float(hi) if hi is not None else None
    if kind == "date":
        lo = lo.isoformat() if lo is not None else None
        hi = hi.isoformat() if hi is not None else None
    return lo, hi


class SchemaResolver:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.sink = ctx.sink

    def resolve_type(self, node: ast.TypeExpr) -> ir.Type | None:
        match node:
            case ast.LiteralUnion(options=opts):
                values = []
                for o in opts:
                    if o.value in values:
                        self.sink.error("E0102", f"option \"{o.value}\" appears twice", o.span)
                    else:
                        values.append(o.value)
                return ir.LiteralType(values=tuple(values))
            case ast.ListType(item=item, args=args):
                item_t = self.resolve_type(item)
                lo = hi = None
                for a in args or ():
                    if isinstance(a, ast.RegexArg):
                        self.sink.error("E0201", "a list takes an item-count range, not a regex", a.span,
                                        help="put the regex on the item type: list[str(/.../)](0..4)")
                        return None
                    bounds = _range_bounds(self.ctx, a, "len", "list")
                    if bounds is None:
                        return None
                    lo, hi = bounds
                if args is not None and len(args) > 1:
                    self.sink.error("E0201", "a list takes one item-count range", args[1].span)
                    return None
                return ir.ListType(item=item_t, min_items=lo, max_items=hi) if item_t is not None else None
            case ast.NamedType(name=name, args=args):
                return self._named(name, args, node)
        return None  # pragma: no cover

    def _named(self, name: ast.Name, args: tuple[ast.TypeArg, ...] | None, node: ast.NamedType) -> ir.Type | None:
        n = name.value
        args = args or ()
        if n in ("str",):
            return self._str(args)
        if n in ("int", "float", "date"):
            if any(isinstance(a, ast.RegexArg) for a in args):
                a = next(a for a in args if isinstance(a, ast.RegexArg))
                self.sink.error("E0201", f"`{n}` takes a value range, not a regex", a.span)
                return None
            if len(args) > 1:
                self.sink.error("E0201", f"`{n}` takes one range", args[1].span)
                return None
            lo = hi = None
            if args:
                assert isinstance(args[0], ast.RangeArg)  # regexes were refused above
                bounds = _range_bounds(self.ctx, args[0], n, n)
                if bounds is None:
                    return None
                lo, hi = bounds
            numeric: dict[str, type[ir.IntType] | type[ir.FloatType] | type[ir.DateType]] = {
                "int": ir.IntType, "float": ir.FloatType, "date": ir.DateType}
            return numeric[n](min=lo, max=hi)
        if args and n in ("bool",) or n in self.ctx.enums_ast or n in self.ctx.schemas_ast:
            if args:
                self.sink.error("E0201", f"`{n}` takes no constraints", args[0].span)
                return None
        if n == "bool":
            return ir.BoolType()
        if n in self.ctx.enums_ast:
            return ir.EnumType(name=n, values=tuple(m.value for m in self.ctx.enums_ast[n].members))
        if n in self.ctx.schemas_ast:
            return ir.RecordType(name=n)
        candidates = list(BUILTIN_TYPES) + list(self.ctx.enums_ast) + list(self.ctx.schemas_ast)
        self.sink.error("E0101", f"unknown type `{n}`", name.span, help=did_you_mean(n, candidates))
        return None

    def _str(self, args: tuple[ast.TypeArg, ...]) -> ir.Type | None:
        pattern = None
        lo = hi = None
        seen_range = seen_regex = False
        for a in args:
            if isinstance(a, ast.RegexArg):
                if seen_regex:
                    self.sink.error("E0201", "`str` takes one regex", a.span)
                    return None
                seen_regex = True
                p = strip_anchors(a.pattern)
                feature = unsupported_feature(p)
                if feature:
                    self.sink.error("E0203", f"regex uses {feature}, which no decoding constraint can enforce",
                                    a.span, help="rewrite it without lookaround or backreferences")
                    return None
                err = compile_error(p)
                if err:
                    self.sink.error("E0203", f"invalid regex: {err}", a.span)
                    return None
                pattern = p
            else:
                if seen_range:
                    self.sink.error("E0201", "`str` takes one length range", a.span)
                    return None
                seen_range = True
                bounds = _range_bounds(self.ctx, a, "len", "str")
                if bounds is None:
                    return None
                lo, hi = bounds
        if pattern is not None:
            wlo, whi = width(pattern)
            if (hi is not None and wlo > hi) or (lo is not None and whi is not None and whi < lo):
                span = next(a.span for a in args if isinstance(a, ast.RegexArg))
                shown = f"{wlo}" if whi == wlo else f"{wlo}..{'' if whi is None else whi}"
                self.sink.error("E0204", f"every match of this regex has length {shown}, outside the "
                                f"bounds {'' if lo is None else lo}..{'' if hi is None else hi}", span)
                return None
        return ir.StrType(min_len=lo, max_len=hi, pattern=pattern)


def _sampler(ctx: Context, f: ast.Field, t: ir.Type) -> ir.Sampler | None:
    s = f.source
    assert isinstance(s, ast.SamplerNode)
    sink = ctx.sink
    options = ir.options_of(t)
    tname = ir.type_name(t)
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


def _record_cycle(ctx: Context, name: str, path: list[str]) -> list[str] | None:
    schema = ctx.schemas_ast.get(name)
    if schema is None:
        return None
    for f in schema.fields:
        for ref in _record_refs(f.type):
            if ref == path[0]:
                return path + [ref]
            if ref not in path and ref in ctx.schemas_ast:
                found = _record_cycle(ctx, ref, path + [ref])
                if found:
                    return found
    return None


def _record_refs(t: ast.TypeExpr) -> list[str]:
    match t:
        case ast.NamedType(name=n):
            return [n.value]
        case ast.ListType(item=i):
            return _record_refs(i)
    return []


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

    cyclic: set[str] = set()
    for name, decl in ctx.schemas_ast.items():
        cycle = _record_cycle(ctx, name, [name])
        if cycle and name not in cyclic:
            cyclic.update(cycle)
            ctx.sink.error("E0210", "record types contain each other: " + " -> ".join(cycle), decl.name.span,
                           help="a record cannot contain itself; generated records must be finite")

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
                spec["sampler"] = _sampler(ctx, f, t)
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
            if f.mentions:
                spec["mentions"] = _mentions(ctx, f, t, typed[name])
            out.append(ir.FieldDef(**spec))
        ctx.schemas[name] = ir.Schema(name=name, fields=tuple(out), span=ctx.schemas[name].span)


def _mentions(ctx: Context, f: ast.Field, t: ir.Type,
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
        if not isinstance(mf.source, ast.SamplerNode):
            sink.error("E0208", f"`{m.value}` is not sampled; only `~` fields are known before the model writes",
                       m.span, help=f"give `{m.value}` a source such as `~ faker(...)` or `~ regex`")
            continue
        if mt is None or mt.kind not in SCALAR_MENTION_KINDS:
            sink.error("E0208", f"`{m.value}` is not a scalar value that text can mention", m.span)
            continue
        names.append(m.value)
        lo, hi = _max_len_of(mt, None)
        lo_sum += lo
        if hi is None:
            unknown = True
        else:
            hi_sum += hi
    if lo_sum > t.max_len:
        sink.error("E0208", f"the mentioned values need at least {lo_sum} characters, but "
                   f"`{f.name.value}` holds at most {t.max_len}", f.type.span)
    elif not unknown and hi_sum > t.max_len:
        sink.warning("W0005", f"the mentioned values can take {hi_sum} characters, more than the "
                     f"{t.max_len} `{f.name.value}` holds; draws that do not fit are drawn again", f.type.span)
    return tuple(names)
