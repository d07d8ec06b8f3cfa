"""validate_plan: a plan read from a file is checked with the compiler's rules before it runs.

A plan's hash is a checksum, not a signature: anyone can edit a plan and recompute it. So
`synthc run plan.json` trusts nothing in it that the compiler would have refused: its version,
names that become file names, paths, endpoints and keys, regexes, templates and counts."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import date
from pathlib import PurePosixPath

from .. import ir
from ..endpoints import model_problems
from ..files import path_text_problem
from ..number_formats import parse_format
from ..regexes import compile_error
from .json_schema import MENTION_GAP_CLASS
from .layout import mix_rows
from .model import PLAN_SCHEMA_VERSION, Block, Plan, SampledField

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_TOKENS = 1_000_000


def _relative_path_problem(what: str, path: str) -> str | None:
    p = PurePosixPath(path)
    if not path or "\0" in path or "\\" in path or p.is_absolute() or ".." in p.parts:
        return f"{what} `{path}` must be a relative path inside the plan's folder, without `..`"
    problem = path_text_problem(path)
    return f"{what}: {problem}" if problem else None


def _patterns(t: ir.Type) -> Iterator[str]:
    match t:
        case ir.StrType(pattern=str() as pattern):
            yield pattern
        case ir.ListType(item=item):
            yield from _patterns(item)


def _expr_patterns(e: ir.Expr) -> Iterator[str]:
    stack = [e]
    while stack:
        node = stack.pop()
        if node.op == "matches":
            yield node.value
        stack.extend(node.args)


def _templates(block: Block) -> list[tuple[str, str]]:
    """Every template of a block, named for a message: its prompt, its judge's rubric, and each
    step's template, rubric and dialogue turns."""
    found = [("prompt", block.prompt)] + ([("judge rubric", block.judge.rubric)] if block.judge else [])
    for step in block.steps:
        name = ", ".join(step.fields)
        found += [(f"template of the step writing {name}", step.template),
                  (f"rubric of the step writing {name}", step.rubric)]
        found += [(f"template of the {t.role} turn writing {name}", t.template) for t in step.turns]
    return [(what, text) for what, text in found if text]


def validate_plan(plan: Plan) -> list[str]:
    """Every problem found; an empty list for a plan the compiler could have written."""
    from ..templates import template_problem

    problems: list[str] = []
    if plan.schema_version != PLAN_SCHEMA_VERSION:
        problems.append(f"plan format version {plan.schema_version} is not the one this synthc reads "
                        f"({PLAN_SCHEMA_VERSION}); compile the spec again")
        return problems
    out = plan.output
    for what, path in [("the output path", out.path)] + [("the test file", e.test) for e in plan.evaluate]:
        problem = _relative_path_problem(what, path)
        if problem:
            problems.append(problem)
    for s in out.splits:
        if not NAME.fullmatch(s.name):
            problems.append(f"split name `{s.name}` is not a name (letters, digits and _)")
        if not 0 <= s.share <= 100:
            problems.append(f"split `{s.name}` has a share outside 0%..100%")
    if not math.isclose(sum(s.share for s in out.splits), 100.0, abs_tol=1e-9):
        problems.append("the split shares do not add up to 100%")
    if len({s.name for s in out.splits}) != len(out.splits):
        problems.append("two splits have the same name")
    for name, model in plan.models.items():
        if not NAME.fullmatch(name):
            problems.append(f"model name `{name}` is not a name")
        problems += [f"model `{name}`: {p}" for _, p in model_problems(model.endpoint, model.api_key_env)]
    for schema in plan.schemas.values():
        for f in schema.fields:
            for pattern in _patterns(f.type):
                err = compile_error(pattern)
                if err:
                    problems.append(f"{schema.name}.{f.name}: invalid regex: {err}")
    ids = set()
    for b in plan.blocks:
        if not NAME.fullmatch(b.id):  # it starts the block's file names
            problems.append(f"block id `{b.id}` is not a name")
        if b.id in ids:
            problems.append(f"two blocks have the id `{b.id}`")
        ids.add(b.id)
        if b.model not in plan.models or (b.judge is not None and b.judge.model not in plan.models) \
                or any(s.model not in plan.models for s in b.steps) \
                or any(t.model not in plan.models for s in b.steps for t in s.turns) \
                or any(s.judge_model is not None and s.judge_model not in plan.models for s in b.steps):
            problems.append(f"block {b.id} uses a model the plan does not declare")
        if b.schema_name not in plan.schemas:
            problems.append(f"block {b.id} names an unknown schema `{b.schema_name}`")
        if not 0 < b.count <= 10**12 or any(c.count < 0 for c in b.cells) or sum(c.count for c in b.cells) != b.count:
            problems.append(f"block {b.id}: its cells do not add up to its count")
        if not 0 < b.max_tokens <= MAX_TOKENS:
            problems.append(f"block {b.id}: max_tokens {b.max_tokens} is out of range")
        if any(m.gap_class != MENTION_GAP_CLASS for m in b.mentions):
            problems.append(f"block {b.id}: a mention constraint has an unknown gap class")
        for check in b.checks:
            for pattern in _expr_patterns(check):
                err = compile_error(pattern)
                if err:
                    problems.append(f"block {b.id}: invalid regex in a check: {err}")
        for what, text in _templates(b):
            bad = template_problem(text)
            if bad:
                problems.append(f"block {b.id}: the {what} is not a valid template: {bad[0]} (template line {bad[1]})")
        if b.examples is not None and b.examples.seeds not in plan.seeds:
            problems.append(f"block {b.id} draws examples from an unknown seed set")
    if out.mix is not None and out.mix.seeds not in plan.seeds:
        problems.append("`mix` names an unknown seed set")
    problems += _value_problems(plan)
    return problems


def _value_problems(plan: Plan) -> list[str]:
    """The ranges the compiler keeps every number of a plan in, and the seed rows checked
    against their schema as `synthc check` checks a seed file: a hand-edited plan that passes
    the hash must not crash a run or put rows that break their schema into a dataset."""
    from ..sema.check_generates import MAX_CELLS
    from ..sema.check_settings import MAX_COUNT_SETTING
    from ..values import ValueError_, check_record

    problems: list[str] = []
    for name, m in plan.models.items():
        if not 0 <= m.temperature <= 5 or not 0 < m.top_p <= 1:
            problems.append(f"model `{name}`: temperature lies in 0..5 and top_p in (0, 1]")
        counts = (m.max_tokens, m.concurrency, m.n_ctx, m.threads)
        if any(v is not None and not 0 < v <= MAX_COUNT_SETTING for v in counts):
            problems.append(f"model `{name}`: max_tokens, concurrency, n_ctx and threads are positive integers")
    mix = plan.output.mix
    if mix is not None and not 0 <= mix.share < 100:
        problems.append("the `mix` share of real rows lies in 0%..99%")
    for seeds in plan.seeds.values():
        problem = _relative_path_problem(f"seed set `{seeds.name}`'s path", seeds.path)
        schema = plan.schemas.get(seeds.schema_name)
        if problem or schema is None:
            problems.append(problem or f"seed set `{seeds.name}` names an unknown schema")
            continue
        names = {f.name for f in schema.fields}
        for i, row in enumerate(seeds.rows, start=1):
            try:
                extra = sorted(set(row) - names)
                if extra:
                    raise ValueError_(f"`{extra[0]}` is not a field of {schema.name}")
                if check_record(schema, row, plan.schemas.get) != row:
                    raise ValueError_("its values are not as the compiler writes them")
            except ValueError_ as exc:
                problems.append(f"seed set `{seeds.name}`, row {i}: {exc.path + ': ' if exc.path else ''}{exc.message}")
                break
    mix = plan.output.mix
    if mix is not None and mix.seeds in plan.seeds and 0 <= mix.share < 100:
        seeds = plan.seeds[mix.seeds]
        for b in plan.blocks:
            if b.schema_name == seeds.schema_name and mix_rows(plan.output, b.count) > len(seeds.rows):
                problems.append(f"`mix` needs {mix_rows(plan.output, b.count)} real rows beside block {b.id}, but "
                                f"`{seeds.name}` has {len(seeds.rows)}")
    for b in plan.blocks:
        if len(b.cells) > MAX_CELLS:
            problems.append(f"block {b.id}: {len(b.cells):,} quota cells; at most {MAX_CELLS:,} are allowed")
        schema = plan.schemas.get(b.schema_name)
        if schema is not None:
            problems += [f"block {b.id}: {p}" for p in _block_field_problems(plan, b, schema)]
        for d in b.dedup:
            if d.threshold is not None and not 0 < d.threshold <= 1:
                problems.append(f"block {b.id}: a similarity threshold lies in (0, 1]")
        for rule in b.noise:
            if not 0 <= rule.rate <= 1:
                problems.append(f"block {b.id}: a noise rate lies in 0..1")
        for sf in b.sampled:
            problem = _sampler_problem(sf) or _draw_problem(plan, sf)
            if problem:
                problems.append(f"block {b.id}, sampled field {'.'.join(sf.path)}: {problem}")
    return problems


def _draw_problem(plan: Plan, sf: SampledField) -> str | None:
    """Why a draw cannot take its values from the seed set it names, or None."""
    s = sf.sampler
    if not isinstance(s, ir.DrawSampler):
        return next((f"{'.'.join(sub.path)}: {p}" for sub in sf.items if (p := _draw_problem(plan, sub))), None)
    seeds = plan.seeds.get(s.seeds)
    source = plan.schemas.get(seeds.schema_name) if seeds is not None else None
    if seeds is None or source is None:
        return f"it draws from `{s.seeds}`, which the plan does not hold"
    if not seeds.inline and (seeds.rows or seeds.row_count is None):
        return f"seed set `{s.seeds}` is kept in its file: the plan holds its row count, not its rows"
    if s.column is None and not (isinstance(sf.type, ir.RecordType) and sf.type.name == source.name):
        return f"a whole row of `{s.seeds}` is a {source.name}"
    if s.column is not None and source.field(s.column) is None:
        return f"`{s.seeds}` has no column `{s.column}`"
    if s.weight is not None and not isinstance(getattr(source.field(s.weight), "type", None),
                                               (ir.IntType, ir.FloatType)):
        return f"`{s.seeds}.{s.weight}` is not a column of numbers"
    if s.matching is not None and source.field(s.matching) is None:
        return f"`{s.seeds}` has no column `{s.matching}` to match"
    return None


def _block_field_problems(plan: Plan, b: Block, schema: ir.Schema) -> list[str]:
    """What a block says about its schema's fields that the compiler would have refused: quota
    fields and cell keys, noise and dedup on fields that take them, examples and filters."""
    from ..values import ValueError_, check_value

    problems = []
    names = {f.name for f in schema.fields}
    if any(q not in names for q in b.quota_fields) or len(set(b.quota_fields)) != len(b.quota_fields):
        problems.append("its quota fields are not distinct fields of its schema")
        return problems
    keys = set()
    for c in b.cells:
        if set(c.key) != set(b.quota_fields):
            problems.append("a quota cell's key names other fields than the block's quota fields")
            break
        try:
            for name, value in c.key.items():
                check_value(schema.require(name).type, value, plan.schemas.get, name)
        except ValueError_ as exc:
            problems.append(f"a quota cell's key does not fit its field: {exc.path}: {exc.message}")
            break
        key = json.dumps(c.key, sort_keys=True)
        if key in keys:
            problems.append("two quota cells have the same key")
            break
        keys.add(key)
    for rule in b.noise:
        field = schema.field(rule.field)
        t = field.type if field is not None else None
        fits = t is not None and (isinstance(t, ir.StrType) if rule.rule in ir.TEXT_RULES
                                  else isinstance(t, ir.DateType) if rule.rule == "date_format"
                                  else isinstance(t, ir.StrType) and bool(rule.formats)
                                  and all(not isinstance(parse_format(x), str) for x in rule.formats)
                                  if rule.rule == "number_format"
                                  else field is not None and field.optional)
        if not fits:
            problems.append(f"noise `{rule.rule}` does not fit field `{rule.field}`")
    problems += [f"dedup names no field `{d.field}`" for d in b.dedup if d.field not in names]
    problems += [f"`allow {a}` names no plausibility filter" for a in b.allow if a not in ir.PLAUSIBILITY_FILTERS]
    if b.examples is not None:
        if not 0 < b.examples.n <= 100 or any(m not in names for m in b.examples.matching):
            problems.append("its examples ask for 1 to 100 rows, matching fields of its schema")
    if b.grow is not None:
        g = b.grow
        seeds = plan.seeds.get(g.seeds)
        if seeds is None or seeds.schema_name != b.schema_name:
            problems.append(f"it grows from `{g.seeds}`, which is no seed set of its schema")
        listed = g.rewrite + g.resample
        if len(set(listed)) != len(listed) or any(n not in names for n in listed) or b.steps:
            problems.append("its rewritten and re-sampled fields are not distinct fields of its schema")
        elif any(schema.require(n).source != "model" or n in b.quota_fields for n in g.rewrite):
            problems.append("it rewrites a field the model does not write")
        elif set(g.match) != set(b.quota_fields) - set(g.resample):
            problems.append("the quota fields its rows match are not its quota fields")
        elif set(b.json_schema.get("properties", {})) != set(g.rewrite):
            problems.append("its JSON Schema is not that of the fields it rewrites")
    for label in b.labels:
        labelled = schema.field(label.field)
        if labelled is None or not isinstance(labelled.type, ir.EnumType | ir.LiteralType | ir.BoolType) \
                or any(t not in names for t in label.text) \
                or (label.model is not None and label.model not in plan.models):
            problems.append(f"its label check of `{label.field}` names what its schema or the plan lacks")
    return problems


def _sampler_problem(sf: SampledField) -> str | None:
    """Why a sampled field's sampler cannot draw a value of its type, or None."""
    t, s = sf.type, sf.sampler
    if isinstance(t, ir.ListType):   # a drawn list: its item count, then its items' fields
        lo, hi = ir.item_counts(t)
        if not isinstance(t.item, ir.RecordType) or not isinstance(s, (ir.UniformSampler, ir.WeightsSampler)):
            return "a list is drawn by its item count (uniform or weights), for a list of records"
        if isinstance(s, ir.WeightsSampler) and (len(s.weights) != hi - lo + 1 or any(w < 0 for w in s.weights)
                                                 or not sum(s.weights) > 0):
            return f"{len(s.weights)} weights for the {hi - lo + 1} item counts {lo}..{hi}"
        return next((f"{'.'.join(sub.path)}: {p}" for sub in sf.items if (p := _sampler_problem(sub))), None)
    if sf.items:
        return "only a drawn list has items"
    if isinstance(t, (ir.IntType, ir.FloatType)) and t.min is not None and t.max is not None and t.min > t.max:
        return f"its range {t.min}..{t.max} is empty"
    if isinstance(t, ir.StrType) and t.min_len is not None and t.max_len is not None and t.min_len > t.max_len:
        return f"its length range {t.min_len}..{t.max_len} is empty"
    if isinstance(t, ir.DateType):
        try:
            bounds = [date.fromisoformat(b) if b is not None else None for b in (t.min, t.max)]
        except (TypeError, ValueError):
            return f"its bounds {t.min}..{t.max} are not ISO dates"
        if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
            return f"its range {t.min}..{t.max} is empty"
    if isinstance(s, ir.WeightsSampler):
        options = ir.options_of(t)
        if options is None or len(s.weights) != len(options):
            return f"{len(s.weights)} weights for {len(options) if options else 'no finite set of'} values"
        if any(w < 0 for w in s.weights) or not sum(s.weights) > 0:
            return "weights are not negative and not all zero"
    if isinstance(s, ir.PickSampler) and not s.values:
        return "`pick` has no values"
    if isinstance(s, ir.ConditionalSampler):
        options = ir.options_of(t)
        for case in (*s.cases, *([s.default] if s.default is not None else [])):
            if s.method == "weights_by" and (case.weights is None or options is None
                                             or len(case.weights) != len(options) or any(w < 0 for w in case.weights)
                                             or not sum(case.weights) > 0):
                return "a case of `weights by` has no weight per option"
            if s.method == "pick_by" and not case.values:
                return "a case of `pick by` has no values"

    return None
