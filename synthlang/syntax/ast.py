"""The abstract syntax tree. Plain frozen dataclasses, each with the span it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..source import SourceFile, Span


@dataclass(frozen=True)
class Name:
    value: str
    span: Span


@dataclass(frozen=True)
class Lit:
    """A literal. kind: str | int | float | percent | date | bool | ident."""

    kind: str
    value: Any  # a str, int, float, percent (float), date, bool or identifier (str), as `kind` says
    span: Span


@dataclass(frozen=True)
class Str:
    value: str
    span: Span
    # the source line of the string's first content line (for prompt diagnostics)
    first_line: int = 1
    # column offset of the template's text within the source lines (dedent removed this much)
    indent: int = 0


# ---- types -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RangeArg:
    lo: Lit | None
    hi: Lit | None
    span: Span


@dataclass(frozen=True)
class RegexArg:
    pattern: str
    span: Span


TypeArg = RangeArg | RegexArg


@dataclass(frozen=True)
class NamedType:
    name: Name
    args: tuple[TypeArg, ...] | None
    span: Span


@dataclass(frozen=True)
class ListType:
    item: TypeExpr
    args: tuple[TypeArg, ...] | None
    span: Span


@dataclass(frozen=True)
class LiteralUnion:
    options: tuple[Str, ...]
    span: Span


TypeExpr = NamedType | ListType | LiteralUnion


# ---- expressions -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Ref:
    parts: tuple[Name, ...]
    span: Span


@dataclass(frozen=True)
class Call:
    func: Name
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * / % == != < <= > >= and or in not_in contains
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Matches:
    operand: Expr
    pattern: RegexArg
    span: Span


@dataclass(frozen=True)
class UnOp:
    op: str  # not | neg
    operand: Expr
    span: Span


@dataclass(frozen=True)
class ListLit:
    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class Null:
    span: Span


Expr = Lit | Str | Ref | Call | BinOp | Matches | UnOp | ListLit | Null


# ---- sources of a field ------------------------------------------------------------------------
@dataclass(frozen=True)
class SamplerNode:
    kind: str  # uniform | weights | pick | regex | faker
    args: tuple[Any, ...] = ()
    span: Span | None = None


@dataclass(frozen=True)
class Derived:
    expr: Expr
    span: Span


@dataclass(frozen=True)
class Field:
    name: Name
    type: TypeExpr
    optional: bool
    source: SamplerNode | Derived | None
    mentions: tuple[Name, ...]
    span: Span


# ---- declarations --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    key: Name
    value: Lit | Str
    span: Span


@dataclass(frozen=True)
class Import:
    path: Str
    span: Span


@dataclass(frozen=True)
class SettingsBlock:
    keyword: str  # dataset | model
    name: Name
    settings: tuple[Setting, ...]
    span: Span


@dataclass(frozen=True)
class EnumDecl:
    name: Name
    members: tuple[Name, ...]
    span: Span


@dataclass(frozen=True)
class SchemaDecl:
    name: Name
    fields: tuple[Field, ...]
    span: Span


@dataclass(frozen=True)
class SeedsDecl:
    name: Name
    path: Str
    schema: Name
    span: Span


@dataclass(frozen=True)
class QuotaEntry:
    key: Lit | Str
    share: Lit  # percent or int
    span: Span


@dataclass(frozen=True)
class Quota:
    field: Name
    entries: tuple[QuotaEntry, ...]
    span: Span


@dataclass(frozen=True)
class Examples:
    n: Lit
    seeds: Name
    matching: tuple[Name, ...]
    span: Span


@dataclass(frozen=True)
class NoiseRule:
    rule: Name
    formats: tuple[Str, ...] | None
    rate: Lit | None
    span: Span


@dataclass(frozen=True)
class Noise:
    field: Name
    rules: tuple[NoiseRule, ...]
    span: Span


@dataclass(frozen=True)
class Dedup:
    field: Name
    mode: str  # exact | near
    threshold: Lit | None
    span: Span


@dataclass(frozen=True)
class Judge:
    model: Name | None
    min_score: Lit
    rubric: Str
    span: Span


@dataclass(frozen=True)
class Check:
    expr: Expr
    span: Span


@dataclass(frozen=True)
class Allow:
    """`allow truncated, copies`: plausibility filters switched off for a block."""

    filters: tuple[Name, ...]
    span: Span


@dataclass(frozen=True)
class Step:
    """`step FIELDS [using MODEL] [when EXPR] "template"`: one request writing these fields."""

    fields: tuple[Name, ...]
    model: Name | None
    when: Expr | None
    template: Str
    span: Span


@dataclass(frozen=True)
class DialogueTurn:
    role: Name
    model: Name | None
    template: Str
    span: Span


@dataclass(frozen=True)
class Dialogue:
    """`dialogue FIELD rounds A..B { ROLE [using MODEL] "template" ... }`"""

    field: Name
    rounds: RangeArg
    turns: tuple[DialogueTurn, ...]
    span: Span


@dataclass(frozen=True)
class Candidates:
    """`candidates BEST, WORST from N [using MODEL] "template" ranked by judge [using MODEL] "rubric"`"""

    best: Name
    worst: Name
    n: Lit
    model: Name | None
    template: Str
    judge_model: Name | None
    rubric: Str
    span: Span


@dataclass(frozen=True)
class GenerateDecl:
    schema: Name
    alias: Name | None
    items: tuple[Any, ...]  # of the item nodes below, in source order
    span: Span


@dataclass(frozen=True)
class Keyword:
    """A generate/output/evaluate item with a simple payload, e.g. `count 2000`."""

    keyword: str
    value: object
    span: Span


@dataclass(frozen=True)
class OutputDecl:
    path: Str
    items: tuple[Any, ...]
    span: Span


@dataclass(frozen=True)
class Format:
    """`format NAME [from FIELD, ...]`"""

    name: Name
    fields: tuple[Name, ...]
    span: Span
    keyword: str = "format"


@dataclass(frozen=True)
class SplitEntry:
    name: Name
    share: Lit
    span: Span


@dataclass(frozen=True)
class EvaluateDecl:
    label: Name
    items: tuple[Any, ...]
    span: Span


Decl = Import | SettingsBlock | EnumDecl | SchemaDecl | SeedsDecl | GenerateDecl | OutputDecl | EvaluateDecl


@dataclass(frozen=True)
class Module:
    source: SourceFile
    decls: tuple[Decl, ...] = field(default=())
