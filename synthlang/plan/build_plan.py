"""build_plan: checked IR -> Plan, with the feasibility checks that need the allocation."""

from __future__ import annotations

from typing import Any

from .. import __version__, ir
from ..diagnostics import Note
from ..expr import EvalError, Unknown, evaluate, to_source
from ..files import readable_name
from ..number_formats import parse_format
from ..sema.check_mentions import mention_decimals, resolve_path
from ..sema.context import Context
from ..sema.early_fields import early_fields
from ..source import Span
from ..values import match_key
from .allocate_quota import allocate_quota
from .check_request_sizes import TOKEN_MARGIN, check_request_sizes
from .engine_limits import check_engine_limits
from .json_schema import MENTION_GAP_CLASS, SchemaBuilder
from .label_rules import label_rules
from .layout import mix_rows, split_sizes, train_index
from .model import JUDGE_SCHEMA, Block, Cell, DerivedField, MentionConstraint, Plan, PlanStep, SampledField


def _walk(ctx: Context, schema: ir.Schema, prefix: tuple[str, ...], sampled: list[SampledField],
          derived: list[DerivedField], mentions: list[MentionConstraint], in_list: bool,
          span_for_errors: Span | None, given: frozenset[str] = frozenset()) -> None:
    """The sampled, derived and mentions fields of a record and of the records inside it. A drawn
    list's items' sampled fields go under its SampledField (paths from the item); derived fields
    keep their paths from the root (a list on the way: derived in every item)."""
    early = early_fields(schema, ctx.schema, given)
    for f in schema.fields:
        path = prefix + (f.name,)
        inner = f.type.item if isinstance(f.type, ir.ListType) else f.type
        if f.source == "sampled" and f.sampler is not None:
            items: list[SampledField] = []
            if isinstance(f.type, ir.ListType) and isinstance(inner, ir.RecordType) \
                    and not isinstance(f.sampler, ir.DrawSampler):
                _walk(ctx, ctx.schemas[inner.name], path, items, derived, mentions, True, span_for_errors)
                items = [s.copy(path=s.path[len(path):]) for s in items]
            sampled.append(SampledField(path=path, type=f.type, sampler=f.sampler, items=tuple(items)))
        elif f.source == "derived" and f.derived is not None:
            derived.append(DerivedField(path=path, expr=f.derived, early=f.name in early))
        if f.mentions:
            t = f.type
            # the checker allows mentions only on bounded strings (E0208 otherwise)
            assert isinstance(t, ir.StrType) and t.max_len is not None
            if in_list:
                ctx.sink.error("E0208", f"`{schema.name}.{f.name}` mentions other fields, but {schema.name} appears "
                               "inside a list; a text inside a list item cannot mention", f.span or span_for_errors,
                               help="mention the items' values from a text of the record (`mentions items.product`)")
            mentions.append(MentionConstraint(path=path, values=f.mentions, min_len=t.min_len or 0,
                                              max_len=t.max_len, gap_class=MENTION_GAP_CLASS,
                                              decimals=mention_decimals(ctx, schema, f.mentions)))
        if isinstance(inner, ir.RecordType) and f.source != "sampled":
            _walk(ctx, ctx.schemas[inner.name], path, sampled, derived, mentions,
                  in_list or isinstance(f.type, ir.ListType), span_for_errors)


def _room_for_formats(ctx: Context, schema: ir.Schema, mc: MentionConstraint,
                      noise: tuple[ir.NoiseRule, ...]) -> MentionConstraint:
    """A text whose numbers `number_format` may write longer (`$1,234.50` for 1234.50) is decoded
    that much shorter, so the rule always fits in its length bounds: each mentioned number (one
    per item through a list) may grow by the longest currency and two thousands separators."""
    formats = [parse_format(x) for r in noise if r.rule == "number_format" and (r.field,) == mc.path
               for x in r.formats]
    growth = max((len(f.prefix) + len(f.suffix) + 2 * len(f.group) for f in formats if not isinstance(f, str)),
                 default=0)
    if not growth:
        return mc
    numbers = 0
    for name in mc.decimals:
        _, through, _ = resolve_path(ctx, schema, tuple(name.split(".")))
        numbers += ir.item_counts(through.type)[1] if through is not None and isinstance(through.type, ir.ListType) \
            else 1
    return mc.copy(max_len=max(mc.min_len, mc.max_len - growth * numbers))


def _conditions_first(sampled: list[SampledField]) -> list[SampledField]:
    """The sampled fields in declaration order, except that a field drawn by another's value
    comes after that one (cycles are refused at check, E0211). Unchanged without conditions."""
    paths = {sf.path for sf in sampled}
    placed: set[tuple[str, ...]] = set()
    out: list[SampledField] = []
    waiting = list(sampled)
    def ready(sf: SampledField) -> bool:
        s = sf.sampler
        cond = ir.condition_of(s)
        needs = sf.path[:-1] + (cond,) if cond is not None else None
        return needs is None or needs not in paths or needs in placed

    while waiting:
        # the first field whose condition is drawn; in a cycle, the first one left
        i = next((k for k, sf in enumerate(waiting) if ready(sf)), 0)
        sf = waiting.pop(i)
        out.append(sf)
        placed.add(sf.path)
    return [sf.copy(items=tuple(_conditions_first(list(sf.items)))) if sf.items else sf for sf in out]


def _evaluation_order(derived: list[DerivedField]) -> tuple[DerivedField, ...]:
    """Derived fields in an order that evaluates each after what it reads: fields of nested
    records before their parents (a parent's expression may read them), and within one record
    each after the sibling fields it names (check refuses cycles, E0209); otherwise as declared.
    Kahn's algorithm, ties by declaration order: linear in fields and references."""
    import heapq

    position = {d.path: i for i, d in enumerate(derived)}
    readers: dict[int, list[int]] = {i: [] for i in range(len(derived))}
    waits = [0] * len(derived)
    for i, d in enumerate(derived):
        for name in _refs(d.expr):
            j = position.get(d.path[:-1] + (name,))
            if j is not None and j != i:
                readers[j].append(i)
                waits[i] += 1
    # deeper paths first, then declaration order
    ready = [(-len(d.path), i) for i, d in enumerate(derived) if waits[i] == 0]
    heapq.heapify(ready)
    ordered: list[DerivedField] = []
    while ready:
        _, i = heapq.heappop(ready)
        ordered.append(derived[i])
        for k in readers[i]:
            waits[k] -= 1
            if waits[k] == 0:
                heapq.heappush(ready, (-len(derived[k].path), k))
    placed = {d.path for d in ordered}
    ordered += [d for d in derived if d.path not in placed]  # a cycle (refused at check) keeps its order
    return tuple(ordered)


def _refs(e: ir.Expr) -> set[str]:
    """The first names of the fields an expression reads."""
    found, stack = set(), [e]
    while stack:
        node = stack.pop()
        if node.op == "ref" and node.path:
            found.add(node.path[0])
        stack.extend(node.args)
    return found


def _check_cells(ctx: Context, g: ir.Generate, cells: list[tuple[dict[str, Any], int]]) -> None:
    seed_keys: dict[tuple[str, ...], set[Any]] = {}  # matching fields -> their values in seed rows
    for key, n in cells:
        if n == 0 or not key:
            continue
        shown = ", ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in key.items())
        for check in g.checks:
            try:
                result = evaluate(check, key)
            except (Unknown, EvalError, TypeError, ValueError, OverflowError):
                continue
            if result is False:
                ctx.sink.error("E0404", f"quota cell {shown} ({n} records) can never pass "
                               f"`check {to_source(check)}`", check.span,
                               notes=[Note(g.span, f"generate {g.id}")],
                               help="give that cell a 0% share, or loosen the check")
        if g.grow is not None and g.grow.match:
            grow_key = ("grow",) + g.grow.match
            if grow_key not in seed_keys:
                seed_keys[grow_key] = {match_key([row.get(m) for m in g.grow.match])
                                       for row in ctx.seeds[g.grow.seeds].rows}
            if match_key([key[m] for m in g.grow.match]) not in seed_keys[grow_key]:
                ctx.sink.error("E0406", f"no row of seed set `{g.grow.seeds}` has quota cell {shown}, so no record "
                               "of that cell can grow from one", g.span,
                               help=f"add seed rows with {shown}, or `resample "
                                    f"{', '.join(g.grow.match)}` to grow them from rows of any cell")
        if g.examples is not None:
            seeds = ctx.seeds[g.examples.seeds]
            matching = tuple(m for m in g.examples.matching if m in key)
            if matching not in seed_keys:  # one pass over the rows, not one per cell
                seed_keys[matching] = {match_key([row.get(m) for m in matching]) for row in seeds.rows}
            if matching and match_key([key[m] for m in matching]) not in seed_keys[matching]:
                ctx.sink.error("E0405", f"no row of seed set `{seeds.name}` matches quota cell {shown}, "
                               "so that cell has no examples", g.span,
                               help=f"add seed rows with {shown}, or drop `matching`")


def _check_draw_matching(ctx: Context, g: ir.Generate, schema: ir.Schema, sf: SampledField, s: ir.DrawSampler,
                         quota_fields: tuple[str, ...]) -> None:
    """A draw matching a field the model writes cannot be made before it; one matching a quota
    field needs rows for every cell that has records (E0212)."""
    assert s.matching is not None
    if len(sf.path) == 1 and s.matching in quota_fields:
        profile = ctx.draw_profiles.get(s.seeds)
        held = profile.values.get(s.matching, set()) if profile is not None else set()
        for cell in allocate_quota(g.count, g.quotas):
            key, n = cell
            if n and match_key([key[s.matching]]) not in held:
                ctx.sink.error("E0212", f"no row of seed set `{s.seeds}` has {s.matching} = {key[s.matching]}, so "
                               f"`{sf.path[0]}` cannot be drawn for that quota cell ({n} records)",
                               schema.require(sf.path[0]).span or g.span, notes=[Note(g.span, f"generate {g.id}")],
                               help="add rows for that value, or give the cell a 0% share")
                return
        return
    parent = schema if len(sf.path) == 1 else None
    cond = parent.field(s.matching) if parent is not None else None
    if cond is not None and cond.source == "model":
        ctx.sink.error("E0212", f"`{sf.path[0]}` is drawn matching `{s.matching}`, which the model writes in "
                       f"generate {g.id}; it is not known when `{sf.path[0]}` is drawn",
                       schema.require(sf.path[0]).span or g.span,
                       help=f"sample `{s.matching}`, or put it under a quota in generate {g.id}")


def build_block(ctx: Context, g: ir.Generate) -> Block:
    schema = ctx.schemas[g.schema_name]
    builder = SchemaBuilder(lambda n: ctx.schemas[n])
    quota_fields = tuple(q.field for q in g.quotas)
    # a block grown from rows: the model writes only what it rewrites
    exclude = quota_fields if g.grow is None else tuple(f.name for f in schema.fields if f.name not in g.grow.rewrite)
    json_schema, worst = builder.record(schema, exclude=exclude)
    json_schema = {"type": "object", **{k: v for k, v in json_schema.items() if k != "type"}}
    max_tokens = worst + TOKEN_MARGIN
    model = ctx.models[g.model]
    if model.max_tokens is not None and model.max_tokens < max_tokens:
        ctx.sink.warning("W0002", f"model `{model.name}` sets max_tokens {model.max_tokens}, below the "
                         f"{max_tokens} that the bounds of {schema.name} allow; the plan uses {max_tokens}",
                         model.span or g.span, notes=[Note(g.span, f"generate {g.id}")],
                         help="raise max_tokens, or tighten the length bounds")
    sampled: list[SampledField] = []
    derived: list[DerivedField] = []
    mentions: list[MentionConstraint] = []
    _walk(ctx, schema, (), sampled, derived, mentions, False, g.span, frozenset(quota_fields))
    mentions = [_room_for_formats(ctx, schema, mc, g.noise) for mc in mentions]
    sampled = [s for s in sampled if not (len(s.path) == 1 and s.path[0] in quota_fields)]
    sampled = _conditions_first(sampled)
    for sf in sampled:
        s = sf.sampler
        if isinstance(s, ir.ConditionalSampler) and len(sf.path) == 1 and s.by not in quota_fields \
                and schema.require(s.by).source != "sampled":
            ctx.sink.error("E0211", f"`{sf.path[0]}` is drawn by the value of `{s.by}`, which the model writes in "
                           f"generate {g.id}; it is not known when `{sf.path[0]}` is drawn",
                           schema.require(sf.path[0]).span or g.span,
                           help=f"sample `{s.by}` (`~ uniform`), or put it under a quota in generate {g.id}")
        if isinstance(s, ir.DrawSampler) and s.matching is not None:
            _check_draw_matching(ctx, g, schema, sf, s, quota_fields)
    cells = allocate_quota(g.count, g.quotas)
    _check_cells(ctx, g, cells)
    if g.steps:
        for f in schema.fields:
            if builder.drawn_with_model_fields(f):
                ctx.sink.error("E0205", f"`{f.name}` is a drawn list whose items have fields the model writes; a "
                               "block written in steps cannot write them", g.span,
                               help=f"sample every field of the items of `{f.name}`, or write it with a `prompt`")
    steps = tuple(_step(ctx, g, schema, builder, quota_fields, s) for s in g.steps)
    if steps:
        max_tokens = max(s.max_tokens for s in steps)
    # a block written in steps is led by its first step's model (waves are sized by it)
    lead = (steps[0].turns[0].model if steps[0].turns else steps[0].model) if steps else g.model
    return Block(id=g.id, schema_name=g.schema_name, count=g.count, model=lead, json_schema=json_schema,
                 max_tokens=max_tokens, quota_fields=quota_fields,
                 cells=tuple(Cell(key=k, count=n) for k, n in cells),
                 sampled=tuple(sampled), derived=_evaluation_order(derived), mentions=tuple(mentions),
                 examples=g.examples, prompt=g.prompt, checks=g.checks, judge=g.judge,
                 judge_schema=JUDGE_SCHEMA if g.judge else None, dedup=g.dedup, noise=g.noise, allow=g.allow,
                 steps=steps, grow=g.grow, labels=label_rules(ctx, g))


def _step(ctx: Context, g: ir.Generate, schema: ir.Schema, builder: SchemaBuilder, quota_fields: tuple[str, ...],
          step: ir.Step) -> PlanStep:
    """A step's request: the JSON Schema of its own fields (a `when` step's fields not nullable:
    when it runs, it writes them), and the tokens its worst case needs."""
    if step.turns:   # a dialogue: each turn writes one message's content
        t = schema.require(step.fields[0]).type
        assert isinstance(t, ir.ListType) and isinstance(t.item, ir.RecordType)
        message = ctx.schemas[t.item.name]
        json_schema, worst = builder.record(message, exclude=tuple(f.name for f in message.fields
                                                                   if f.name != "content"))
        return PlanStep(fields=step.fields, model=step.model, template="", json_schema=json_schema,
                        max_tokens=worst + TOKEN_MARGIN, turns=step.turns, rounds=step.rounds)
    if step.candidates:   # one candidate, written as the best field
        others = tuple(f.name for f in schema.fields if f.name != step.fields[0])
        json_schema, worst = builder.record(schema, exclude=others)
        return PlanStep(fields=step.fields, model=step.model, template=step.template, json_schema=json_schema,
                        max_tokens=worst + TOKEN_MARGIN, candidates=step.candidates, judge_model=step.judge_model,
                        rubric=step.rubric)
    others = tuple(f.name for f in schema.fields if f.name not in step.fields) + quota_fields
    json_schema, worst = builder.record(schema, exclude=others)
    props = json_schema["properties"]
    if step.when is not None:
        for name, sub in list(props.items()):
            props[name] = next((b for b in sub.get("anyOf", []) if b.get("type") != "null"), sub)
    max_tokens = worst + TOKEN_MARGIN
    model = ctx.models[step.model]
    if model.max_tokens is not None and model.max_tokens < max_tokens:
        ctx.sink.warning("W0002", f"model `{model.name}` sets max_tokens {model.max_tokens}, below the "
                         f"{max_tokens} that step {', '.join(step.fields)} allows; the plan uses {max_tokens}",
                         model.span or g.span, notes=[Note(g.span, f"generate {g.id}")])
    return PlanStep(fields=step.fields, model=step.model, when=step.when, template=step.template,
                    json_schema=json_schema, max_tokens=max_tokens)


def _check_mix(ctx: Context, blocks: list[ir.Generate]) -> None:
    out = ctx.output
    if out is None or out.mix is None or out.mix.seeds not in ctx.seeds:
        return
    seeds = ctx.seeds[out.mix.seeds]
    synth = sum(b.count for b in blocks if b.schema_name == seeds.schema_name)
    if synth == 0 and any(g.schema.value == seeds.schema_name for g in ctx.generates_ast):
        return  # that block has errors of its own, already reported
    if synth == 0:
        ctx.sink.error("E0901", f"`mix {seeds.name}` adds {seeds.schema_name} rows, but no generate block "
                       f"makes {seeds.schema_name} records", ctx.output_ast.path.span if ctx.output_ast else None)
        return
    _check_mix_rows(ctx, seeds)
    index = train_index(out)
    train = split_sizes(out, synth)[index] if index is not None else 0
    need = mix_rows(out, synth)
    if need > len(seeds.rows):
        ctx.sink.error("E0901", f"`mix {seeds.name} {out.mix.share:g}%` needs {need} real rows beside {train} "
                       f"synthetic train rows, but `{seeds.name}` has {len(seeds.rows)}",
                       ctx.output_ast.path.span if ctx.output_ast else None,
                       help="lower the share, or add seed rows")


def _check_mix_rows(ctx: Context, seeds: ir.SeedSet) -> None:
    """Rows `mix` puts into the dataset lack a sampled field (a generation attribute real rows
    seldom have): each is written with null there, though the schema does not say optional."""
    schema = ctx.schemas.get(seeds.schema_name)
    sampled = [f.name for f in schema.fields if f.source == "sampled" and not f.optional] if schema else []
    lacking = {name: sum(row.get(name) is None for row in seeds.rows) for name in sampled}
    for name, n in lacking.items():
        if n:
            ctx.sink.warning("W0006", f"`mix {seeds.name}` puts {n} of {len(seeds.rows)} rows of `{seeds.path}` into "
                             f"the dataset without `{name}`; those rows hold null for it",
                             ctx.output_ast.path.span if ctx.output_ast else None,
                             help=f"give the rows a `{name}`, or make it optional (a `?` after its type) "
                                  "to say that real rows may lack it")


def build_plan(ctx: Context) -> Plan | None:
    _check_mix(ctx, ctx.blocks)
    for g in ctx.blocks:
        check_request_sizes(ctx, g, ctx.schemas[g.schema_name])
    if ctx.sink.has_errors:
        # blocks that checked clean still get their quota cells checked, so one run of
        # `synthc check` reports those too; nothing else is built from a spec with errors
        # (its schemas may be recursive or empty)
        for g in ctx.blocks:
            _check_cells(ctx, g, allocate_quota(g.count, g.quotas))
        return None
    blocks = [build_block(ctx, g) for g in ctx.blocks]
    for g, b in zip(ctx.blocks, blocks):
        check_engine_limits(ctx, g, b)
    if ctx.sink.has_errors:
        return None
    used_models = ({b.model for b in blocks} | {b.judge.model for b in blocks if b.judge}
                   | {s.model for b in blocks for s in b.steps}
                   | {t.model for b in blocks for s in b.steps for t in s.turns}
                   | {s.judge_model for b in blocks for s in b.steps if s.judge_model}
                   | {r.model for b in blocks for r in b.labels if r.model})
    assert ctx.dataset is not None and ctx.output is not None  # check_settings and check_output set them
    plan = Plan(synthlang_version=__version__, source=readable_name(ctx.entry.name), dataset=ctx.dataset,
                models={k: v for k, v in sorted(ctx.models.items()) if k in used_models},
                enums=dict(sorted(ctx.enums.items())), schemas=dict(sorted(ctx.schemas.items())),
                seeds=dict(sorted(ctx.seeds.items())), blocks=tuple(blocks), output=ctx.output,
                evaluate=tuple(ctx.evaluates))
    return plan.with_hash()
