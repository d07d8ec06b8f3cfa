"""validate_plan: a plan read from a file is checked with the compiler's rules before it runs.

A plan's hash is a checksum, not a signature: anyone can edit a plan and recompute it. So
`synthc run plan.json` trusts nothing in it that the compiler would have refused: its version,
names that become file names, paths, endpoints and keys, regexes, templates and counts."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from .. import ir
from ..endpoints import model_problems
from ..regexes import compile_error
from .json_schema import MENTION_GAP_CLASS
from .model import PLAN_SCHEMA_VERSION, Block, Plan

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_TOKENS = 1_000_000


def _relative_path_problem(what: str, path: str) -> str | None:
    p = PurePosixPath(path)
    if not path or "\0" in path or "\\" in path or p.is_absolute() or ".." in p.parts:
        return f"{what} `{path}` must be a relative path inside the plan's folder, without `..`"
    return None


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
    return problems
