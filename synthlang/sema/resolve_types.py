"""Type expressions to IR types: ranges, lengths, regexes, enums, records and lists, with their
diagnostics."""

from __future__ import annotations

import unicodedata
from typing import Any

from .. import ir
from ..diagnostics import Note, did_you_mean
from ..regexes import compile_error, strip_anchors, unsupported_feature, width
from ..syntax import ast
from .collect_declarations import BUILTIN_TYPES
from .context import Context


def range_bounds(ctx: Context, arg: ast.RangeArg, kind: str, tname: str) -> tuple[Any, Any] | None:
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
                return ir.LiteralType(values=self._options(opts))
            case ast.ListType(item=item, args=args):
                item_t = self.resolve_type(item)
                lo = hi = None
                for a in args or ():
                    if isinstance(a, ast.RegexArg):
                        self.sink.error("E0201", "a list takes an item-count range, not a regex", a.span,
                                        help="put the regex on the item type: list[str(/.../)](0..4)")
                        return None
                    bounds = range_bounds(self.ctx, a, "len", "list")
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

    def _options(self, opts: tuple[ast.Str, ...]) -> tuple[str, ...]:
        """The values of a literal union, each once. Two options that are the same text under
        Unicode normalisation (NFKC: a combining `a\\u0301` and a precomposed `\\u00e1`, a
        full-width `\\uff21` and `A`) look alike on every screen, and a model, a reader or a seed file cannot
        tell which one is meant: they are duplicates too."""
        values: list[str] = []
        first: dict[str, ast.Str] = {}
        for o in opts:
            key = unicodedata.normalize("NFKC", o.value)
            if key not in first:
                first[key] = o
                values.append(o.value)
            elif first[key].value == o.value:
                self.sink.error("E0102", f"option \"{o.value}\" appears twice", o.span,
                                notes=[Note(first[key].span, "first here")])
            else:
                self.sink.error("E0102", f"option {_escaped(o.value)} looks the same as {_escaped(first[key].value)}",
                                o.span, notes=[Note(first[key].span, "the other one")],
                                help="they differ only in how Unicode spells them (NFKC gives both as "
                                     f"{_escaped(key)}); keep one")
        return tuple(values)

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
                bounds = range_bounds(self.ctx, args[0], n, n)
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
                bounds = range_bounds(self.ctx, a, "len", "str")
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


def _escaped(text: str) -> str:
    """A string with every character outside ASCII as its code point: `"a\\u0301"` and `"\\u00e1"`
    show the difference that the characters themselves hide."""
    return '"' + "".join(c if c.isascii() and c.isprintable() else f"\\u{ord(c):04x}" for c in text) + '"'
