"""The outline of a spec file: its declarations, with a schema's fields, an enum's values and a
generate block's items under them."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..source import Span
from ..syntax import ast


@dataclass
class Symbol:
    name: str
    kind: str          # an LSP SymbolKind name: Module, Struct, Enum, EnumMember, Field, ...
    detail: str
    span: Span         # the whole declaration
    name_span: Span    # what the editor selects
    children: list[Symbol] = field(default_factory=list)


def outline(module: ast.Module) -> list[Symbol]:
    return [s for s in (_decl(d) for d in module.decls) if s is not None]


def _decl(decl: ast.Decl) -> Symbol | None:
    match decl:
        case ast.Import(path=path):
            return Symbol(path.value, "File", "import", decl.span, path.span)
        case ast.SettingsBlock(keyword=keyword, name=name, settings=settings):
            kids = [Symbol(s.key.value, "Property", str(s.value.value)[:60], s.span, s.key.span) for s in settings]
            return Symbol(name.value, "Module" if keyword == "dataset" else "Object", keyword, decl.span, name.span,
                          kids)
        case ast.EnumDecl(name=name, members=members):
            return Symbol(name.value, "Enum", "enum", decl.span, name.span,
                          [Symbol(m.value, "EnumMember", "", m.span, m.span) for m in members])
        case ast.SchemaDecl(name=name, fields=fields):
            kids = [Symbol(f.name.value, "Field", _type_text(f.type), f.span, f.name.span) for f in fields]
            return Symbol(name.value, "Struct", "schema", decl.span, name.span, kids)
        case ast.SeedsDecl(name=name, path=path, schema=schema):
            return Symbol(name.value, "Array", f"{schema.value} from {path.value}", decl.span, name.span)
        case ast.GenerateDecl(schema=schema, alias=alias, items=items):
            named = alias or schema
            kids = [s for s in (_item(it) for it in items) if s is not None]
            return Symbol(named.value, "Class", f"generate {schema.value}", decl.span, named.span, kids)
        case ast.OutputDecl(path=path):
            return Symbol(path.value, "Package", "output", decl.span, path.span)
        case ast.EvaluateDecl(label=label):
            return Symbol(label.value, "Event", "evaluate", decl.span, label.span)
    return None


def _item(it: object) -> Symbol | None:
    match it:
        case ast.Keyword(keyword=keyword, span=span):
            detail = "" if keyword == "prompt" else str(getattr(it.value, "value", it.value))[:60]
            return Symbol(keyword, "Key", detail, span, span)
        case ast.Quota(field=f, span=span):
            return Symbol(f"quota {f.value}", "Key", f"{len(it.entries)} values", span, f.span)
        case ast.Examples(seeds=seeds, span=span):
            return Symbol("examples", "Key", f"{it.n.value} from {seeds.value}", span, seeds.span)
        case ast.Noise(field=f, span=span):
            return Symbol(f"noise {f.value}", "Key", "", span, f.span)
        case ast.Dedup(field=f, span=span):
            return Symbol(f"dedup {f.value}", "Key", it.mode, span, f.span)
        case ast.Check(span=span):
            return Symbol("check", "Key", span.source.text[span.start:span.end][6:66], span, span)
        case ast.Judge(span=span):
            return Symbol("judge", "Key", f"min {it.min_score.value}", span, span)
        case ast.Step(fields=fields, span=span):
            return Symbol("step " + ", ".join(f.value for f in fields), "Method",
                          "when ..." if it.when is not None else "", span, fields[0].span)
        case ast.Dialogue(field=f, span=span):
            return Symbol(f"dialogue {f.value}", "Method", ", ".join(t.role.value for t in it.turns), span, f.span)
        case ast.Candidates(best=best, worst=worst, span=span):
            return Symbol(f"candidates {best.value}, {worst.value}", "Method", f"from {it.n.value}", span, best.span)
        case ast.Allow(span=span):
            return Symbol("allow", "Key", ", ".join(n.value for n in it.filters), span, span)
    return None


def _type_text(t: ast.TypeExpr) -> str:
    return t.span.source.text[t.span.start:t.span.end]
