"""Completion in context, read off the text before the cursor (which is often not whole yet):
declaration keywords at the top level; a block's item keywords at a line start inside it;
field names where a field is named (quota, noise, dedup, check, matching, mentions, `=`,
templates, evaluate); an enum's values inside its quota; types after `:`; samplers after `~`;
Faker providers inside `faker("`; models after `using`; seed sets after `from` and `mix`;
settings, engines, noise rules, plausibility filters and output formats where they go."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .. import ir
from ..sema.check_settings import DATASET_KEYS, MODEL_KEYS
from ..sema.context import Context
from ..sema.typecheck import FUNCTIONS
from ..syntax import ast
from .analysis import Analysis


@dataclass(frozen=True)
class Item:
    label: str
    kind: str          # an LSP CompletionItemKind name
    detail: str = ""
    insert: str | None = None


DECLARATIONS = ("import", "dataset", "model", "enum", "schema", "seeds", "generate", "output", "evaluate")
GENERATE_ITEMS = ("count", "using", "quota", "examples", "prompt", "noise", "check", "dedup", "judge", "allow",
                  "step", "dialogue", "candidates", "rewrite", "resample", "label")
OUTPUT_ITEMS = ("format", "split", "mix")
EVALUATE_ITEMS = ("text", "test", "compare")
TYPES = ("str", "int", "float", "bool", "date", "list")
SAMPLERS = ("uniform", "weights(", "pick(", "regex", 'faker("', "pick by ", "weights by ", "draw(")

_DECL_START = re.compile(r"^(import|dataset|model|enum|schema|seeds|generate|output|evaluate)\b[^\n]*", re.M)
_LEXEME = re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*(?:"""|\Z)|"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[{}]', re.S)


def _enclosing(text: str, offset: int) -> tuple[str, str, int, list[str]]:
    """(keyword, header line, start) of the declaration the cursor is in, and the headers of
    the braces still open at the cursor (empty at the top level)."""
    start, header = 0, ""
    for m in _DECL_START.finditer(text, 0, offset):
        start, header = m.start(), m.group(0)
    opened: list[str] = []
    for lex in _LEXEME.finditer(text, start, offset):
        tok = lex.group(0)
        if tok == "{":
            line_start = text.rfind("\n", 0, lex.start()) + 1
            opened.append(text[line_start:lex.start()].strip())
        elif tok == "}" and opened:
            opened.pop()
    keyword = header.split()[0] if header else ""
    return keyword, header, start, opened


def _in_template(text: str, start: int, offset: int) -> bool | None:
    """None outside a string; inside one, whether the cursor is inside a `{{ }}` or `{% %}` tag."""
    inside = False
    for lex in _LEXEME.finditer(text, start, offset):
        if lex.group(0).startswith('"') and lex.end() >= offset and not _closed(lex.group(0)):
            inside = True
    if not inside:
        return None
    before = text[start:offset]
    opened = max(before.rfind("{{"), before.rfind("{%"))
    closed = max(before.rfind("}}"), before.rfind("%}"))
    return opened > closed


def _closed(tok: str) -> bool:
    if tok.startswith('"""'):
        return len(tok) >= 6 and tok.endswith('"""')
    return len(tok) >= 2 and tok.endswith('"')


def complete(analysis: Analysis | None, text: str, offset: int) -> list[Item]:
    ctx = analysis.result.context if analysis else None
    keyword, header, start, opened = _enclosing(text, offset)
    line = text[text.rfind("\n", 0, offset) + 1: offset]
    word = re.search(r"\w*$", line)
    before = line[: word.start()] if word else line
    head_words = header.split()
    schema = head_words[1] if keyword in ("generate", "schema") and len(head_words) > 1 else None

    def fields(of: str | None = schema) -> list[Item]:
        decl = ctx.schemas_ast.get(of or "") if ctx else None
        return [Item(f.name.value, "Field", f"{of}.{f.name.value}") for f in decl.fields] if decl else []

    def names(kind: str) -> list[Item]:
        if ctx is None:
            return []
        tables: dict[str, dict] = {"model": ctx.models_ast, "seeds": ctx.seeds_ast, "schema": ctx.schemas_ast,
                                   "enum": ctx.enums_ast}
        table = tables[kind]
        return [Item(n, {"model": "Module", "seeds": "Variable", "schema": "Struct", "enum": "Enum"}[kind], kind)
                for n in sorted(table)]

    def words(values: tuple[str, ...] | list[str], kind: str = "Keyword", detail: str = "") -> list[Item]:
        return [Item(v, kind, detail) for v in values]

    def record_fields() -> list[Item] | None:
        """After `items.`, `items[0].` or `i.` (in `... for i in items`): the fields of the record
        that name holds (a list's items'); None where no name and dot come before."""
        m = re.search(r"\b([A-Za-z_]\w*)(?:\[[^\]]*\])?\.$", before)
        if m is None:
            return None
        name = m.group(1)
        end = text.find("\n", offset)
        whole = text[offset - len(line): len(text) if end < 0 else end]   # the `for` comes after the cursor
        loop = re.search(r"\bfor\s+" + re.escape(name) + r"\s+in\s+([A-Za-z_]\w*)", whole)
        return fields(_record_of(ctx, schema, loop.group(1) if loop else name, text[start:offset]))

    faker = re.search(r'faker\(\s*"[\w.]*$', line)
    if faker:
        from ..fakers import provider_names
        return words(sorted(provider_names()), "Function", "Faker provider")
    in_template = _in_template(text, start, offset) if keyword else None
    if in_template is not None:
        if not in_template:
            return []
        if re.search(r"\b([A-Za-z_]\w*)\.\w*$", line):
            return fields()                          # `ex.` inside a loop over the examples
        return fields() + [Item("examples", "Variable", "the block's few-shot examples")]
    if not opened:
        if keyword == "seeds" and re.search(r"\bas\s*$", before):
            return names("schema")
        return words(DECLARATIONS) if not before.strip() else []

    inner = opened[-1]
    if keyword == "generate" and len(opened) >= 2:
        m = re.match(r"quota\s+(\w+)", inner)
        if m:
            return _quota_values(ctx, schema, m.group(1), text[start:offset])
        if inner.startswith("noise"):
            return words(ir.NOISE_RULES, "Function", "noise rule")
        return []
    if keyword == "generate":
        if not before.strip():
            return words(GENERATE_ITEMS)
        if re.search(r"\b(using)\s*$", before):
            return names("model")
        if re.search(r"\bexamples\s+\d+\s+from\s*$", before):
            return names("seeds")
        if re.search(r"^\s*(quota|noise|dedup)\s*$", before) or re.search(r"\bmatching\s+(\w+\s*,\s*)*$", before) \
                or re.search(r"^\s*step\s+(\w+\s*,\s*)*$", before):
            return fields()
        if re.match(r"\s*check\b", before) or re.search(r"\bwhen\b", before):
            inside = record_fields()
            return inside if inside is not None else fields() + words(FUNCTIONS, "Function", "function")
        if re.match(r"\s*allow\b", before):
            return words(ir.PLAUSIBILITY_FILTERS, "EnumMember", "plausibility filter")
        if re.search(r"\bdedup\s+\w+\s*$", before):
            return words(("exact", "near"))
        return []
    if keyword == "schema":
        if re.search(r":\s*(list\[\s*)?$", before):
            return words(TYPES, "TypeParameter", "type") + names("enum") + names("schema")
        if re.search(r"~\s*$", before):
            return words(SAMPLERS, "Function", "sampler")
        if re.search(r"(=|\bmentions\b).*$", before) and ":" in before:
            inside = record_fields()
            return inside if inside is not None else fields() + words(FUNCTIONS, "Function", "function")
        return []
    if keyword in ("model", "dataset"):
        if not before.strip():
            keys = MODEL_KEYS if keyword == "model" else DATASET_KEYS
            return words(list(keys), "Property", f"{keyword} setting")
        if keyword == "model" and re.match(r"\s*engine\s*$", before):
            return words(ir.ENGINES, "EnumMember", "engine")
        return []
    if keyword == "output":
        if not before.strip():
            return words(OUTPUT_ITEMS)
        if re.match(r"\s*format\s*$", before):
            return words(ir.OUTPUT_FORMATS, "EnumMember", "output format")
        if re.match(r"\s*mix\s*$", before):
            return names("seeds")
        return []
    if keyword == "evaluate":
        if not before.strip():
            return words(EVALUATE_ITEMS)
        if re.match(r"\s*text\s*$", before) and ctx:
            return [f for g in ctx.generates_ast for f in fields(g.schema.value)]
        if re.match(r"\s*compare\b", before):
            return words(("real", "synthetic", "blend"), "EnumMember")
    return []


def _record_of(ctx: Context | None, schema: str | None, name: str, block_text: str) -> str | None:
    """The record type a field of `schema` holds: its own, or its list's items'. A schema being
    edited does not parse, so its field is also looked for in the block's text as typed."""
    decl = ctx.schemas_ast.get(schema or "") if ctx else None
    found = next((f for f in decl.fields if f.name.value == name), None) if decl else None
    t = found.type if found is not None else None
    if isinstance(t, ast.ListType):
        t = t.item
    if isinstance(t, ast.NamedType):
        return t.name.value
    typed = re.search(r"(?m)^\s*" + re.escape(name) + r"\s*:\s*(?:list\s*\[\s*)?([A-Za-z_]\w*)", block_text)
    return typed.group(1) if typed else None


def _quota_values(ctx: Context | None, schema: str | None, field: str, block_text: str) -> list[Item]:
    """The values of the quota's field that the quota does not list yet."""
    if ctx is None or schema is None:
        return []
    ir_schema = ctx.schemas.get(schema)
    f = ir_schema.field(field) if ir_schema else None
    options = ir.options_of(f.type) if f else None
    if options is None:
        return []
    body = block_text[block_text.rfind("{"):]
    used = set(re.findall(r"(\w+|\"[^\"]*\")\s*:", body))
    out = []
    for o in options:
        label = str(o).lower() if isinstance(o, bool) else str(o)
        if label in used or json.dumps(label) in used:
            continue
        # a value that is not a name is written as a string: `"api limits": 25%`
        out.append(Item(label, "EnumMember", f"a value of {field}",
                        None if re.fullmatch(r"[A-Za-z_]\w*", label) else json.dumps(label)))
    return out

