"""parse_source: text -> Module AST, or a syntax diagnostic. Never raises on bad input."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Collection
from datetime import date
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.tree import Meta

from ..diagnostics import DiagnosticSink
from ..source import SourceFile, Span
from . import ast
from .confusables import character_problem
from .hints import character_hint, interactive_stack, keyword_suggestion, misplaced_when, operator_hint, unclosed_brace

INT_LIMIT = 2**63 - 1


def grammar_path() -> Path:
    """The one grammar file: inside the installed package, or grammar/ in a source checkout."""
    shipped = resources.files("synthlang").joinpath("grammar/synth.lark")
    if shipped.is_file():
        return Path(str(shipped))
    return Path(__file__).resolve().parents[2] / "grammar" / "synth.lark"


@lru_cache(maxsize=1)
def get_parser() -> Lark:
    text = grammar_path().read_text(encoding="utf-8")
    return Lark(text, parser="lalr", lexer="contextual", propagate_positions=True,
                maybe_placeholders=True, strict=True, cache=True)


class _ParseAbort(Exception):
    def __init__(self, code: str, message: str, start: int, end: int, help: str | None = None):
        super().__init__(message)
        self.code, self.message, self.start, self.end, self.help = code, message, start, end, help


_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "0": "\0", "/": "/"}
_ESCAPE_RE = re.compile(r"\\(.)", re.S)


def _unescape(raw: str, start: int) -> str:
    def sub(m: re.Match[str]) -> str:
        ch = m.group(1)
        if ch in _ESCAPES:
            return _ESCAPES[ch]
        if ch == "\n":
            return ""
        raise _ParseAbort("E0002", f"unknown escape `\\{ch}` in string", start + m.start(), start + m.end(),
                          help='strings know \\" \\\\ \\n \\t \\r \\0; write \\\\ for a backslash')
    return _ESCAPE_RE.sub(sub, raw)


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _with_meta(method: _Method) -> _Method:
    """Mark a rule method that takes the node's position (meta) before its children."""
    setattr(method, "with_meta", True)  # noqa: B010 - an attribute functions do not declare
    return method


class _ToAst:
    """Parse tree -> AST, bottom up: each rule's method gets its children already converted.

    A direct walk with a dispatch table rather than lark's Transformer, whose per-node
    overhead was most of the time spent parsing a large spec."""

    def __init__(self, source: SourceFile):
        self.src = source
        self._dispatch: dict[str, tuple[Callable[..., Any] | None, bool]] = {}

    def transform(self, tree: Tree[Token]) -> Any:
        dispatch = self._dispatch
        children = [self.transform(c) if isinstance(c, Tree) else c for c in tree.children]
        entry = dispatch.get(tree.data)
        if entry is None:
            method = getattr(self, tree.data, None)
            entry = dispatch[tree.data] = (method, bool(getattr(method, "with_meta", False)))
        method, with_meta = entry
        if method is None:
            return Tree(tree.data, children, tree.meta)
        return method(tree.meta, children) if with_meta else method(children)

    # helpers ---------------------------------------------------------------------------------
    def _span(self, meta_or_tok: Meta | Token) -> Span:
        if isinstance(meta_or_tok, Token):
            start = meta_or_tok.start_pos or 0
            return Span(self.src, start, meta_or_tok.end_pos if meta_or_tok.end_pos is not None else start)
        if getattr(meta_or_tok, "empty", False):
            return Span(self.src, 0, 0)
        return Span(self.src, meta_or_tok.start_pos, meta_or_tok.end_pos)

    def _name(self, tok: Token) -> ast.Name:
        return ast.Name(str(tok), self._span(tok))


    # tokens wrapped in rules ------------------------------------------------------------------
    def ident(self, children: list[Any]) -> ast.Lit:
        tok = children[0]
        return ast.Lit("ident", str(tok), self._span(tok))

    def string(self, children: list[Any]) -> ast.Str:
        tok = children[0]
        raw = str(tok)
        line, _ = self.src.line_col(tok.start_pos)
        if raw.startswith('"""'):
            body = _unescape(raw[3:-3], tok.start_pos + 3)
            first_line = line
            if body.startswith("\n"):
                body = body[1:]
                first_line += 1
            elif body.startswith("\r\n"):
                body = body[2:]
                first_line += 1
            lines = body.split("\n")
            if lines and lines[-1].strip() == "":
                lines[-1] = ""
            body = "\n".join(lines)
            dedented = textwrap.dedent(body)
            indent = 0
            for orig, new in zip(body.split("\n"), dedented.split("\n")):
                if new.strip():
                    indent = len(orig) - len(new)
                    break
            if dedented.endswith("\n"):
                dedented = dedented[:-1]
            return ast.Str(dedented, self._span(tok), first_line, indent)
        return ast.Str(_unescape(raw[1:-1], tok.start_pos + 1), self._span(tok), line, 0)

    def number(self, children: list[Any]) -> ast.Lit:
        tok = children[0]
        text = str(tok).replace("_", "")
        span = self._span(tok)
        if re.fullmatch(r"-?[0-9]+", text):
            # no int() of thousands of digits (Python refuses past 4300; the limit is 19)
            value = int(text) if len(text.lstrip("-0")) <= 20 else INT_LIMIT + 1
            if abs(value) > INT_LIMIT:
                raise _ParseAbort("E0004", f"integer {_token_text(tok)} is out of range", tok.start_pos, tok.end_pos,
                                  help=f"integers must lie within ±{INT_LIMIT}")
            return ast.Lit("int", value, span)
        number = float(text)
        if number in (float("inf"), float("-inf")) or abs(number) > 1e300:
            raise _ParseAbort("E0004", f"number {_token_text(tok)} is out of range", tok.start_pos, tok.end_pos)
        return ast.Lit("float", number, span)

    def percent(self, children: list[Any]) -> ast.Lit:
        tok = children[0]
        value = float(str(tok)[:-1].replace("_", ""))
        if abs(value) > 1e300:
            raise _ParseAbort("E0004", f"percentage {_token_text(tok)} is out of range", tok.start_pos, tok.end_pos)
        return ast.Lit("percent", value, self._span(tok))

    def date(self, children: list[Any]) -> ast.Lit:
        tok = children[0]
        try:
            value = date.fromisoformat(str(tok))
        except ValueError:
            raise _ParseAbort("E0002", f"`{tok}` is not a valid date", tok.start_pos, tok.end_pos,
                              help="dates are written YYYY-MM-DD") from None
        return ast.Lit("date", value, self._span(tok))

    def regex(self, children: list[Any]) -> ast.RegexArg:
        tok = children[0]
        body = str(tok)[1:-1]
        for start, end in _repeat_counts(body):
            digits = body[start:end]
            if len(digits.lstrip("0")) > len(str(MAX_REPEAT)) or int(digits) > MAX_REPEAT:
                at = tok.start_pos + 1
                raise _ParseAbort("E0004", f"repetition count {_shorten(digits)} is out of range", at + start,
                                  at + end, help=f"a regex repeats a part at most {MAX_REPEAT:,} times")
        return ast.RegexArg(body.replace("\\/", "/"), self._span(tok))

    @_with_meta
    def true(self, meta: Meta, children: list[Any]) -> ast.Lit:
        return ast.Lit("bool", True, self._span(meta))

    @_with_meta
    def false(self, meta: Meta, children: list[Any]) -> ast.Lit:
        return ast.Lit("bool", False, self._span(meta))

    # declarations ------------------------------------------------------------------------------
    def start(self, children: list[Any]) -> ast.Module:
        return ast.Module(self.src, tuple(children))

    @_with_meta
    def import_decl(self, meta: Meta, children: list[Any]) -> ast.Import:
        return ast.Import(children[0], self._span(meta))

    @_with_meta
    def setting(self, meta: Meta, children: list[Any]) -> ast.Setting:
        return ast.Setting(self._name(children[0]), children[1], self._span(meta))

    def _settings_block(self, keyword: str, meta: Meta, children: list[Any]) -> ast.SettingsBlock:
        return ast.SettingsBlock(keyword, self._name(children[0]), tuple(children[1:]), self._span(meta))

    @_with_meta
    def dataset_decl(self, meta: Meta, children: list[Any]) -> ast.SettingsBlock:
        return self._settings_block("dataset", meta, children)

    @_with_meta
    def model_decl(self, meta: Meta, children: list[Any]) -> ast.SettingsBlock:
        return self._settings_block("model", meta, children)

    @_with_meta
    def enum_decl(self, meta: Meta, children: list[Any]) -> ast.EnumDecl:
        members = tuple(c for c in children[1:] if c is not None)
        return ast.EnumDecl(self._name(children[0]), members, self._span(meta))

    def enum_member(self, children: list[Any]) -> Any:
        return self._name(children[0])

    @_with_meta
    def schema_decl(self, meta: Meta, children: list[Any]) -> ast.SchemaDecl:
        return ast.SchemaDecl(self._name(children[0]), tuple(children[1:]), self._span(meta))

    @_with_meta
    def field(self, meta: Meta, children: list[Any]) -> ast.Field:
        name_tok, type_expr, optional, source, mentions = children
        return ast.Field(self._name(name_tok), type_expr, optional is not None, source,
                         mentions or (), self._span(meta))

    def optional_mark(self, children: list[Any]) -> Any:
        return True

    @_with_meta
    def named_type(self, meta: Meta, children: list[Any]) -> ast.NamedType:
        return ast.NamedType(self._name(children[0]), children[1], self._span(meta))

    @_with_meta
    def list_type(self, meta: Meta, children: list[Any]) -> ast.ListType:
        return ast.ListType(children[0], children[1], self._span(meta))

    @_with_meta
    def literal_union(self, meta: Meta, children: list[Any]) -> ast.LiteralUnion:
        return ast.LiteralUnion(tuple(children), self._span(meta))

    def type_args(self, children: list[Any]) -> Any:
        return tuple(c for c in children if c is not None)

    @_with_meta
    def range(self, meta: Meta, children: list[Any]) -> ast.RangeArg:
        return ast.RangeArg(children[0], children[1], self._span(meta))

    @_with_meta
    def sampled(self, meta: Meta, children: list[Any]) -> ast.SamplerNode:
        s = children[0]
        return ast.SamplerNode(s.kind, s.args, self._span(meta))

    @_with_meta
    def derived(self, meta: Meta, children: list[Any]) -> ast.Derived:
        return ast.Derived(children[0], self._span(meta))

    @_with_meta
    def uniform(self, meta: Meta, children: list[Any]) -> ast.SamplerNode:
        return ast.SamplerNode("uniform", (), self._span(meta))

    @_with_meta
    def weights(self, meta: Meta, children: list[Any]) -> ast.SamplerNode:
        return ast.SamplerNode("weights", tuple(children), self._span(meta))

    @_with_meta
    def pick(self, meta: Meta, children: list[Any]) -> ast.SamplerNode:
        return ast.SamplerNode("pick", tuple(children), self._span(meta))

    @_with_meta
    def regex_sampler(self, meta: Meta, children: list[Any]) -> ast.SamplerNode:
        return ast.SamplerNode("regex", (), self._span(meta))

    @_with_meta
    def faker(self, meta: Meta, children: list[Any]) -> ast.SamplerNode:
        return ast.SamplerNode("faker", (children[0],), self._span(meta))

    def mentions(self, children: list[Any]) -> Any:
        return tuple(children)

    @_with_meta
    def pick_by(self, meta: Meta, children: list[Any]) -> ast.SamplerNode:
        return ast.SamplerNode("pick_by", (self._name(children[0]), *children[1:]), self._span(meta))

    @_with_meta
    def weights_by(self, meta: Meta, children: list[Any]) -> ast.SamplerNode:
        return ast.SamplerNode("weights_by", (self._name(children[0]), *children[1:]), self._span(meta))

    @_with_meta
    def draw(self, meta: Meta, children: list[Any]) -> ast.SamplerNode:
        ref, matching, weight = children
        return ast.SamplerNode("draw", (ref, matching, weight), self._span(meta))

    @_with_meta
    def draw_ref(self, meta: Meta, children: list[Any]) -> ast.DrawRef:
        seeds, column = children
        return ast.DrawRef(self._name(seeds), self._name(column) if column is not None else None, self._span(meta))

    def draw_matching(self, children: list[Any]) -> ast.Name:
        return self._name(children[0])

    def draw_weight(self, children: list[Any]) -> ast.DrawRef:
        ref: ast.DrawRef = children[0]
        return ref

    @_with_meta
    def pick_case(self, meta: Meta, children: list[Any]) -> ast.SamplerCase:
        return ast.SamplerCase(children[0], tuple(children[1:]), self._span(meta))

    @_with_meta
    def weight_case(self, meta: Meta, children: list[Any]) -> ast.SamplerCase:
        return ast.SamplerCase(children[0], tuple(children[1:]), self._span(meta))

    def else_key(self, children: list[Any]) -> None:
        return None

    @_with_meta
    def mention_path(self, meta: Meta, children: list[Any]) -> ast.Name:
        """A mentioned path is one name, dotted: `items.product`."""
        return ast.Name(".".join(str(t) for t in children), self._span(meta))

    @_with_meta
    def seeds_decl(self, meta: Meta, children: list[Any]) -> ast.SeedsDecl:
        return ast.SeedsDecl(self._name(children[0]), children[1], self._name(children[2]), self._span(meta))

    # generate ------------------------------------------------------------------------------------
    @_with_meta
    def generate_decl(self, meta: Meta, children: list[Any]) -> ast.GenerateDecl:
        schema, alias, source, *items = children
        return ast.GenerateDecl(self._name(schema), alias, tuple(items), self._span(meta), source)

    def gen_alias(self, children: list[Any]) -> Any:
        return self._name(children[0])

    def gen_from(self, children: list[Any]) -> Any:
        return self._name(children[0])

    @_with_meta
    def rewrite_item(self, meta: Meta, children: list[Any]) -> ast.Rewrite:
        return ast.Rewrite(tuple(self._name(c) for c in children), self._span(meta))

    @_with_meta
    def resample_item(self, meta: Meta, children: list[Any]) -> ast.Resample:
        return ast.Resample(tuple(self._name(c) for c in children), self._span(meta))

    @_with_meta
    def label_check_item(self, meta: Meta, children: list[Any]) -> ast.LabelCheck:
        return ast.LabelCheck(self._name(children[0]), self._span(meta))

    @_with_meta
    def count_item(self, meta: Meta, children: list[Any]) -> ast.Keyword:
        return ast.Keyword("count", children[0], self._span(meta))

    @_with_meta
    def using_item(self, meta: Meta, children: list[Any]) -> ast.Keyword:
        return ast.Keyword("using", self._name(children[0]), self._span(meta))

    @_with_meta
    def quota_item(self, meta: Meta, children: list[Any]) -> ast.Quota:
        return ast.Quota(self._name(children[0]), tuple(children[1:]), self._span(meta))

    @_with_meta
    def quota_entry(self, meta: Meta, children: list[Any]) -> ast.QuotaEntry:
        return ast.QuotaEntry(children[0], children[1], self._span(meta))

    @_with_meta
    def examples_item(self, meta: Meta, children: list[Any]) -> ast.Examples:
        n, seeds, matching = children
        return ast.Examples(n, self._name(seeds), matching or (), self._span(meta))

    def examples_matching(self, children: list[Any]) -> Any:
        return tuple(self._name(t) for t in children)

    @_with_meta
    def prompt_item(self, meta: Meta, children: list[Any]) -> ast.Keyword:
        return ast.Keyword("prompt", children[0], self._span(meta))

    @_with_meta
    def noise_item(self, meta: Meta, children: list[Any]) -> ast.Noise:
        return ast.Noise(self._name(children[0]), tuple(children[1:]), self._span(meta))

    @_with_meta
    def noise_rule(self, meta: Meta, children: list[Any]) -> ast.NoiseRule:
        name, formats, rate = children
        return ast.NoiseRule(self._name(name), formats, rate, self._span(meta))

    def string_list(self, children: list[Any]) -> Any:
        return tuple(children)

    @_with_meta
    def check_item(self, meta: Meta, children: list[Any]) -> ast.Check:
        return ast.Check(children[0], self._span(meta))

    @_with_meta
    def dedup_item(self, meta: Meta, children: list[Any]) -> ast.Dedup:
        name, (mode, threshold) = children
        return ast.Dedup(self._name(name), mode, threshold, self._span(meta))

    def dedup_exact(self, children: list[Any]) -> Any:
        return ("exact", None)

    def dedup_near(self, children: list[Any]) -> Any:
        return ("near", children[0])

    @_with_meta
    def allow_item(self, meta: Meta, children: list[Any]) -> ast.Allow:
        return ast.Allow(tuple(self._name(c) for c in children), self._span(meta))

    @_with_meta
    def judge_item(self, meta: Meta, children: list[Any]) -> ast.Judge:
        using, min_score, rubric = children
        return ast.Judge(using, min_score, rubric, self._span(meta))

    def judge_using(self, children: list[Any]) -> Any:
        return self._name(children[0])

    def step_using(self, children: list[Any]) -> Any:
        return self._name(children[0])

    def step_when(self, children: list[Any]) -> Any:
        return children[0]

    @_with_meta
    def step_item(self, meta: Meta, children: list[Any]) -> ast.Step:
        *names, using, when, template = children
        return ast.Step(tuple(self._name(n) for n in names), using, when, template, self._span(meta))

    @_with_meta
    def rounds(self, meta: Meta, children: list[Any]) -> ast.RangeArg:
        return ast.RangeArg(children[0], children[1], self._span(meta))

    @_with_meta
    def dialogue_turn(self, meta: Meta, children: list[Any]) -> ast.DialogueTurn:
        role, using, template = children
        return ast.DialogueTurn(self._name(role), using, template, self._span(meta))

    @_with_meta
    def dialogue_item(self, meta: Meta, children: list[Any]) -> ast.Dialogue:
        field, rounds, *turns = children
        return ast.Dialogue(self._name(field), rounds, tuple(turns), self._span(meta))

    @_with_meta
    def candidates_item(self, meta: Meta, children: list[Any]) -> ast.Candidates:
        best, worst, n, using, template, judge_using, rubric = children
        return ast.Candidates(self._name(best), self._name(worst), n, using, template, judge_using, rubric,
                              self._span(meta))

    # output / evaluate -----------------------------------------------------------------------------
    @_with_meta
    def output_decl(self, meta: Meta, children: list[Any]) -> ast.OutputDecl:
        return ast.OutputDecl(children[0], tuple(children[1:]), self._span(meta))

    @_with_meta
    def format_item(self, meta: Meta, children: list[Any]) -> ast.Format:
        return ast.Format(self._name(children[0]), children[1] or (), self._span(meta))

    def format_from(self, children: list[Any]) -> tuple[ast.Name, ...]:
        return tuple(self._name(c) for c in children)

    @_with_meta
    def split_item(self, meta: Meta, children: list[Any]) -> ast.Keyword:
        return ast.Keyword("split", tuple(children), self._span(meta))

    @_with_meta
    def split_entry(self, meta: Meta, children: list[Any]) -> ast.SplitEntry:
        return ast.SplitEntry(self._name(children[0]), children[1], self._span(meta))

    @_with_meta
    def mix_item(self, meta: Meta, children: list[Any]) -> ast.Keyword:
        return ast.Keyword("mix", (self._name(children[0]), children[1]), self._span(meta))

    @_with_meta
    def evaluate_decl(self, meta: Meta, children: list[Any]) -> ast.EvaluateDecl:
        return ast.EvaluateDecl(self._name(children[0]), tuple(children[1:]), self._span(meta))

    @_with_meta
    def eval_text(self, meta: Meta, children: list[Any]) -> ast.Keyword:
        return ast.Keyword("text", self._name(children[0]), self._span(meta))

    @_with_meta
    def eval_test(self, meta: Meta, children: list[Any]) -> ast.Keyword:
        return ast.Keyword("test", children[0], self._span(meta))

    @_with_meta
    def eval_compare(self, meta: Meta, children: list[Any]) -> ast.Keyword:
        return ast.Keyword("compare", tuple(self._name(t) for t in children), self._span(meta))

    # expressions ---------------------------------------------------------------------------------------
    @_with_meta
    def or_(self, meta: Meta, children: list[Any]) -> ast.BinOp:
        return ast.BinOp("or", children[0], children[1], self._span(meta))

    @_with_meta
    def and_(self, meta: Meta, children: list[Any]) -> ast.BinOp:
        return ast.BinOp("and", children[0], children[1], self._span(meta))

    @_with_meta
    def not_(self, meta: Meta, children: list[Any]) -> ast.UnOp:
        return ast.UnOp("not", children[0], self._span(meta))

    @_with_meta
    def neg(self, meta: Meta, children: list[Any]) -> ast.UnOp:
        return ast.UnOp("neg", children[1], self._span(meta))

    @_with_meta
    def compare(self, meta: Meta, children: list[Any]) -> ast.BinOp:
        return ast.BinOp(str(children[1]), children[0], children[2], self._span(meta))

    @_with_meta
    def binop(self, meta: Meta, children: list[Any]) -> ast.BinOp:
        return ast.BinOp(str(children[1]), children[0], children[2], self._span(meta))

    @_with_meta
    def in_(self, meta: Meta, children: list[Any]) -> ast.BinOp:
        return ast.BinOp("in", children[0], children[1], self._span(meta))

    @_with_meta
    def not_in(self, meta: Meta, children: list[Any]) -> ast.BinOp:
        return ast.BinOp("not_in", children[0], children[1], self._span(meta))

    @_with_meta
    def contains(self, meta: Meta, children: list[Any]) -> ast.BinOp:
        return ast.BinOp("contains", children[0], children[1], self._span(meta))

    @_with_meta
    def matches(self, meta: Meta, children: list[Any]) -> ast.Matches:
        return ast.Matches(children[0], children[1], self._span(meta))

    @_with_meta
    def null(self, meta: Meta, children: list[Any]) -> ast.Null:
        return ast.Null(self._span(meta))

    @_with_meta
    def list_lit(self, meta: Meta, children: list[Any]) -> ast.ListLit:
        return ast.ListLit(tuple(c for c in children if c is not None), self._span(meta))

    @_with_meta
    def ref(self, meta: Meta, children: list[Any]) -> ast.Ref:
        return ast.Ref(tuple(self._name(t) for t in children), self._span(meta))

    @_with_meta
    def call(self, meta: Meta, children: list[Any]) -> ast.Call:
        return ast.Call(self._name(children[0]), tuple(c for c in children[1:] if c is not None),
                        self._span(meta))

    @_with_meta
    def index(self, meta: Meta, children: list[Any]) -> ast.Index:
        return ast.Index(children[0], children[1], tuple(self._name(t) for t in children[2:]), self._span(meta))

    @_with_meta
    def each(self, meta: Meta, children: list[Any]) -> ast.Each:
        element, var, items = children
        return ast.Each(element, self._name(var), items, self._span(meta))

    @_with_meta
    def each_call(self, meta: Meta, children: list[Any]) -> ast.Call:
        func, element, var, items = children
        each = ast.Each(element, self._name(var), items, self._span(meta))
        return ast.Call(self._name(func), (each,), self._span(meta))


# Friendly names for terminals in "expected ..." messages.
_TERMINAL_NAMES = {
    "NAME": "a name", "STRING": "a string", "LONG_STRING": "a string", "SIGNED_NUMBER": "a number",
    "PERCENT": "a percentage", "DATE": "a date", "REGEX": "a regex /.../", "COMP_OP": "a comparison",
    "PLUS": "`+`", "MINUS": "`-`", "MUL_OP": "`*`, `/` or `%`", "$END": "end of file",
}


def _describe_expected(parser: Lark, expected: Collection[str]) -> list[str]:
    names: set[str] = set()
    by_name = {t.name: t for t in parser.terminals}
    for term in expected:
        if term in _TERMINAL_NAMES:
            names.add(_TERMINAL_NAMES[term])
        elif term in by_name and by_name[term].pattern.type == "str":
            names.add(f"`{by_name[term].pattern.value}`")
        else:
            names.add(term.lower())
    return sorted(names)


def _expected_text(items: list[str]) -> str:
    if not items:
        return ""
    if len(items) > 8:
        items = items[:8] + ["…"]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


# the most repetitions Python's `re` takes in `{m,n}` (sre's MAXREPEAT is one more)
MAX_REPEAT = 4_294_967_294
_REPEAT = re.compile(r"\{([0-9]*)(?:,([0-9]*))?\}")


def _repeat_counts(pattern: str) -> list[tuple[int, int]]:
    """[start, end) of each number in a `{m}`, `{m,}` or `{m,n}` repetition of a regex, outside
    escapes and character classes (where a brace is a plain character)."""
    found = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            i += 1
            i += 1 if pattern.startswith("^", i) else 0
            i += 1 if pattern.startswith("]", i) else 0  # a `]` first in a class is a plain character
            continue
        elif ch == "{":
            m = _REPEAT.match(pattern, i)
            if m:
                found += [(m.start(g), m.end(g)) for g in (1, 2) if m.group(g)]
                i = m.end()
                continue
        i += 1
    return found


def _shorten(text: str) -> str:
    return f"`{text}`" if len(text) <= 30 else f"`{text[:27]}...` ({len(text):,} digits)"


def _token_text(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    text = str(tok)
    if len(text) > 30:
        text = text[:27] + "..."
    return f"`{text}`"


MAX_DEPTH = 100
# terms of one operator chain plus the nesting around it: the IR walks chains recursively, and
# a plan is written and read recursively (nodes.py), three frames a level
MAX_CHAIN = 240


def _too_deep(tree: Tree[Token]) -> tuple[int, str] | None:
    """(offset, problem) of a node nested deeper than MAX_DEPTH or ending an operator chain
    longer than MAX_CHAIN, checked without recursion."""
    from lark import Tree

    stack = [(tree, 1, 1)]
    while stack:
        node, depth, chain = stack.pop()
        if depth > MAX_DEPTH or depth + chain > MAX_CHAIN:
            meta = node.meta
            where = getattr(meta, "start_pos", 0) if not getattr(meta, "empty", True) else 0
            return where, (f"an expression of more than {MAX_CHAIN} terms" if depth <= MAX_DEPTH
                           else f"nesting deeper than {MAX_DEPTH} levels")
        # a left-associative chain (`a + b + c`, `x or y or z`) is long, not deep: its first
        # child of the same rule stays at this level (the chain's length has a bound of its own)
        for i, c in enumerate(node.children):
            if isinstance(c, Tree):
                same = i == 0 and c.data == node.data
                stack.append((c, depth if same else depth + 1, chain + 1 if same else 1))
    return None


_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _keyword_as_name(exc: UnexpectedInput) -> bool:
    """Error handler: a keyword where the parser wanted a name is that name.

    The contextual lexer reads a keyword wherever some use of the current LALR state could take
    one: after a string or a number, LALR merges what may follow across every place a string or
    an expression appears, so the field after `channel: "a" | "b"` or `n: int = 5` could not be
    called `text` or `using`. Re-reading the token as a NAME when the keyword does not fit but a
    name does keeps keywords usable as field names everywhere the grammar can tell them apart."""
    if not isinstance(exc, UnexpectedToken):
        return False
    tok = exc.token
    if tok.type == "NAME" or not _NAME_RE.fullmatch(str(tok)) or "NAME" not in exc.expected:
        return False
    exc.interactive_parser.feed_token(Token.new_borrow_pos("NAME", str(tok), tok))
    return True


def parse_source(source: SourceFile, sink: DiagnosticSink) -> ast.Module | None:
    """Parse one file. Returns None (with a diagnostic in the sink) on a syntax error."""
    parser = get_parser()
    if "\0" in source.text:
        sink.error("E0003", "file contains NUL bytes; is it a binary file?", source.span(0, 0))
        return None
    try:
        tree = parser.parse(source.text, on_error=_keyword_as_name)
        deep = _too_deep(tree)
        if deep is not None:
            where, problem = deep
            sink.error("E0001", problem, source.span(where, where + 1),
                       help="split the expression or the type into smaller parts")
            return None
        module: ast.Module = _ToAst(source).transform(tree)
        return module
    except _ParseAbort as exc:
        sink.error(exc.code, exc.message, source.span(exc.start, exc.end), help=exc.help)
        return None
    except UnexpectedCharacters as exc:
        _report_characters(parser, source, exc, sink)
        return None
    except UnexpectedToken as exc:
        _report_token(parser, source, exc, sink)
        return None
    except UnexpectedEOF as exc:
        expected = _describe_expected(parser, exc.expected)
        end = len(source.text)
        sink.error("E0001", "unexpected end of file", source.span(end, end),
                   help=f"expected {_expected_text(expected)}" if expected else None)
        return None
    except UnexpectedInput as exc:  # pragma: no cover - other lark input errors
        pos = getattr(exc, "pos_in_stream", 0) or 0
        sink.error("E0001", "syntax error", source.span(pos, pos))
        return None
    except RecursionError:
        sink.error("E0001", "nesting too deep", source.span(0, 0),
                   help="split the expression or the type into smaller parts")
        return None


def _report_characters(parser: Lark, source: SourceFile, exc: UnexpectedCharacters, sink: DiagnosticSink) -> None:
    """A character no token can start with: an unterminated string or regex, an operator of
    another language (`&&`), or a character outside ASCII, named by its code point."""
    text = source.text
    pos = exc.pos_in_stream or 0
    ch = text[pos] if pos < len(text) else ""
    if text.startswith('"""', pos) or (ch == '"' and text[max(0, pos - 2):pos] == '""'):
        pos = pos if text.startswith('"""', pos) else pos - 2
        sink.error("E0002", "unterminated multi-line string", source.span(pos, pos + 3),
                   help='close it with `"""`')
        return
    if ch == '"':
        sink.error("E0002", "unterminated string", source.span(pos, pos + 1),
                   help='close it with `"` on the same line; use """...""" for text over several lines')
        return
    if ch == "/":
        sink.error("E0002", "unterminated regex", source.span(pos, pos + 1),
                   help="close it with `/` on the same line; write `\\/` for a slash inside it")
        return
    expected = _describe_expected(parser, exc.allowed or ())
    fallback = f"expected {_expected_text(expected)}" if expected else None
    if ch and not ch.isascii():
        message, help = character_problem(ch)
    else:
        message = f"unexpected character `{ch}`" if ch.isprintable() else f"unexpected character U+{ord(ch):04X}"
        help = character_hint(text, pos)
    sink.error("E0002", message, source.span(pos, pos + 1), help=help or fallback)


def _report_token(parser: Lark, source: SourceFile, exc: UnexpectedToken, sink: DiagnosticSink) -> None:
    """A token the grammar cannot take here, with the likeliest fix as its help: a keyword it
    resembles, the operator meant, the `}` a block is missing, or the tokens expected."""
    tok = exc.token
    at_end = tok.type == "$END"
    start = tok.start_pos if tok.start_pos is not None else len(source.text)
    end = tok.end_pos if tok.end_pos is not None else start
    expected = _describe_expected(parser, exc.expected)
    if str(tok) == "/" and "REGEX" in exc.expected:
        sink.error("E0002", "unterminated regex", source.span(start, end),
                   help="close it with `/` on the same line; write `\\/` for a slash inside it")
        return
    stack = interactive_stack(exc)
    when = misplaced_when(source, stack)
    if when is not None:
        word, hint = when
        sink.error("E0001", "`when` cannot follow a field's type",
                   source.span(word.start_pos or 0, word.end_pos or 0), help=hint)
        return
    unclosed = unclosed_brace(source, stack, start, at_end)
    # at the end of the file the brace is the fix only where a `}` could come next: after
    # `count` the number is missing first
    brace_fix = unclosed[1] if unclosed and (not at_end or "RBRACE" in exc.expected) else None
    help: str | None = (keyword_suggestion(parser, str(tok), exc.expected) or operator_hint(source, tok, exc.expected)
            or brace_fix
            or (f"expected {_expected_text(expected)}" if expected else None))
    message = "unexpected end of file" if at_end else f"unexpected {_token_text(tok)}"
    sink.error("E0001", message, source.span(start, end), help=help, notes=[unclosed[0]] if unclosed else [])
