"""The plan: frozen nodes (see nodes.py), serialised as deterministic JSON with a content hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from .. import ir
from ..nodes import Node, field

PLAN_SCHEMA_VERSION = 1


class Cell(Node):
    """One quota cell: the values of the quota fields and the exact number of records it holds."""

    kind: Literal["cell"] = "cell"
    key: dict[str, Any]
    count: int


class SampledField(Node):
    """A field the runtime draws. A drawn list of records (`items: list[Item](1..4)`): `sampler`
    draws its item count, then `items` each item's sampled fields (paths from the item); left out
    of other fields' serialisation, so their plans and hashes stay as they were."""

    kind: Literal["sampled"] = "sampled"
    path: tuple[str, ...]          # field path from the record root
    type: ir.Type
    sampler: ir.Sampler
    items: tuple[SampledField, ...] = field(default=(), exclude_if=lambda v: not v)


class DerivedField(Node):
    """A derived field; one inside list items is derived in every item. `early`: it reads only
    sampled values, so it is known before the model writes (prompts and mentions can use it)."""

    kind: Literal["derived"] = "derived"
    path: tuple[str, ...]          # the field; the expression is evaluated in its parent record
    expr: ir.Expr
    early: bool = field(default=False, exclude_if=lambda v: not v)


class MentionConstraint(Node):
    """A model-written str that must contain the values of `values` verbatim, in order.

    The decoding regex is built once the values are known (see runtime.mentions): the escaped
    values in order, with runs of `gap_class` before, between and after them, bounded so that
    the text meets the length bounds, and a space or punctuation on each side of every value."""

    kind: Literal["mentions"] = "mentions"
    path: tuple[str, ...]
    values: tuple[str, ...]         # paths from the text's record; `items.product`: one value per item
    min_len: int
    max_len: int
    gap_class: str
    # a mentioned float's decimals (it is derived as round(x, N)), by path; left out when empty
    decimals: dict[str, int] = field(default={}, exclude_if=lambda v: not v)


# a judge's answer: an enum rather than integer bounds, which every constraint backend enforces
JUDGE_SCHEMA = {"type": "object", "properties": {"score": {"enum": [1, 2, 3, 4, 5]}},
                "required": ["score"], "additionalProperties": False}


class PlanStep(Node):
    """One request of a record written in steps: its own fields' JSON Schema, template, model
    and condition (on the record so far)."""

    kind: Literal["step"] = "step"
    fields: tuple[str, ...]
    model: str
    when: ir.Expr | None = None
    template: str
    json_schema: dict[str, Any]     # a dialogue's: one message's `content`
    max_tokens: int
    turns: tuple[ir.Turn, ...] = ()  # a dialogue: its sides, in the order of a round
    rounds: tuple[int, int] | None = None
    candidates: int = 0             # candidates: how many; json_schema is one candidate's (as BEST)
    judge_model: str | None = None
    rubric: str = ""


class Block(Node):
    kind: Literal["block"] = "block"
    id: str
    schema_name: str
    count: int
    model: str
    json_schema: dict[str, Any]     # the model-written part, every string and list bounded
    max_tokens: int                 # covers the worst case the bounds allow
    quota_fields: tuple[str, ...]
    cells: tuple[Cell, ...]
    sampled: tuple[SampledField, ...]
    derived: tuple[DerivedField, ...]
    mentions: tuple[MentionConstraint, ...]
    examples: ir.Examples | None
    prompt: str
    checks: tuple[ir.Expr, ...]
    judge: ir.Judge | None
    judge_schema: dict[str, Any] | None
    dedup: tuple[ir.Dedup, ...]
    noise: tuple[ir.NoiseRule, ...]
    allow: tuple[str, ...] = ()     # plausibility filters switched off
    # a record written in steps, in order (then `prompt` is empty); left out of a one-prompt
    # block's serialisation, so its plan and hash stay as they were
    steps: tuple[PlanStep, ...] = field(default=(), exclude_if=lambda v: not v)
    # records grown from real rows, and the label check: left out when absent, as steps are
    grow: ir.Grow | None = field(default=None, exclude_if=lambda v: v is None)
    labels: tuple[ir.LabelRule, ...] = field(default=(), exclude_if=lambda v: not v)


class Plan(Node):
    kind: Literal["plan"] = "plan"
    schema_version: int = PLAN_SCHEMA_VERSION
    synthlang_version: str
    source: str                     # the spec's file name
    dataset: ir.Dataset
    models: dict[str, ir.Model]
    enums: dict[str, ir.Enum]
    schemas: dict[str, ir.Schema]
    seeds: dict[str, ir.SeedSet]
    blocks: tuple[Block, ...]
    output: ir.Output
    evaluate: tuple[ir.Evaluate, ...]
    hash: str = ""

    def to_json(self) -> str:
        return json.dumps(self.dump(mode="json"), indent=2, ensure_ascii=False) + "\n"

    @staticmethod
    def content_hash(data: dict[str, Any]) -> str:
        body = {k: v for k, v in data.items() if k != "hash"}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def with_hash(self) -> Plan:
        return self.copy(hash=self.content_hash(self.dump(mode="json")))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        from ..values import load_json

        data = load_json(text)  # no NaN or Infinity, no nesting that exhausts the stack
        if not isinstance(data, dict):
            raise ValueError("a plan is a JSON object")
        plan = cls.load(data)
        expected = cls.content_hash(data)
        if plan.hash != expected:
            raise ValueError(f"plan hash mismatch: the file says {plan.hash}, its content hashes to {expected}")
        if cls.content_hash(plan.dump(mode="json")) != expected:
            # loading converted a value (1 where 1.0 is declared, a list for a tuple): the run
            # would hash the plan it loaded and stop later with a hash mismatch
            raise ValueError("the plan is not written as synthc writes plans (a value of another JSON type "
                             "than its field's, e.g. 1 for 1.0); compile the spec again")
        return plan

    def seed_rows(self, schema_name: str) -> list[dict[str, Any]]:
        """Every seed row of the given schema, across seed sets, in declaration order."""
        return [r for s in self.seeds.values() if s.schema_name == schema_name for r in s.rows]

    def block(self, ident: str) -> Block:
        for b in self.blocks:
            if b.id == ident:
                return b
        raise KeyError(ident)
