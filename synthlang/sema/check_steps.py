"""check_steps: the `step` lines of a generate block. Every model-written field is written by
exactly one step; a step's template and `when` see what a prompt sees plus the fields of
earlier steps; a step with `when` writes optional fields (null when it does not run)."""

from __future__ import annotations

from collections.abc import Callable

from .. import ir
from ..diagnostics import Note, did_you_mean
from ..syntax import ast
from .check_prompt import check_prompt
from .context import Context
from .typecheck import lower_expr


def _refs(node: ast.Expr) -> list[ast.Name]:
    """The first name of every field reference in an expression."""
    match node:
        case ast.Ref(parts=parts):
            return [parts[0]]
        case ast.Call(args=args) | ast.ListLit(items=args):
            return [r for a in args for r in _refs(a)]
        case ast.Index(base=base, index=index):
            return _refs(base) + _refs(index)
        case ast.Each(element=element, var=var, items=items):
            return _refs(items) + [r for r in _refs(element) if r.value != var.value]
        case ast.BinOp(left=left, right=right):
            return _refs(left) + _refs(right)
        case ast.UnOp(operand=operand) | ast.Matches(operand=operand):
            return _refs(operand)
    return []


def _dialogue(ctx: Context, d: ast.Dialogue, schema: ir.Schema) -> tuple[int, int] | None:
    """The dialogue's field, roles and rounds against the message list they fill; its rounds."""
    sink = ctx.sink
    field = schema.field(d.field.value)
    if field is None or field.source != "model":
        return None   # reported with the fields of the steps
    t = field.type
    item = ctx.schemas.get(t.item.name) if isinstance(t, ir.ListType) and isinstance(t.item, ir.RecordType) \
        else None
    role = item.field("role") if item else None
    content = item.field("content") if item else None
    options = ir.options_of(role.type) if role else None
    if item is None or role is None or content is None or options is None or not isinstance(content.type, ir.StrType):
        sink.error("E0504", f"a dialogue writes a list of messages; `{field.name}` is {ir.type_name(t)}",
                   d.field.span, help="e.g. `turns: list[Message](2..8)` with `schema Message { role: \"user\" | "
                                      "\"assistant\"  content: str(1..800) }`")
        return None
    extra = [f.name for f in item.fields if f.name not in ("role", "content") and not f.optional]
    if extra:
        sink.error("E0504", f"a dialogue's messages hold a role and a content only; {item.name} also requires "
                   + ", ".join(f"`{x}`" for x in extra), d.field.span)
        return None
    ok = True
    seen: dict[str, ast.Name] = {}
    for turn in d.turns:
        if turn.role.value not in [str(o) for o in options]:
            sink.error("E0504", f"`{turn.role.value}` is not a value of {item.name}.role", turn.role.span,
                       help=did_you_mean(turn.role.value, [str(o) for o in options])
                       or f"roles: {', '.join(str(o) for o in options)}")
            ok = False
        elif turn.role.value in seen:
            sink.error("E0504", f"role `{turn.role.value}` has two turns in one round", turn.role.span,
                       notes=[Note(seen[turn.role.value].span, "first here")])
            ok = False
        seen[turn.role.value] = turn.role
    lo_lit, hi_lit = d.rounds.lo, d.rounds.hi
    if lo_lit is None or hi_lit is None or lo_lit.kind != "int" or hi_lit.kind != "int" \
            or not 1 <= lo_lit.value <= hi_lit.value:
        sink.error("E0504", "rounds are whole numbers A..B with 1 <= A <= B", d.rounds.span)
        return None
    lo, hi = lo_lit.value, hi_lit.value
    assert isinstance(t, ir.ListType)
    most = t.max_items if t.max_items is not None else ir.DEFAULT_MAX_ITEMS
    per = len(d.turns)
    if hi * per > most or (t.min_items is not None and lo * per < t.min_items):
        sink.error("E0504", f"{lo}..{hi} rounds of {per} turns make {lo * per}..{hi * per} messages, but "
                   f"`{field.name}` holds {t.min_items or 0}..{most}", d.rounds.span,
                   help="change the rounds or the list's bounds")
        ok = False
    return (lo, hi) if ok else None


def check_steps(ctx: Context, ident: str, g: ast.GenerateDecl, steps: list[ast.Step | ast.Dialogue | ast.Candidates],
                schema: ir.Schema,
                known: list[str], has_examples: bool, block_model: str | None,
                model_ref: Callable[[Context, ast.Name], str | None],
                prompt: ast.Keyword | None) -> tuple[ir.Step, ...] | None:
    sink = ctx.sink
    ok = True
    if prompt is not None:
        sink.error("E0503", f"generate {ident} has both `prompt` and `step` lines", steps[0].span,
                   notes=[Note(prompt.span, "the prompt")],
                   help="a block is written by one prompt or in steps: move the prompt's text into the first step")
        ok = False
    written: dict[str, int] = {}                 # field -> the step (1-based) that writes it
    first_span: dict[str, ast.Name] = {}
    for i, step in enumerate(steps, 1):
        for name in _fields(step):
            field = schema.field(name.value)
            if field is None:
                sink.error("E0101", f"unknown field `{name.value}` in {schema.name}", name.span,
                           help=did_you_mean(name.value, [f.name for f in schema.fields]))
                ok = False
            elif field.source != "model":
                how = "sampled" if field.source == "sampled" else "derived"
                sink.error("E0503", f"`{name.value}` is {how}, not written by the model", name.span,
                           help="a step writes model-written fields only")
                ok = False
            elif name.value in known:
                sink.error("E0503", f"`{name.value}` is decided by a quota, not written by the model", name.span)
                ok = False
            elif name.value in written:
                sink.error("E0503", f"`{name.value}` is written by two steps", name.span,
                           notes=[Note(first_span[name.value].span, f"step {written[name.value]} writes it")])
                ok = False
            else:
                written[name.value] = i
                first_span[name.value] = name
                if isinstance(step, ast.Step) and step.when is not None and not field.optional:
                    sink.error("E0503", f"a step with `when` writes optional fields; `{name.value}` is required",
                               name.span, help=f"mark it optional: `{name.value}: ...?`, null when the step "
                                               "does not run")
                    ok = False
    for field in schema.fields:
        if field.source == "model" and field.name not in written and field.name not in known:
            sink.error("E0503", f"`{field.name}` is written by no step of generate {ident}", g.schema.span,
                       help=f"add it to a step: `step {field.name} \"\"\"...\"\"\"`")
            ok = False
    if not ok:
        return None

    out = []
    for i, step in enumerate(steps, 1):
        earlier = [f for f, n in written.items() if n < i]
        unavailable = {f: ("this step writes it" if n == i else f"step {n} writes it, after this one")
                       for f, n in written.items() if n >= i}
        if isinstance(step, ast.Candidates):
            best, worst = schema.field(step.best.value), schema.field(step.worst.value)
            good = True
            if best is not None and worst is not None and best.type != worst.type:
                sink.error("E0505", f"`{best.name}` is {ir.type_text(best.type)} but `{worst.name}` is "
                           f"{ir.type_text(worst.type)}", step.worst.span,
                           help="the best and the worst candidate are values of one type")
                good = False
            if step.n.kind != "int" or not 2 <= step.n.value <= 16:
                sink.error("E0505", "`candidates ... from N` takes N from 2 to 16", step.n.span)
                good = False
            if not step.rubric.value.strip():
                sink.error("E0505", "the judge's rubric is empty", step.rubric.span)
                good = False
            good = check_prompt(ctx, step.template, schema, set(known) | set(earlier), has_examples,
                                where=f"step {i}", unavailable=unavailable) and good
            model = model_ref(ctx, step.model) if step.model is not None else block_model
            judge = model_ref(ctx, step.judge_model) if step.judge_model is not None else model
            if not good or model is None or judge is None:
                ok = False
                continue
            out.append(ir.Step(fields=(step.best.value, step.worst.value), model=model,
                               template=step.template.value, candidates=step.n.value, judge_model=judge,
                               rubric=step.rubric.value))
            continue
        if isinstance(step, ast.Dialogue):
            rounds = _dialogue(ctx, step, schema)
            turns = []
            for turn in step.turns:
                good = check_prompt(ctx, turn.template, schema, set(known) | set(earlier) | {"history"},
                                    has_examples, where=f"`{turn.role.value}` turn", unavailable=unavailable)
                model = model_ref(ctx, turn.model) if turn.model is not None else block_model
                if good and model is not None:
                    turns.append(ir.Turn(role=turn.role.value, model=model, template=turn.template.value))
            if rounds is None or len(turns) != len(step.turns) or block_model is None:
                ok = False
                continue
            out.append(ir.Step(fields=(step.field.value,), model=turns[0].model, template="", turns=tuple(turns),
                               rounds=rounds))
            continue
        good = True
        when = None
        if step.when is not None:
            for ref in _refs(step.when):
                if ref.value in unavailable:
                    sink.error("E0503", f"the `when` of step {i} uses `{ref.value}`: {unavailable[ref.value]}",
                               ref.span, help="a condition sees the fields of earlier steps only")
                    good = False
                elif (f := schema.field(ref.value)) is not None and f.source == "derived":
                    sink.error("E0503", f"the `when` of step {i} uses `{ref.value}`, which is derived after "
                               "the last step", ref.span)
                    good = False
            if good:
                expr, _, fine = lower_expr(ctx, step.when, schema, "when")
                when, good = expr, fine
        good = check_prompt(ctx, step.template, schema, set(known) | set(earlier), has_examples,
                            where=f"step {i}", unavailable=unavailable) and good
        model = model_ref(ctx, step.model) if step.model is not None else block_model
        if not good or model is None:
            ok = False
            continue
        out.append(ir.Step(fields=tuple(n.value for n in step.fields), model=model, when=when,
                           template=step.template.value))
    return tuple(out) if ok else None


def _fields(step: ast.Step | ast.Dialogue | ast.Candidates) -> tuple[ast.Name, ...]:
    if isinstance(step, ast.Candidates):
        return (step.best, step.worst)
    return step.fields if isinstance(step, ast.Step) else (step.field,)
