"""Typing and lowering of expressions (checks, derived fields) from AST to ir.Expr."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import ir
from ..diagnostics import did_you_mean
from ..regexes import compile_error
from ..source import Span
from ..syntax import ast
from .context import Context


@dataclass(frozen=True)
class Any_:
    kind: str = "any"


@dataclass(frozen=True)
class Null_:
    kind: str = "null"


ANY, NULL = Any_(), Null_()
# the type of an expression: an IR type, or unknown (ANY) or null
ExprType = ir.Type | Any_ | Null_
INT, FLOAT, STR, BOOL, DATE = ir.IntType(), ir.FloatType(), ir.StrType(), ir.BoolType(), ir.DateType()

FUNCTIONS = ("len", "lower", "upper", "round", "abs", "min", "max", "sum", "count")


def group(t: ExprType) -> str:
    """The comparison family of a type: text, num, bool, date, list, record, null, any."""
    k = t.kind
    if k in ("str", "enum", "literal"):
        return "text"
    if k in ("int", "float"):
        return "num"
    return k


def describe(t: ExprType) -> str:
    if isinstance(t, (Any_, Null_)):
        return {"any": "a value", "null": "null"}[t.kind]
    return ir.type_name(t)


class ExprChecker:
    """Lowers one expression in the scope of a schema; reports through ctx.sink."""

    def __init__(self, ctx: Context, scope: ir.Schema, what: str):
        self.ctx, self.scope, self.what = ctx, scope, what
        self.ok = True
        self.locals: dict[str, ExprType] = {}   # the item names of the comprehensions around

    def error(self, code: str, message: str, span: Span | None, help: str | None = None) -> None:
        self.ok = False
        self.ctx.sink.error(code, message, span, help=help)

    def lower(self, node: ast.Expr) -> tuple[ir.Expr, ExprType]:
        match node:
            case ast.Lit(kind="int" | "float" | "bool" as k, value=v):
                lit_types: dict[str, ExprType] = {"int": INT, "float": FLOAT, "bool": BOOL}
                return ir.Expr(op="lit", value=v, span=node.span), lit_types[k]
            case ast.Lit(kind="percent", value=v):
                return ir.Expr(op="lit", value=v / 100.0, span=node.span), FLOAT
            case ast.Lit(kind="date", value=v):
                return ir.Expr(op="lit", value=v.isoformat(), span=node.span), DATE
            case ast.Str(value=v):
                return ir.Expr(op="lit", value=v, span=node.span), ir.LiteralType(values=(v,))
            case ast.Null():
                return ir.Expr(op="lit", value=None, span=node.span), NULL
            case ast.Ref():
                return self._ref(node)
            case ast.Index():
                return self._index(node)
            case ast.Each():
                return self._each(node)
            case ast.ListLit(items=items):
                lowered = [self.lower(i) for i in items]
                item_t = self._join([t for _, t in lowered], node.span) if lowered else ANY
                return (ir.Expr(op="list", args=tuple(e for e, _ in lowered), span=node.span),
                        ir.ListType(item=item_t) if not isinstance(item_t, (Any_, Null_)) else _AnyList)
            case ast.Call():
                return self._call(node)
            case ast.UnOp(op="not", operand=operand):
                e, t = self.lower(operand)
                self._want_bool(t, operand.span, "`not`")
                return ir.Expr(op="not", args=(e,), span=node.span), BOOL
            case ast.UnOp(op="neg", operand=operand):
                e, t = self.lower(operand)
                if group(t) not in ("num", "any"):
                    self.error("E0601", f"cannot negate {describe(t)}", operand.span)
                return ir.Expr(op="neg", args=(e,), span=node.span), t
            case ast.Matches(operand=operand, pattern=pattern):
                e, t = self.lower(operand)
                if group(t) not in ("text", "any", "null"):
                    self.error("E0601", f"`matches` needs text, not {describe(t)}", operand.span)
                err = compile_error(pattern.pattern)
                if err:
                    self.error("E0203", f"invalid regex: {err}", pattern.span)
                return ir.Expr(op="matches", args=(e,), value=pattern.pattern, span=node.span), BOOL
            case ast.BinOp():
                return self._binop(node)
        self.error("E0601", "unsupported expression", node.span)  # pragma: no cover
        return ir.Expr(op="lit", value=None), ANY

    def _ref(self, node: ast.Ref) -> tuple[ir.Expr, ExprType]:
        path = tuple(p.value for p in node.parts)
        expr = ir.Expr(op="ref", path=path, span=node.span)
        first = node.parts[0]
        if first.value in self.locals:
            return expr, self._fields_of(self.locals[first.value], node.parts[1:], (first.value,))
        t = self._fields_of(ir.RecordType(name=self.scope.name), node.parts, (), self.scope)
        return expr, t

    def _fields_of(self, t: ExprType, parts: tuple[ast.Name, ...], before: tuple[str, ...],
                   schema: ir.Schema | None = None) -> ExprType:
        """The type of `parts` read from a value of type t: fields of a record, and of every item of
        a list of records (`items.qty` is a list of the items' quantities)."""
        many = False            # went through a list: the result is one value per item
        for i, part in enumerate(parts):
            inner = t.item if isinstance(t, ir.ListType) else t
            if isinstance(t, ir.ListType):
                if many:
                    self.error("E0601", f"`{'.'.join(before + tuple(p.value for p in parts[:i]))}` is a list of lists; "
                               "read one list at a time", part.span)
                    return ANY
                many = True
            if schema is None and isinstance(inner, ir.RecordType):
                schema = self.ctx.schema(inner.name)
            if schema is None:
                if isinstance(t, (Any_, Null_)):
                    return ANY
                self.error("E0601", f"`{'.'.join(before + tuple(p.value for p in parts[:i]))}` is {describe(t)}, "
                           "not a record", part.span)
                return ANY
            f = schema.field(part.value)
            if f is None:
                top = not before and i == 0 and len(parts) == 1
                self.error("E0101", f"unknown field `{part.value}` in {schema.name}", part.span,
                           help=(self._quoted_value(part.value, schema) if top else None)
                           or did_you_mean(part.value, [x.name for x in schema.fields]))
                return ANY
            t, schema = f.type, None
        if many:
            return ANY if isinstance(t, (ir.ListType, Any_, Null_)) else ir.ListType(item=t)
        return t

    def _index(self, node: ast.Index) -> tuple[ir.Expr, ExprType]:
        base, bt = self._ref(node.base)
        index, it = self.lower(node.index)
        if group(it) not in ("num", "any") or isinstance(it, ir.FloatType):
            self.error("E0601", f"a list is indexed by an int, not {describe(it)}", node.index.span)
        tail = tuple(p.value for p in node.tail)
        expr = ir.Expr(op="index", args=(base, index), path=tail or None, span=node.span)
        if isinstance(bt, (Any_, Null_)):
            return expr, ANY
        if not isinstance(bt, ir.ListType):
            self.error("E0601", f"`{'.'.join(base.path or ())}` is {describe(bt)}, not a list; only a list has "
                       "items to index", node.base.span)
            return expr, ANY
        return expr, self._fields_of(bt.item, node.tail, (".".join(base.path or ()) + "[...]",))

    def _each(self, node: ast.Each) -> tuple[ir.Expr, ExprType]:
        items, lt = self.lower(node.items)
        var = node.var.value
        item_t: ExprType = ANY
        if isinstance(lt, ir.ListType):
            item_t = lt.item
        elif not isinstance(lt, (Any_, Null_)):
            self.error("E0601", f"`for {var} in ...` needs a list, not {describe(lt)}", node.items.span)
        outer = self.locals.get(var)
        self.locals[var] = item_t
        try:
            element, et = self.lower(node.element)
        finally:
            if outer is None:
                self.locals.pop(var, None)
            else:
                self.locals[var] = outer
        expr = ir.Expr(op="each", args=(element, items), value=var, span=node.span)
        if isinstance(et, (Any_, Null_)):
            return expr, ANY
        return expr, ir.ListType(item=et)

    def _quoted_value(self, name: str, schema: ir.Schema) -> str | None:
        """The fix for an enum or literal value written bare (`intent == billing`): a bare name
        is read as a field, so a value is written as a string."""
        for f in schema.fields:
            t = f.type.item if isinstance(f.type, ir.ListType) else f.type
            if isinstance(t, (ir.EnumType, ir.LiteralType)) and name in t.values:
                return (f'`{name}` is a value of {ir.type_name(t)} (`{f.name}`); values are written in quotes: '
                        f'`"{name}"`')
        return None

    def _join(self, types: list[ExprType], span: Span) -> ExprType:
        real = [t for t in types if not isinstance(t, (Any_, Null_))]
        if not real:
            return ANY
        groups = {group(t) for t in real}
        if len(groups) > 1:
            self.error("E0601", "list items have mixed types: " + ", ".join(sorted(groups)), span)
            return ANY
        if groups == {"num"}:
            return FLOAT if any(t.kind == "float" for t in real) else INT
        if groups == {"text"}:
            return STR
        return real[0]

    def _want_bool(self, t: ExprType, span: Span, where: str) -> None:
        if group(t) not in ("bool", "any", "null"):
            self.error("E0601", f"{where} needs true/false, not {describe(t)}", span,
                       help="compare it, e.g. `x > 0` or `x == \"value\"`")

    def _call(self, node: ast.Call) -> tuple[ir.Expr, ExprType]:
        name = node.func.value
        lowered = [self.lower(a) for a in node.args]
        args = tuple(e for e, _ in lowered)
        types = [t for _, t in lowered]
        expr = ir.Expr(op="call", value=name, args=args, span=node.span)
        if name not in FUNCTIONS:
            self.error("E0602", f"unknown function `{name}`", node.func.span,
                       help=did_you_mean(name, FUNCTIONS) or f"functions: {', '.join(FUNCTIONS)}")
            return expr, ANY

        def arity(lo: int, hi: int) -> bool:
            if not lo <= len(types) <= hi:
                want = str(lo) if lo == hi else f"{lo} to {hi}" if hi < 99 else f"at least {lo}"
                self.error("E0602", f"`{name}` takes {want} argument{'s' if hi != 1 else ''}, "
                           f"got {len(types)}", node.span)
                return False
            return True

        def want(i: int, groups: tuple[Any, ...], label: str) -> None:
            if group(types[i]) not in groups + ("any", "null"):
                self.error("E0601", f"`{name}` needs {label}, not {describe(types[i])}", node.args[i].span)

        match name:
            case "len":
                if arity(1, 1):
                    want(0, ("text", "list"), "text or a list")
                return expr, INT
            case "lower" | "upper":
                if arity(1, 1):
                    want(0, ("text",), "text")
                return expr, STR
            case "round":
                if arity(1, 2):
                    want(0, ("num",), "a number")
                    if len(types) == 2:
                        want(1, ("num",), "a number of digits")
                return expr, (INT if len(types) == 1 else FLOAT)
            case "abs":
                if arity(1, 1):
                    want(0, ("num",), "a number")
                return expr, (types[0] if types and group(types[0]) == "num" else FLOAT)
            case "min" | "max":
                if arity(1, 99):
                    if len(types) == 1:
                        t = types[0]
                        if isinstance(t, ir.ListType) and group(t.item) == "num":
                            return expr, t.item
                        want(0, ("list",), "a list of numbers")
                        return expr, FLOAT
                    for i in range(len(types)):
                        want(i, ("num",), "numbers")
                    return expr, (FLOAT if any(t.kind == "float" for t in types) else INT)
                return expr, FLOAT
            case "sum":
                if arity(1, 1):
                    t = types[0]
                    if isinstance(t, ir.ListType) and group(t.item) not in ("num", "any"):
                        self.error("E0601", f"`sum` needs a list of numbers, not {describe(t)}", node.args[0].span)
                    elif not isinstance(t, ir.ListType):
                        want(0, ("list",), "a list of numbers")
                    return expr, (t.item if isinstance(t, ir.ListType) and group(t.item) == "num" else FLOAT)
                return expr, FLOAT
            case "count":
                if arity(1, 2):
                    want(0, ("text", "list"), "text or a list")
                    if len(types) == 2 and group(types[0]) == "text":
                        want(1, ("text",), "text to count")
                return expr, INT
        return expr, ANY  # pragma: no cover

    def _binop(self, node: ast.BinOp) -> tuple[ir.Expr, ExprType]:
        op = node.op
        le, lt = self.lower(node.left)
        re_, rt = self.lower(node.right)
        expr = ir.Expr(op=op, args=(le, re_), span=node.span)
        gl, gr = group(lt), group(rt)
        loose = ("any", "null")
        if op in ("and", "or"):
            self._want_bool(lt, node.left.span, f"`{op}`")
            self._want_bool(rt, node.right.span, f"`{op}`")
            # flatten nested and/or so evaluation can tolerate unknown sides
            args: list[ir.Expr] = []
            for e in (le, re_):
                args.extend(e.args if e.op == op else (e,))
            return ir.Expr(op=op, args=tuple(args), span=node.span), BOOL
        if op in ("+", "-", "*", "/", "%"):
            if op == "+" and gl == gr == "text":
                return expr, STR
            if op == "+" and gl == gr == "list":
                return expr, lt
            if "list" in (gl, gr):   # item by item: `items.qty * items.unit_price`, `items.price * 1.2`
                li = lt.item if isinstance(lt, ir.ListType) else lt
                ri = rt.item if isinstance(rt, ir.ListType) else rt
                if group(li) not in ("num",) + loose or group(ri) not in ("num",) + loose:
                    self.error("E0601", f"cannot apply `{op}` to {describe(lt)} and {describe(rt)}", node.span,
                               help="arithmetic goes item by item over lists of numbers")
                    return expr, ANY
                num = FLOAT if op == "/" or "float" in (li.kind, ri.kind) else INT
                return expr, ir.ListType(item=num)
            if gl not in ("num",) + loose or gr not in ("num",) + loose:
                self.error("E0601", f"cannot apply `{op}` to {describe(lt)} and {describe(rt)}", node.span)
                return expr, ANY
            if op == "/" or "float" in (lt.kind, rt.kind):
                return expr, FLOAT
            return expr, INT if gl == gr == "num" else FLOAT
        if op in ("==", "!=", "<", "<=", ">", ">="):
            if gl not in loose and gr not in loose and gl != gr:
                self.error("E0601", f"cannot compare {describe(lt)} with {describe(rt)}", node.span)
            elif op not in ("==", "!=") and gl in ("bool", "list", "record"):
                self.error("E0601", f"`{op}` does not order {describe(lt)}", node.span)
            else:
                self._check_option(lt, node.right, rt)
                self._check_option(rt, node.left, lt)
            return expr, BOOL
        if op in ("in", "not_in"):
            if isinstance(rt, ir.ListType):
                if gl not in loose and group(rt.item) not in loose and gl != group(rt.item):
                    self.error("E0601", f"cannot look for {describe(lt)} in {describe(rt)}", node.span)
                elif isinstance(node.right, ast.ListLit):
                    for item in node.right.items:
                        if isinstance(item, ast.Str):
                            self._check_option(lt, item, ir.LiteralType(values=(item.value,)))
            elif gr == "text":
                if gl not in ("text",) + loose:
                    self.error("E0601", f"cannot look for {describe(lt)} in text", node.span)
            elif gr not in loose:
                self.error("E0601", f"`in` needs a list or text on the right, not {describe(rt)}", node.right.span)
            return expr, BOOL
        if op == "contains":
            if gl == "text":
                if gr not in ("text",) + loose:
                    self.error("E0601", f"text cannot contain {describe(rt)}", node.right.span)
            elif isinstance(lt, ir.ListType):
                if gr not in loose and group(lt.item) not in loose and gr != group(lt.item):
                    self.error("E0601", f"{describe(lt)} cannot contain {describe(rt)}", node.right.span)
            elif gl not in loose:
                self.error("E0601", f"`contains` needs text or a list on the left, not {describe(lt)}",
                           node.left.span)
            return expr, BOOL
        self.error("E0601", f"unknown operator `{op}`", node.span)  # pragma: no cover
        return expr, ANY

    def _check_option(self, t: ExprType, other_node: ast.Expr, other_t: ExprType) -> None:
        """Comparing an enum or literal field with a string that is not one of its options."""
        if isinstance(t, (ir.EnumType, ir.LiteralType)) and isinstance(other_node, ast.Str) \
                and isinstance(other_t, ir.LiteralType) and other_node.value not in t.values:
            self.error("E0601", f"`\"{other_node.value}\"` is not a value of {ir.type_name(t)}",
                       other_node.span, help=did_you_mean(other_node.value, t.values)
                       or f"values: {', '.join(t.values)}")


_AnyList = ir.ListType(item=ir.StrType())


def lower_expr(ctx: Context, node: ast.Expr, scope: ir.Schema, what: str) -> tuple[ir.Expr, ExprType, bool]:
    """(ir.Expr, type, ok) for an expression in the scope of `scope`'s fields."""
    checker = ExprChecker(ctx, scope, what)
    expr, t = checker.lower(node)
    return expr, t, checker.ok
