"""check_generates: each generate block to an ir.Generate (count, model, quotas, examples,
prompt, noise, checks, dedup, judge), every problem reported."""

from __future__ import annotations

import math
from datetime import date
from typing import Any, cast

from .. import ir
from ..diagnostics import Note, did_you_mean
from ..number_formats import parse_format
from ..syntax import ast
from .check_feasible import never_passes
from .check_grow import check_grow
from .check_mentions import mention_decimals
from .check_prompt import check_prompt, default_grow_prompt, default_prompt
from .check_quotas import check_quota
from .check_settings import DEFAULT_MODEL
from .check_steps import check_steps
from .context import Context
from .early_fields import early_fields
from .typecheck import describe, group, lower_expr

MAX_COUNT = 10**12
MAX_CELLS = 50_000  # joint quota cells of one block (each is a line of the plan)


def _model_ref(ctx: Context, name: ast.Name) -> str | None:
    if name.value in ctx.models:
        return name.value
    ctx.sink.error("E0101", f"unknown model `{name.value}`", name.span,
                   help=did_you_mean(name.value, [m for m in ctx.models if m != DEFAULT_MODEL])
                   or "declare it with `model NAME { ... }`")
    return None


def _noise(ctx: Context, n: ast.Noise, schema: ir.Schema, mentioned: set[str]) -> list[ir.NoiseRule]:
    sink = ctx.sink
    field = schema.field(n.field.value)
    if field is None:
        sink.error("E0101", f"unknown field `{n.field.value}` in {schema.name}", n.field.span,
                   help=did_you_mean(n.field.value, [f.name for f in schema.fields]))
        return []
    out = []
    seen = set()
    for r in n.rules:
        rule = r.rule.value
        if rule not in ir.NOISE_RULES:
            sink.error("E0701", f"unknown noise rule `{rule}`", r.rule.span,
                       help=did_you_mean(rule, ir.NOISE_RULES) or f"rules: {', '.join(ir.NOISE_RULES)}")
            continue
        if rule in seen:
            sink.error("E0102", f"noise rule `{rule}` appears twice for `{field.name}`", r.rule.span)
            continue
        seen.add(rule)
        if r.rate is None and rule not in ir.FORMAT_RULES:
            sink.error("E0701", f"noise rule `{rule}` needs a rate, e.g. `{rule} 5%`", r.span)
            continue
        rate = 100.0 if r.rate is None else r.rate.value
        if not 0 <= rate <= 100:
            sink.error("E0701", "a noise rate lies in 0%..100%", r.rate.span if r.rate else r.span)
            continue
        if r.formats is not None and rule not in ir.FORMAT_RULES:
            sink.error("E0701", f"noise rule `{rule}` takes no format list", r.formats[0].span)
            continue
        formats: tuple[str, ...] = ()
        if rule in ir.TEXT_RULES:
            if not isinstance(field.type, ir.StrType):
                sink.error("E0701", f"`{rule}` changes text; `{field.name}` is {ir.type_name(field.type)}",
                           r.rule.span, help="text noise applies to str fields (labels stay clean)")
                continue
            if field.name in mentioned:
                sink.error("E0701", f"`{field.name}` is mentioned by another field; noise on it would break "
                           "that field's ground truth", r.rule.span,
                           help="put the noise on the mentioning text instead")
                continue
        elif rule == "date_format":
            if not isinstance(field.type, ir.DateType):
                sink.error("E0701", f"`date_format` applies to date fields; `{field.name}` is "
                           f"{ir.type_name(field.type)}", r.rule.span)
                continue
            if not r.formats:
                sink.error("E0701", '`date_format` needs formats, e.g. date_format ["%d/%m/%Y"]', r.span)
                continue
            bad = False
            for fmt in r.formats:
                try:
                    rendered = date(2024, 1, 31).strftime(fmt.value)
                except ValueError as exc:
                    sink.error("E0701", f"invalid date format: {exc}", fmt.span)
                    bad = True
                    continue
                if "%" not in fmt.value or rendered == fmt.value:
                    sink.error("E0701", f"date format `{fmt.value}` has no date directive", fmt.span,
                               help="use strftime codes such as %d, %m, %Y, %b")
                    bad = True
            if bad:
                continue
            formats = tuple(f.value for f in r.formats)
        elif rule == "number_format":
            found = _number_formats(ctx, r, field, schema)
            if found is None:
                continue
            formats = found
        elif rule == "drop":
            if not field.optional:
                sink.error("E0701", f"`drop` makes a field null; `{field.name}` is not optional", r.rule.span,
                           help="mark it optional with `?`")
                continue
        out.append(ir.NoiseRule(field=field.name, rule=cast(ir.NoiseRuleName, rule), rate=rate / 100.0,
                                formats=formats))
    return out


def _number_formats(ctx: Context, r: ast.NoiseRule, field: ir.FieldDef, schema: ir.Schema) -> tuple[str, ...] | None:
    """`number_format [...]` on a text: the formats it draws from for the rounded numbers the
    text mentions (each format as 1234.5 is written in it), or None after an error."""
    sink = ctx.sink
    decimals = mention_decimals(ctx, schema, field.mentions)
    if not decimals:
        sink.error("E0701", f"`number_format` rewrites the numbers a text mentions; `{field.name}` mentions no "
                   "number derived as round(x, N)", r.rule.span,
                   help="mention a money field such as `total: float = round(..., 2)`")
        return None
    if not r.formats:
        sink.error("E0701", '`number_format` needs formats, e.g. number_format ["1,234.50", "$1,234.50"]', r.span)
        return None
    ok = True
    for fmt in r.formats:
        parsed = parse_format(fmt.value)
        if isinstance(parsed, str):
            sink.error("E0701", f"number format `{fmt.value}`: {parsed}", fmt.span)
            ok = False
        elif any(n != parsed.decimals for n in decimals.values()):
            other = next(f"`{k}` has {n}" for k, n in decimals.items() if n != parsed.decimals)
            plural = "" if parsed.decimals == 1 else "s"
            sink.error("E0701", f"number format `{fmt.value}` writes {parsed.decimals} decimal{plural}, but {other}",
                       fmt.span, help="a format shows each mentioned number with all its decimals")
            ok = False
    return tuple(f.value for f in r.formats) if ok else None


def check_generate(ctx: Context, g: ast.GenerateDecl) -> ir.Generate | None:
    sink = ctx.sink
    ident = (g.alias or g.schema).value
    schema = ctx.schemas.get(g.schema.value)
    if schema is None:
        if g.schema.value not in ctx.schemas_ast:
            sink.error("E0101", f"unknown schema `{g.schema.value}`", g.schema.span,
                       help=did_you_mean(g.schema.value, ctx.schemas_ast))
        return None
    items: dict[str, list[Any]] = {}
    for it in g.items:
        key = it.keyword if isinstance(it, ast.Keyword) else type(it).__name__.lower()
        items.setdefault(key, []).append(it)
    for key in ("count", "using", "prompt", "examples", "judge", "labelcheck"):
        for extra in items.get(key, [])[1:]:
            sink.error("E0102", f"`{key}` is given twice in generate {ident}", extra.span,
                       notes=[Note(items[key][0].span, "first here")])

    ok = True
    count = None
    if "count" not in items:
        sink.error("E0105", f"generate {ident} has no `count`", g.schema.span, help="add e.g. `count 1000`")
        ok = False
    else:
        lit = items["count"][0].value
        if lit.kind != "int" or lit.value <= 0 or lit.value > MAX_COUNT:
            sink.error("E0107", f"`count` is a whole number from 1 to {MAX_COUNT:,}", lit.span)
            ok = False
        else:
            count = lit.value

    model: str | None = DEFAULT_MODEL
    if "using" in items:
        model = _model_ref(ctx, items["using"][0].value)
        ok = ok and model is not None

    quotas = []
    quota_fields: dict[str, ast.Quota] = {}
    for q in items.get("quota", []):
        if q.field.value in quota_fields:
            sink.error("E0102", f"two quotas on `{q.field.value}`", q.field.span,
                       notes=[Note(quota_fields[q.field.value].field.span, "first here")])
            ok = False
            continue
        quota_fields[q.field.value] = q
        res = check_quota(ctx, q, schema, count)
        ok = ok and res is not None
        if res is not None:
            quotas.append(res)
    cells = math.prod(len(q.values) for q in quotas)
    if cells > MAX_CELLS:
        sink.error("E0403", f"the quotas of generate {ident} make {cells:,} cells; at most {MAX_CELLS:,} are allowed",
                   items["quota"][-1].span, help="quota fewer fields jointly, or sample the others (`~ uniform`)")
        ok = False
        quotas = []

    # sampled and quota fields, and the fields derived from them alone (`total = sum(items.price)`)
    early = early_fields(schema, ctx.schema, frozenset(quota_fields))
    known = [f.name for f in schema.fields if f.name in early]
    grown, grow = check_grow(ctx, g, schema, items, set(quota_fields))
    ok = ok and grown
    if grow is not None:  # what the row gives is known before the model writes
        known = [f.name for f in schema.fields if f.source != "derived" and f.name not in grow.rewrite]

    examples = None
    if "examples" in items:
        ex: ast.Examples = items["examples"][0]
        seeds = ctx.seeds.get(ex.seeds.value)
        if ex.n.kind != "int" or not 1 <= ex.n.value <= 100:
            sink.error("E0405", "`examples` takes a whole number from 1 to 100", ex.n.span)
            ok = False
        elif ex.seeds.value not in ctx.seeds_ast:
            sink.error("E0101", f"unknown seed set `{ex.seeds.value}`", ex.seeds.span,
                       help=did_you_mean(ex.seeds.value, ctx.seeds_ast) or "declare it with `seeds NAME from ...`")
            ok = False
        elif seeds is not None:
            seed_schema = ctx.schemas[seeds.schema_name]
            matching = []
            for m in ex.matching:
                if schema.field(m.value) is None:
                    sink.error("E0101", f"unknown field `{m.value}` in {schema.name}", m.span,
                               help=did_you_mean(m.value, [f.name for f in schema.fields]))
                elif seed_schema.field(m.value) is None:
                    sink.error("E0405", f"seed set `{seeds.name}` ({seed_schema.name}) has no field `{m.value}`",
                               m.span)
                elif m.value not in known:
                    sink.error("E0405", f"`{m.value}` is written by the model, so it is unknown when examples "
                               "are chosen", m.span, help="match on quota or sampled fields")
                else:
                    matching.append(m.value)
                    continue
                ok = False
            if not seeds.rows:
                sink.error("E0405", f"seed set `{seeds.name}` has no rows to draw examples from", ex.seeds.span)
                ok = False
            elif len(seeds.rows) < ex.n.value:
                rows = f"{len(seeds.rows)} row{'s' if len(seeds.rows) != 1 else ''}"
                sink.error("E0405", f"`examples {ex.n.value}` asks for {ex.n.value} different rows, but seed set "
                           f"`{seeds.name}` has {rows}", ex.n.span,
                           help=f"ask for at most {len(seeds.rows)}, or add rows to the seed file")
                ok = False
            examples = ir.Examples(n=ex.n.value, seeds=seeds.name, matching=tuple(matching))
        else:
            ok = False

    steps: tuple[ir.Step, ...] = ()
    if "step" in items or "dialogue" in items or "candidates" in items:
        in_order = [it for it in g.items if isinstance(it, ast.Step | ast.Dialogue | ast.Candidates)]
        checked = check_steps(ctx, ident, g, in_order, schema, known, "examples" in items, model, _model_ref,
                              items["prompt"][0] if "prompt" in items else None)
        ok = ok and checked is not None
        steps = checked or ()
        prompt = ""
    elif grow is not None and not grow.rewrite:
        prompt = ""   # nothing for the model to write (a prompt is refused by check_grow)
    elif "prompt" in items:
        prompt_node = items["prompt"][0].value
        shown = set(known) | ({"seed"} if grow is not None else set())
        ok = check_prompt(ctx, prompt_node, schema, shown, "examples" in items) and ok
        prompt = prompt_node.value
    elif grow is not None:
        prompt = default_grow_prompt(schema, grow.rewrite, known, examples is not None)
    else:
        prompt = default_prompt(schema, known, examples is not None)

    mentioned = {m for f in schema.fields for m in f.mentions}
    noise = []
    noised: dict[str, ast.Noise] = {}
    for n in items.get("noise", []):
        if n.field.value in noised:
            sink.error("E0102", f"two noise blocks for `{n.field.value}`", n.field.span,
                       help="put all the rules for a field in one block")
            ok = False
            continue
        noised[n.field.value] = n
        noise.extend(_noise(ctx, n, schema, mentioned))

    checks = []
    for c in items.get("check", []):
        expr, t, good = lower_expr(ctx, c.expr, schema, "check")
        if good and group(t) not in ("bool", "any"):
            sink.error("E0601", f"a check must be true or false, not {describe(t)}",
                       c.span, help="compare it, e.g. `len(body) > 40`")
            good = False
        never = never_passes(ctx, expr, schema) if good else None
        if never is not None:
            written = " ".join(c.expr.span.source.text[c.expr.span.start:c.expr.span.end].split())
            sink.error("E0404", f"`check {written}` can never pass: {never[0]}", c.span, help=never[1])
            good = False
        ok = ok and good
        checks.append(expr)

    dedups = []
    deduped: set[str] = set()
    for d in items.get("dedup", []):
        field = schema.field(d.field.value)
        if field is None:
            sink.error("E0101", f"unknown field `{d.field.value}` in {schema.name}", d.field.span,
                       help=did_you_mean(d.field.value, [f.name for f in schema.fields]))
            ok = False
            continue
        if d.field.value in deduped:
            sink.error("E0102", f"two dedup lines for `{d.field.value}`", d.field.span)
            ok = False
            continue
        deduped.add(d.field.value)
        threshold = None
        if d.mode == "near":
            if not isinstance(field.type, ir.StrType):
                sink.error("E0801", f"near-duplicate detection compares text; `{field.name}` is "
                           f"{ir.type_name(field.type)}", d.field.span, help="use `dedup FIELD exact`")
                ok = False
                continue
            lit = d.threshold
            value = lit.value / 100 if lit.kind == "percent" else lit.value
            if lit.kind not in ("int", "float", "percent") or not 0 < value <= 1:
                sink.error("E0801", "a similarity threshold lies in (0, 1], e.g. `near 0.85`", lit.span)
                ok = False
                continue
            threshold = float(value)
        dedups.append(ir.Dedup(field=field.name, mode=d.mode, threshold=threshold))

    judge = None
    if "judge" in items:
        j: ast.Judge = items["judge"][0]
        jmodel = _model_ref(ctx, j.model) if j.model is not None else model
        if j.min_score.kind != "int" or not 1 <= j.min_score.value <= 5:
            sink.error("E0802", "`judge ... min N` takes N from 1 to 5", j.min_score.span)
            ok = False
        elif not j.rubric.value.strip():
            sink.error("E0802", "the judge's rubric is empty", j.rubric.span)
            ok = False
        elif jmodel is not None:
            judge = ir.Judge(model=jmodel, min_score=j.min_score.value, rubric=j.rubric.value)
        else:
            ok = False

    label_model = None
    if "labelcheck" in items:
        label_model = _model_ref(ctx, items["labelcheck"][0].model)
        ok = ok and label_model is not None

    allowed: dict[str, ast.Name] = {}
    for a in items.get("allow", []):
        for name in a.filters:
            if name.value not in ir.PLAUSIBILITY_FILTERS:
                sink.error("E0702", f"unknown plausibility filter `{name.value}`", name.span,
                           help=did_you_mean(name.value, ir.PLAUSIBILITY_FILTERS)
                           or f"filters: {', '.join(ir.PLAUSIBILITY_FILTERS)}")
                ok = False
            elif name.value in allowed:
                sink.error("E0102", f"`{name.value}` is allowed twice in generate {ident}", name.span,
                           notes=[Note(allowed[name.value].span, "first here")])
                ok = False
            else:
                allowed[name.value] = name

    if not ok or count is None or model is None:
        return None
    block = ir.Generate(id=ident, schema_name=schema.name, count=count, model=model, quotas=tuple(quotas),
                       examples=examples, prompt=prompt, noise=tuple(noise), checks=tuple(checks),
                       dedup=tuple(dedups), judge=judge,
                       allow=tuple(f for f in ir.PLAUSIBILITY_FILTERS if f in allowed), steps=steps,
                       grow=grow, label_model=label_model, span=(g.alias or g.schema).span)
    return block


def check_generates(ctx: Context) -> None:
    for g in ctx.generates_ast:
        block = check_generate(ctx, g)
        if block is not None:
            ctx.blocks.append(block)
