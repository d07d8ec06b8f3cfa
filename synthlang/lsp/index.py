"""Where each name of a spec is declared and where it is used: the table behind go to
definition, find references, rename and hover.

A name is keyed by what it names: (kind, scope, name). Kinds: schema, enum, member (scope: its
enum), model, seeds, field (scope: its schema), dataset, file (an imported file, by resolved
path). Fields are found in schemas (declared), in derived expressions, `mentions`, quotas,
`matching`, noise, checks, dedup, evaluate and in `{{ ... }}` / `{% ... %}` of prompt and judge
templates, nested records followed through `a.b`."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from ..sema.context import Context
from ..source import Span
from ..syntax import ast

Key = tuple[str, str, str]  # (kind, scope, name)


@dataclass(frozen=True)
class Occurrence:
    key: Key
    span: Span
    definition: bool


# what a template's expression may hold besides the record's fields
_JINJA_WORDS = frozenset({
    "for", "in", "if", "elif", "else", "endif", "endfor", "not", "and", "or", "is", "true", "false", "none",
    "True", "False", "None", "loop", "set", "endset", "with", "endwith", "macro", "endmacro", "call",
    "endcall", "filter", "endfilter", "raw", "endraw", "recursive", "defined", "range", "examples", "history",
})
_TEMPLATE_TAG = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)
_TEMPLATE_WORD = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(\|\s*)?([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)""")
_LOOP = re.compile(r"^\s*for\s+([A-Za-z_]\w*)\s+in\s+examples\b")


class Index:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.occurrences: list[Occurrence] = []
        self._by_key: dict[Key, list[Occurrence]] = defaultdict(list)
        self._build()

    # queries ---------------------------------------------------------------------------------------
    def at(self, path: str, offset: int) -> Occurrence | None:
        """The occurrence under a character offset of the file shown as `path`."""
        best = None
        for occ in self.occurrences:
            if occ.span.path == path and occ.span.start <= offset <= occ.span.end:
                if best is None or occ.span.end - occ.span.start < best.span.end - best.span.start:
                    best = occ
        return best

    def definition(self, key: Key) -> Occurrence | None:
        return next((o for o in self._by_key.get(key, ()) if o.definition), None)

    def references(self, key: Key) -> list[Occurrence]:
        return list(self._by_key.get(key, ()))

    def keys(self, kind: str, scope: str = "") -> list[str]:
        return sorted({k[2] for k in self._by_key if k[0] == kind and k[1] == scope})

    # building --------------------------------------------------------------------------------------
    def _add(self, kind: str, scope: str, name: ast.Name | None, definition: bool = False) -> None:
        if name is None:
            return
        occ = Occurrence((kind, scope, name.value), name.span, definition)
        self.occurrences.append(occ)
        self._by_key[occ.key].append(occ)

    def _add_span(self, kind: str, scope: str, value: str, span: Span, definition: bool = False) -> None:
        occ = Occurrence((kind, scope, value), span, definition)
        self.occurrences.append(occ)
        self._by_key[occ.key].append(occ)

    def _field(self, schema: str | None, name: str) -> ast.Field | None:
        decl = self.ctx.schemas_ast.get(schema or "")
        return next((f for f in decl.fields if f.name.value == name), None) if decl else None

    def _named(self, t: ast.TypeExpr) -> ast.NamedType | None:
        while isinstance(t, ast.ListType):
            t = t.item
        return t if isinstance(t, ast.NamedType) else None

    def record_of(self, schema: str | None, field: str) -> str | None:
        """The schema of a field's records (through lists), if it holds records."""
        f = self._field(schema, field)
        named = self._named(f.type) if f else None
        return named.name.value if named and named.name.value in self.ctx.schemas_ast else None

    def enum_of(self, schema: str | None, field: str) -> str | None:
        f = self._field(schema, field)
        named = self._named(f.type) if f else None
        return named.name.value if named and named.name.value in self.ctx.enums_ast else None

    def _build(self) -> None:
        for module in self.ctx.modules:
            for decl in module.decls:
                self._decl(decl)

    def _decl(self, decl: ast.Decl) -> None:
        match decl:
            case ast.Import(path=path):
                target = (self.ctx.dir_of(path.span) / path.value).resolve() if path.value.strip() else None
                if target is not None:
                    self._add_span("file", "", str(target), path.span)
            case ast.SettingsBlock(keyword=keyword, name=name):
                self._add(keyword, "", name, definition=True)
            case ast.EnumDecl(name=name, members=members):
                self._add("enum", "", name, definition=True)
                for m in members:
                    self._add("member", name.value, m, definition=True)
            case ast.SchemaDecl(name=name, fields=fields):
                self._add("schema", "", name, definition=True)
                for f in fields:
                    self._schema_field(name.value, f)
            case ast.SeedsDecl(name=name, schema=schema):
                self._add("seeds", "", name, definition=True)
                self._add("schema", "", schema)
            case ast.GenerateDecl():
                self._generate(decl)
            case ast.OutputDecl(items=items):
                for it in items:
                    if isinstance(it, ast.Keyword) and it.keyword == "mix" and isinstance(it.value, tuple):
                        self._add("seeds", "", it.value[0])
            case ast.EvaluateDecl(label=label, items=items):
                named = [label] + [it.value for it in items if isinstance(it, ast.Keyword) and it.keyword == "text"
                                   and isinstance(it.value, ast.Name)]
                for name in named:
                    owner = self._generated_owner(name.value)
                    if owner:
                        self._add("field", owner, name)

    def _generated_owner(self, field: str) -> str | None:
        for g in self.ctx.generates_ast:
            if self._field(g.schema.value, field) is not None:
                return g.schema.value
        return None

    def _schema_field(self, schema: str, f: ast.Field) -> None:
        self._add("field", schema, f.name, definition=True)
        self._type(f.type)
        if isinstance(f.source, ast.SamplerNode) and f.source.kind == "draw":
            self._draw(schema, f.source)
        if isinstance(f.source, ast.Derived):
            self._expr(schema, f.source.expr)
        for m in f.mentions:   # a path (`items.product`): each name in the record it is a field of
            scope: str | None = schema
            at = m.span.start
            for part in m.value.split("."):
                start = m.span.source.text.find(part, at, m.span.end)
                if scope is None or start < 0 or self._field(scope, part) is None:
                    break
                self._add("field", scope, ast.Name(part, m.span.source.span(start, start + len(part))))
                scope, at = self.record_of(scope, part), start + len(part)

    def _draw(self, schema: str, s: ast.SamplerNode) -> None:
        """`draw(topics.name matching category) weighted by topics.weight`: the seed set, its
        columns (fields of the set's schema) and the matched field of this record."""
        ref, matching, weight = s.args
        decl = self.ctx.seeds_ast.get(ref.seeds.value)
        rows = decl.schema.value if decl is not None else None
        for r in (ref, weight):
            if r is None:
                continue
            self._add("seeds", "", r.seeds)
            if r.column is not None and rows is not None and self._field(rows, r.column.value) is not None:
                self._add("field", rows, r.column)
        if matching is not None:
            self._add("field", schema, matching)

    def _type(self, t: ast.TypeExpr) -> None:
        match t:
            case ast.NamedType(name=name):
                if name.value in self.ctx.schemas_ast:
                    self._add("schema", "", name)
                elif name.value in self.ctx.enums_ast:
                    self._add("enum", "", name)
            case ast.ListType(item=item):
                self._type(item)

    def _generate(self, g: ast.GenerateDecl) -> None:
        schema = g.schema.value
        self._add("schema", "", g.schema)
        for it in g.items:
            match it:
                case ast.Keyword(keyword="using", value=ast.Name() as model):
                    self._add("model", "", model)
                case ast.Keyword(keyword="prompt", value=ast.Str() as text):
                    self._template(schema, text)
                case ast.Quota(field=field, entries=entries):
                    self._add("field", schema, field)
                    enum = self.enum_of(schema, field.value)
                    for e in entries:
                        if enum and isinstance(e.key.value, str):
                            self._add_span("member", enum, e.key.value, e.key.span)
                case ast.Examples(seeds=seeds, matching=matching):
                    self._add("seeds", "", seeds)
                    for m in matching:
                        self._add("field", schema, m)
                case ast.Noise(field=field) | ast.Dedup(field=field):
                    self._add("field", schema, field)
                case ast.Check(expr=expr):
                    self._expr(schema, expr)
                case ast.Judge(model=model, rubric=rubric):
                    self._add("model", "", model)
                    self._template(schema, rubric)
                case ast.Dialogue(field=field, turns=turns):
                    self._add("field", schema, field)
                    for turn in turns:
                        self._add("model", "", turn.model)
                        self._template(schema, turn.template)
                case ast.Candidates(best=best, worst=worst, model=model, template=template,
                                    judge_model=judge_model, rubric=rubric):
                    self._add("field", schema, best)
                    self._add("field", schema, worst)
                    self._add("model", "", model)
                    self._add("model", "", judge_model)
                    self._template(schema, template)
                    self._template(schema, rubric)
                case ast.Step(fields=fields, model=model, when=when, template=template):
                    for f in fields:
                        self._add("field", schema, f)
                    self._add("model", "", model)
                    if when is not None:
                        self._expr(schema, when)
                    self._template(schema, template)

    def _expr(self, schema: str, e: ast.Expr) -> None:
        match e:
            case ast.Ref(parts=parts):
                scope: str | None = schema
                for part in parts:
                    if scope is None or self._field(scope, part.value) is None:
                        break
                    self._add("field", scope, part)
                    scope = self.record_of(scope, part.value)
            case ast.Call(args=args) | ast.ListLit(items=args):
                for a in args:
                    self._expr(schema, a)
            case ast.Index(base=base, index=index, tail=tail):
                self._expr(schema, base)
                self._expr(schema, index)
                inner = self.record_of(schema, base.parts[-1].value) if len(base.parts) == 1 else None
                for part in tail:
                    if inner is None or self._field(inner, part.value) is None:
                        break
                    self._add("field", inner, part)
                    inner = self.record_of(inner, part.value)
            case ast.Each(element=element, items=items):
                self._expr(schema, items)
                self._expr(schema, element)
            case ast.BinOp(left=left, right=right):
                self._expr(schema, left)
                self._expr(schema, right)
            case ast.UnOp(operand=operand) | ast.Matches(operand=operand):
                self._expr(schema, operand)

    def _template(self, schema: str, text: ast.Str) -> None:
        """Fields named inside a template's tags, found in the string as written in the file."""
        source = text.span.source.text
        raw_start = text.span.start
        raw = source[raw_start:text.span.end]
        loops: dict[str, str] = {}
        for tag in _TEMPLATE_TAG.finditer(raw):
            body_group = 1 if tag.group(1) is not None else 2
            body, body_start = tag.group(body_group), tag.start(body_group)
            loop = _LOOP.match(body) if body_group == 2 else None
            if loop:
                loops[loop.group(1)] = schema
            for word in _TEMPLATE_WORD.finditer(body):
                if word.group(1) or word.group(2) or word.group(3) is None:
                    continue  # a string, or a filter's name
                parts = word.group(3).split(".")
                scope: str | None = loops.get(parts[0])
                offset = raw_start + body_start + word.start(3)
                if scope is not None:   # `ex.subject`: a field of an example row
                    offset += len(parts[0]) + 1
                    parts = parts[1:]
                elif parts[0] in _JINJA_WORDS:
                    continue
                else:
                    scope = schema
                for part in parts:
                    if scope is None or self._field(scope, part) is None:
                        break
                    self._add_span("field", scope, part, Span(text.span.source, offset, offset + len(part)))
                    scope = self.record_of(scope, part)
                    offset += len(part) + 1

