"""What the editor shows over a name: a field's type, bounds and source; a schema's fields; an
enum's values; a model's settings; a seed set's rows; over a quota, each cell's exact record
count from the plan; over a diagnostic, what its code means."""

from __future__ import annotations

from pathlib import Path

from .. import ir
from ..diagnostics import CODES, Diagnostic
from ..expr import to_source
from ..plan.model import Block
from ..syntax import ast
from .analysis import Analysis
from .index import Key

DOCS = "docs/diagnostics.md"


def hover_text(analysis: Analysis, path: Path, offset: int) -> str | None:
    source = analysis.source_of(path)
    if source is None:
        return None
    parts: list[str] = []
    occ = analysis.index.at(source.path, offset)
    if occ is not None:
        text = describe(analysis, occ.key)
        if text:
            parts.append(text)
    quota = _quota_at(analysis, source.path, offset)
    if quota is not None:
        parts.append(quota)
    for d in analysis.diagnostics.get(path, []):
        if d.span is not None and d.span.start <= offset <= max(d.span.end, d.span.start + 1):
            parts.append(explain(d))
    return "\n\n---\n\n".join(parts) if parts else None


def explain(d: Diagnostic) -> str:
    text = f"**{d.code}**: {CODES.get(d.code, '')}"
    if d.help:
        text += f"\n\nhelp: {d.help}"
    return text + f"\n\nEvery code is listed in `{DOCS}`."


def describe(analysis: Analysis, key: Key) -> str | None:
    ctx = analysis.result.context
    kind, scope, name = key
    if kind == "field":
        schema = ctx.schemas.get(scope)
        f = schema.field(name) if schema else None
        return _field(scope, f) if f else None
    if kind == "schema" and name in ctx.schemas:
        rows = "\n".join(f"    {f.name}: {_field_source(f)}" for f in ctx.schemas[name].fields)
        return f"```synth\nschema {name}\n{rows}\n```"
    if kind == "enum" and name in ctx.enums:
        return f"```synth\nenum {name} {{ {', '.join(ctx.enums[name].values)} }}\n```"
    if kind == "member":
        return f"`{name}`: a value of enum `{scope}`"
    if kind == "model" and name in ctx.models:
        m = ctx.models[name]
        shown = m.dump(exclude={"kind", "name", "api_key_env"}, exclude_none=True)
        lines = "\n".join(f"    {k} {v}" for k, v in shown.items())
        return f"```synth\nmodel {name}\n{lines}\n```"
    if kind == "seeds" and name in ctx.seeds:
        s = ctx.seeds[name]
        n = len(s.rows) if s.inline else s.row_count
        kept = "" if s.inline else " (drawn from the file; the plan holds its digest, not its rows)"
        return f"seed set `{name}`: {n} rows of `{s.schema_name}` from `{s.path}`{kept}"
    if kind == "file":
        return f"imported file `{name}`"
    if kind == "dataset" and ctx.dataset is not None:
        d = ctx.dataset
        return f"dataset `{d.name}` {d.version}, seed {d.seed}" + (f"\n\n{d.description}" if d.description else "")
    return None


def _field_source(f: ir.FieldDef) -> str:
    text = ir.type_text(f.type) + ("?" if f.optional else "")
    if f.source == "sampled" and f.sampler is not None:
        s = f.sampler
        how = {"weights": f"weights{s.weights}", "pick": f"pick{s.values}",
               "faker": f'faker("{s.provider}")'}.get(s.method, s.method)
        if isinstance(s, (ir.ConditionalSampler, ir.DrawSampler)):
            how = s.text()
        if isinstance(f.type, ir.ListType):
            return f"{text} ~ {how} (drawn: its item count, then each item's sampled fields)"
        return f"{text} ~ {how} (sampled)"
    if f.source == "derived" and f.derived is not None:
        return f"{text} = {to_source(f.derived)} (derived)"
    mentions = f", mentions {', '.join(f.mentions)}" if f.mentions else ""
    return f"{text} (model-written{mentions})"


def _field(schema: str, f: ir.FieldDef) -> str:
    return f"```synth\n{schema}.{f.name}: {_field_source(f)}\n```"


def _quota_at(analysis: Analysis, path: str, offset: int) -> str | None:
    ctx = analysis.result.context
    plan = analysis.result.plan
    for g in ctx.generates_ast:
        if g.span.path != path or not g.span.start <= offset <= g.span.end:
            continue
        quota = next((q for q in g.items if isinstance(q, ast.Quota)
                      and q.span.start <= offset <= q.span.end), None)
        if quota is None:
            return None
        ident = (g.alias or g.schema).value
        block = next((b for b in plan.blocks if b.id == ident), None) if plan else None
        if block is None:
            return f"quota over `{quota.field.value}`: no record counts while the block has errors"
        return _cells(block, quota.field.value)
    return None


def _cells(block: Block, field: str) -> str:
    per_value: dict[str, int] = {}
    for cell in block.cells:
        value = cell.key.get(field)
        per_value[str(value)] = per_value.get(str(value), 0) + cell.count
    lines = [f"**{block.id}**: {block.count} records, {len(block.cells)} cells", "",
             f"| {field} | records |", "| --- | ---: |"]
    lines += [f"| {v} | {n} |" for v, n in per_value.items()]
    if len(block.quota_fields) > 1:
        lines += ["", "| cell | records |", "| --- | ---: |"]
        lines += [f"| {', '.join(f'{k}={v}' for k, v in c.key.items())} | {c.count} |" for c in block.cells]
    return "\n".join(lines)
