"""The IR's and the plan's records (synthlang/nodes.py): construction, immutability, equality,
dumping, and loading a plan from JSON with every value checked."""

from __future__ import annotations

import copy
import datetime as dt
import json
import pickle
from pathlib import Path

import pytest

from synthlang import ir
from synthlang.compiler import compile
from synthlang.plan.model import Plan
from synthlang.syntax import ast

ROOT = Path(__file__).resolve().parents[1]
TICKETS = ROOT / "specs" / "support_tickets" / "tickets.synth"


@pytest.fixture(scope="module")
def plan() -> Plan:
    result = compile(TICKETS)
    assert result.ok and result.plan is not None
    return result.plan.with_hash()


def test_construction_converts_what_json_cannot_tell_apart():
    t = ir.FloatType(min=0, max=1)
    assert (t.min, t.max) == (0.0, 1.0) and type(t.min) is float
    q = ir.Quota(field="label", values=["a", "b"], shares=[50, 50], unit="percent")
    assert q.values == ("a", "b") and q.shares == (50.0, 50.0) and all(type(s) is float for s in q.shares)
    assert ir.Split(name="train", share=80).share == 80.0
    assert ir.IntType(min=2.0).min == 2 and type(ir.IntType(min=2.0).min) is int
    assert ir.Output(path="out").splits == (ir.Split(name="train", share=100.0),)
    assert ir.BoolType(kind="bool").kind == "bool"


def test_construction_refuses_missing_and_unknown_fields():
    with pytest.raises(TypeError, match="needs `name`"):
        ir.Enum(values=("a",))
    with pytest.raises(TypeError, match="no field `colour`"):
        ir.Enum(name="E", values=("a",), colour="red")


def test_nodes_are_immutable_and_copy_makes_a_changed_one():
    e = ir.Enum(name="E", values=("a",))
    with pytest.raises(AttributeError, match="immutable"):
        e.name = "F"
    with pytest.raises(AttributeError):
        del e.name
    f = e.copy(values=["a", "b"])
    assert (e.values, f.values, f.name) == (("a",), ("a", "b"), "E")


def test_equality_and_hash_are_by_value_and_class():
    a, b = ir.Enum(name="E", values=("a",)), ir.Enum(name="E", values=("a",))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != ir.Enum(name="E", values=("b",))
    assert ir.IntType() != ir.FloatType()
    assert ir.IntType(min=1) != ir.IntType(max=1)


def test_dump_leaves_out_excluded_fields_and_writes_json_types():
    span = object()
    expr = ir.Expr(op="lit", value=dt.date(2025, 1, 31), span=span)
    assert expr.dump() == {"kind": "expr", "op": "lit", "args": (), "value": dt.date(2025, 1, 31), "path": None}
    assert expr.dump(mode="json") == {"kind": "expr", "op": "lit", "args": [], "value": "2025-01-31", "path": None}
    assert "format_fields" not in ir.Output(path="o").dump(mode="json")
    assert ir.Output(path="o", format="chat", format_fields=("m",)).dump(mode="json")["format_fields"] == ["m"]
    model = ir.Model(name="m", endpoint=None)
    shown = model.dump(exclude={"kind", "name"}, exclude_none=True)
    assert "name" not in shown and "endpoint" not in shown and shown["engine"] == "llamacpp"
    assert "span" not in repr(ir.Schema(name="S", fields=(), span=span))


def test_a_plan_loads_back_to_the_same_json(plan):
    text = plan.to_json()
    loaded = Plan.from_json(text)
    assert loaded.to_json() == text and loaded.hash == plan.hash
    block = loaded.blocks[0]
    assert isinstance(block.sampled[0].sampler, (ir.UniformSampler, ir.WeightsSampler, ir.PickSampler,
                                                 ir.RegexSampler, ir.FakerSampler))
    assert all(isinstance(f.type, (ir.StrType, ir.IntType, ir.FloatType, ir.BoolType, ir.DateType, ir.EnumType,
                                   ir.LiteralType, ir.RecordType, ir.ListType))
               for s in loaded.schemas.values() for f in s.fields)


def _edited(plan: Plan, change) -> dict:
    data = json.loads(plan.to_json())
    change(data)
    return data


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(blocks="none"), "Plan.blocks: expected a list, got str"),
    (lambda d: d["blocks"][0].update(count="9"), "Plan.blocks[0].count: expected an integer, got str"),
    (lambda d: d["blocks"][0].update(count=True), "expected an integer, got bool"),
    (lambda d: d["blocks"][0].update(colour="red"), "Plan.blocks[0]: unknown field `colour`"),
    (lambda d: d["blocks"][0].pop("prompt"), "Plan.blocks[0]: `prompt` is missing"),
    (lambda d: d["output"].update(format="xml"), "Plan.output.format: expected one of"),
    (lambda d: d["dataset"].update(seed=None), "Plan.dataset.seed: expected an integer, got null"),
    (lambda d: d["blocks"][0]["sampled"][0]["sampler"].update(method="dice"), "matches none of"),
    (lambda d: next(iter(d["schemas"].values()))["fields"][0]["type"].update(kind="complex"), "matches none of"),
    (lambda d: d["blocks"][0].update(cells=[[]]), "Plan.blocks[0].cells[0]: expected an object (Cell), got list"),
])
def test_a_plan_with_a_wrong_value_is_refused_where_it_is(plan, change, message):
    data = _edited(plan, change)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        Plan.load(data)


def test_loading_checks_numbers_as_the_plan_declares_them(plan):
    data = _edited(plan, lambda d: d["blocks"][0].update(count=5.0))
    assert Plan.load(data).blocks[0].count == 5
    data = _edited(plan, lambda d: d["output"]["splits"][0].update(share=80))
    share = Plan.load(data).output.splits[0].share
    assert share == 80.0 and type(share) is float


def test_records_survive_pickle_and_deepcopy(plan):
    assert pickle.loads(pickle.dumps(plan)) == plan
    assert copy.deepcopy(plan) == plan


def test_syntax_tree_nodes_take_positional_values():
    source = object()
    name = ast.Name("x", source)
    assert (name.value, name.span) == ("x", source) and name == ast.Name(value="x", span=source)
    with pytest.raises(TypeError, match="takes 2 values"):
        ast.Name("x", source, 3)
    with pytest.raises(TypeError, match="given `value` twice"):
        ast.Name("x", value="y", span=source)
    assert ast.Module(source=source).decls == ()


def test_records_holding_dicts_and_lists_hash_and_equal_ones_hash_equal():
    from synthlang.plan.model import Cell

    a, b = Cell(key={"intent": "billing", "n": [1, 2]}, count=3), Cell(key={"n": [1, 2], "intent": "billing"}, count=3)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert hash(Cell(key={"intent": "login"}, count=3)) != hash(a)
