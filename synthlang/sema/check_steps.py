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
        case ast.BinOp(left=left, right=right):
            return _refs(left) + _refs(right)
        case ast.UnOp(operand=operand) | ast.Matches(operand=operand):
            return _refs(operand)
    return []


def check_steps(ctx: Context, ident: str, g: ast.GenerateDecl, steps: list[ast.Step], schema: ir.Schema,
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
        for name in step.fields:
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
            elif name.value in written:
                sink.error("E0503", f"`{name.value}` is written by two steps", name.span,
                           notes=[Note(first_span[name.value].span, f"step {written[name.value]} writes it")])
                ok = False
            else:
                written[name.value] = i
                first_span[name.value] = name
                if step.when is not None and not field.optional:
                    sink.error("E0503", f"a step with `when` writes optional fields; `{name.value}` is required",
                               name.span, help=f"mark it optional: `{name.value}: ...?`, null when the step "
                                               "does not run")
                    ok = False
    for field in schema.fields:
        if field.source == "model" and field.name not in written:
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
