"""The abstract syntax tree: immutable records (nodes.Record), each with the span it came from."""

from __future__ import annotations

import sys
from typing import Any

from ..nodes import Record, field
from ..source import SourceFile, Span

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:
    from typing_extensions import dataclass_transform


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class AstNode(Record):
    """A node of the tree: immutable, positional or keyword construction, compared by value."""


class Name(AstNode):
    value: str
    span: Span


class Lit(AstNode):
    """A literal. kind: str | int | float | percent | date | bool | ident."""

    kind: str
    value: Any  # a str, int, float, percent (float), date, bool or identifier (str), as `kind` says
    span: Span


class Str(AstNode):
    value: str
    span: Span
    # the source line of the string's first content line (for prompt diagnostics)
    first_line: int = 1
    # column offset of the template's text within the source lines (dedent removed this much)
    indent: int = 0


# ---- types -------------------------------------------------------------------------------
class RangeArg(AstNode):
    lo: Lit | None
    hi: Lit | None
    span: Span


class RegexArg(AstNode):
    pattern: str
    span: Span


TypeArg = RangeArg | RegexArg


class NamedType(AstNode):
    name: Name
    args: tuple[TypeArg, ...] | None
    span: Span


class ListType(AstNode):
    item: TypeExpr
    args: tuple[TypeArg, ...] | None
    span: Span


class LiteralUnion(AstNode):
    options: tuple[Str, ...]
    span: Span


TypeExpr = NamedType | ListType | LiteralUnion


# ---- expressions -----------------------------------------------------------------------------
class Ref(AstNode):
    parts: tuple[Name, ...]
    span: Span


class Call(AstNode):
    func: Name
    args: tuple[Expr, ...]
    span: Span


class BinOp(AstNode):
    op: str  # + - * / % == != < <= > >= and or in not_in contains
    left: Expr
    right: Expr
    span: Span


class Matches(AstNode):
    operand: Expr
    pattern: RegexArg
    span: Span


class UnOp(AstNode):
    op: str  # not | neg
    operand: Expr
    span: Span


class ListLit(AstNode):
    items: tuple[Expr, ...]
    span: Span


class Null(AstNode):
    span: Span


class Index(AstNode):
    """`items[0].qty`: one item of a list (`base`), then fields of it (`tail`)."""

    base: Ref
    index: Expr
    tail: tuple[Name, ...]
    span: Span


class Each(AstNode):
    """`i.qty * 2 for i in items`: one value per item of a list, each named `var` in `element`
    (the argument of an aggregate, or `[... for ... in ...]`)."""

    element: Expr
    var: Name
    items: Expr
    span: Span


Expr = Lit | Str | Ref | Call | BinOp | Matches | UnOp | ListLit | Null | Index | Each


# ---- sources of a field ------------------------------------------------------------------------
class SamplerNode(AstNode):
    """kind: uniform | weights | pick | regex | faker, or pick_by | weights_by (args: the
    condition's Name, then its SamplerCases), or draw (args: the drawn DrawRef, the `matching`
    Name or None, the `weighted by` DrawRef or None)."""

    kind: str
    args: tuple[Any, ...] = ()
    span: Span | None = None


class DrawRef(AstNode):
    """`topics` (a seed set's whole rows) or `topics.name` (one column of them)."""

    seeds: Name
    column: Name | None
    span: Span


class SamplerCase(AstNode):
    """One case of `pick by FIELD { VALUE: (...), else: (...) }`: `key` None for `else`."""

    key: Lit | Str | None
    args: tuple[Any, ...]
    span: Span


class Derived(AstNode):
    expr: Expr
    span: Span


class Field(AstNode):
    name: Name
    type: TypeExpr
    optional: bool
    source: SamplerNode | Derived | None
    mentions: tuple[Name, ...]
    span: Span


# ---- declarations --------------------------------------------------------------------------------
class Setting(AstNode):
    key: Name
    value: Lit | Str
    span: Span


class Import(AstNode):
    path: Str
    span: Span


class SettingsBlock(AstNode):
    keyword: str  # dataset | model
    name: Name
    settings: tuple[Setting, ...]
    span: Span


class EnumDecl(AstNode):
    name: Name
    members: tuple[Name, ...]
    span: Span


class SchemaDecl(AstNode):
    name: Name
    fields: tuple[Field, ...]
    span: Span


class SeedsDecl(AstNode):
    name: Name
    path: Str
    schema: Name
    span: Span


class QuotaEntry(AstNode):
    key: Lit | Str
    share: Lit  # percent or int
    span: Span


class Quota(AstNode):
    field: Name
    entries: tuple[QuotaEntry, ...]
    span: Span


class Examples(AstNode):
    n: Lit
    seeds: Name
    matching: tuple[Name, ...]
    span: Span


class NoiseRule(AstNode):
    rule: Name
    formats: tuple[Str, ...] | None
    rate: Lit | None
    span: Span


class Noise(AstNode):
    field: Name
    rules: tuple[NoiseRule, ...]
    span: Span


class Dedup(AstNode):
    field: Name
    mode: str  # exact | near
    threshold: Lit | None
    span: Span


class Judge(AstNode):
    model: Name | None
    min_score: Lit
    rubric: Str
    span: Span


class Check(AstNode):
    expr: Expr
    span: Span


class Allow(AstNode):
    """`allow truncated, copies`: plausibility filters switched off for a block."""

    filters: tuple[Name, ...]
    span: Span


class Step(AstNode):
    """`step FIELDS [using MODEL] [when EXPR] "template"`: one request writing these fields."""

    fields: tuple[Name, ...]
    model: Name | None
    when: Expr | None
    template: Str
    span: Span


class DialogueTurn(AstNode):
    role: Name
    model: Name | None
    template: Str
    span: Span


class Dialogue(AstNode):
    """`dialogue FIELD rounds A..B { ROLE [using MODEL] "template" ... }`"""

    field: Name
    rounds: RangeArg
    turns: tuple[DialogueTurn, ...]
    span: Span


class Candidates(AstNode):
    """`candidates BEST, WORST from N [using MODEL] "template" ranked by judge [using MODEL] "rubric"`"""

    best: Name
    worst: Name
    n: Lit
    model: Name | None
    template: Str
    judge_model: Name | None
    rubric: Str
    span: Span


class Rewrite(AstNode):
    """`rewrite body, subject`: in a block grown from real rows, the fields the model writes anew."""

    fields: tuple[Name, ...]
    span: Span


class Resample(AstNode):
    """`resample street, city`: in a block grown from real rows, the fields drawn again."""

    fields: tuple[Name, ...]
    span: Span


class LabelCheck(AstNode):
    """`label check by MODEL`: the model reads each record's label blind; disagreement rejects."""

    model: Name
    span: Span


class GenerateDecl(AstNode):
    schema: Name
    alias: Name | None
    items: tuple[Any, ...]  # of the item nodes below, in source order
    span: Span
    source: Name | None = None  # `generate T from SEEDS`: each attempt starts from one of its rows


class Keyword(AstNode):
    """A generate/output/evaluate item with a simple payload, e.g. `count 2000`."""

    keyword: str
    value: object
    span: Span


class OutputDecl(AstNode):
    path: Str
    items: tuple[Any, ...]
    span: Span


class Format(AstNode):
    """`format NAME [from FIELD, ...]`"""

    name: Name
    fields: tuple[Name, ...]
    span: Span
    keyword: str = "format"


class SplitEntry(AstNode):
    name: Name
    share: Lit
    span: Span


class EvaluateDecl(AstNode):
    label: Name
    items: tuple[Any, ...]
    span: Span


Decl = Import | SettingsBlock | EnumDecl | SchemaDecl | SeedsDecl | GenerateDecl | OutputDecl | EvaluateDecl


class Module(AstNode):
    source: SourceFile
    decls: tuple[Decl, ...] = field(default=())
