"""check_grow: a block grown from real rows (`generate T from SEEDS`, `rewrite`, `resample`)
to an ir.Grow, every problem reported."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from .. import ir
from ..diagnostics import Note, did_you_mean
from ..syntax import ast
from .context import Context
from .load_seeds import line_span, row_name


def check_grow(ctx: Context, g: ast.GenerateDecl, schema: ir.Schema, items: dict[str, list[Any]],
               quota_fields: set[str]) -> tuple[bool, ir.Grow | None]:
    """(ok, grow): grow is None for a block that is not grown from rows."""
    sink = ctx.sink
    ident = (g.alias or g.schema).value
    listed: dict[str, tuple[str, ast.Name]] = {}   # field -> (rewrite | resample, where)
    ok = True
    for key in ("rewrite", "resample"):
        for item in items.get(key, []):
            if g.source is None:
                sink.error("E0406", f"`{key}` belongs to a block grown from real rows", item.span,
                           help=f"start each record from a seed row: `generate {g.schema.value} from SEEDS {{`")
                ok = False
                continue
            for name in item.fields:
                if name.value in listed:
                    sink.error("E0102", f"`{name.value}` is listed twice in generate {ident}", name.span,
                               notes=[Note(listed[name.value][1].span, f"first in `{listed[name.value][0]}`")])
                    ok = False
                    continue
                field = schema.field(name.value)
                if field is None:
                    sink.error("E0101", f"unknown field `{name.value}` in {schema.name}", name.span,
                               help=did_you_mean(name.value, [f.name for f in schema.fields]))
                    ok = False
                    continue
                problem = _treatment_problem(key, field, name.value in quota_fields)
                if problem is not None:
                    sink.error("E0406", problem[0], name.span, help=problem[1])
                    ok = False
                    continue
                listed[name.value] = (key, name)
    if g.source is None:
        return ok, None
    source = g.source
    if source.value not in ctx.seeds_ast:
        sink.error("E0101", f"unknown seed set `{source.value}`", source.span,
                   help=did_you_mean(source.value, ctx.seeds_ast) or "declare it with `seeds NAME from ...`")
        return False, None
    seeds = ctx.seeds.get(source.value)
    if seeds is None:
        return False, None   # its file has errors of its own, already reported
    if seeds.schema_name != schema.name:
        sink.error("E0406", f"seed set `{seeds.name}` holds {seeds.schema_name} rows; generate {ident} makes "
                   f"{schema.name} records", source.span, notes=[Note(seeds.span, "seed set declared here")],
                   help=f"grow {schema.name} records from a seed set declared `as {schema.name}`")
        return False, None
    if not seeds.rows:
        sink.error("E0406", f"seed set `{seeds.name}` has no rows to grow records from", source.span)
        return False, None
    for key in ("step", "dialogue", "candidates"):
        for item in items.get(key, []):
            sink.error("E0406", f"a block grown from real rows writes its rewritten fields in one prompt; "
                       f"`{key}` is not supported in it", item.span)
            ok = False
    rewrite = tuple(n for n, (k, _) in listed.items() if k == "rewrite")
    resample = tuple(n for n, (k, _) in listed.items() if k == "resample")
    if not rewrite and "prompt" in items:
        sink.error("E0406", f"generate {ident} rewrites no field, so its prompt is never sent", items["prompt"][0].span,
                   help="name the fields the model writes anew: `rewrite body`")
        ok = False
    if not rewrite and not resample and "noise" not in items:
        sink.error("E0406", f"generate {ident} changes nothing: every record would be a copy of a row of "
                   f"`{seeds.name}`", source.span,
                   help="`rewrite` a field, `resample` a sampled one, or add `noise`")
        ok = False
    ok = _rows_hold_mentions(ctx, seeds, schema, set(rewrite), set(resample)) and ok
    match = tuple(q for q in quota_fields if q not in resample)
    return ok, ir.Grow(seeds=seeds.name, rewrite=rewrite, resample=resample,
                       match=tuple(sorted(match, key=[f.name for f in schema.fields].index)))


def _treatment_problem(key: str, field: ir.FieldDef, is_quota: bool) -> tuple[str, str] | None:
    """(message, help) when `rewrite`/`resample` cannot apply to the field."""
    if field.source == "derived":
        return (f"`{field.name}` is derived, so it is computed again for every record",
                f"{key} the fields it is derived from")
    if key == "rewrite":
        if is_quota:
            return (f"`{field.name}` is a quota field: its cell gives its value",
                    f"`resample {field.name}` draws rows from every cell and gives them the cell's value")
        if field.source == "sampled":
            return (f"`{field.name}` is sampled, not written by the model",
                    f"`resample {field.name}` draws it again")
        return None
    if field.source == "model" and not is_quota:
        return (f"`{field.name}` is written by the model, so it has no sampler to draw it again",
                f"`rewrite {field.name}` has the model write it anew")
    return None


def _rows_hold_mentions(ctx: Context, seeds: ir.SeedSet, schema: ir.Schema, rewrite: set[str],
                        resample: set[str]) -> bool:
    """A copied text that mentions a re-sampled field gets the new value where the row has its
    own: every row must hold that value, written in the text."""
    where = ctx.seed_lines.get(seeds.name)
    ok = True
    reported = 0
    for f in schema.fields:
        changed = [m for m in f.mentions if m in resample]
        if not changed or f.name in rewrite:
            continue
        for i, row in enumerate(seeds.rows):
            missing = next((m for m in changed if row.get(m) is None or str(row[m]) == ""
                            or str(row[m]) not in str(row.get(f.name) or "")), None)
            if missing is None:
                continue
            ok = False
            reported += 1
            if reported > 20:
                continue
            span = line_span(where[0], where[1][i]) if where else seeds.span
            row_text = row_name(PurePosixPath(seeds.path).suffix, where[1][i]) if where else f"row {i + 1}"
            what = (f"has no `{missing}`" if row.get(missing) in (None, "")
                    else f"has `{missing}` {row[missing]!r}, which its `{f.name}` does not contain")
            ctx.sink.error("E0406", f"{row_text} of `{seeds.path}` {what}: `{f.name}` mentions `{missing}`, which "
                           "this block re-samples, so the row has no mention of it to replace", span,
                           notes=[Note(seeds.span, "seed set declared here")],
                           help=f"fix the row, or `rewrite {f.name}` so the model writes the text anew")
    if reported > 20:
        ctx.sink.error("E0406", f"{reported - 20} more rows of `{seeds.path}` lack a mention to replace", seeds.span)
    return ok
