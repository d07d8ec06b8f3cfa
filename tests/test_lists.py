"""Lists of sampled records (issue 28): the item count and every item's sampled fields drawn
from the record's seed, expressions over lists (index, projection, item-by-item arithmetic,
aggregates, `... for i in items`), mentions of list items with a span per item, and the tools
(fmt, diff, completion, a plan read from disk) that know them. On the fake engine."""

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from synthlang import ir
from synthlang.compiler import compile
from synthlang.engines.fake import FakeEngine
from synthlang.expr import EvalError, evaluate, to_source
from synthlang.plan.diff import diff_plans
from synthlang.plan.model import Plan
from synthlang.runtime.driver import run_plan
from synthlang.runtime.options import RunOptions
from synthlang.runtime.sampling import draw_fields
from synthlang.syntax.format import format_text

BILL = '''
schema Line {
  product: str ~ pick("widget", "gadget", "cable", "adapter")
  qty:     int(1..9) ~ uniform
  cents:   int(100..9900) ~ uniform
  price:   float = round(cents / 100, 2)
  amount:  float = round(qty * price, 2)
}

schema Bill {
  vendor: str ~ faker("company")
  lines:  list[Line](1..4) ~ weights(1, 1, 1, 1)
  total:  float = round(sum(i.qty * i.price for i in lines), 2)
  first:  int = lines[0].qty
  text:   str(60..700) mentions vendor, lines.product, lines.qty, total
}

generate Bill {
  count 12
  prompt """
    Write a bill from {{ vendor }}:
    {% for i in lines %}{{ i.qty }} x {{ i.product }} at {{ i.price }}
    {% endfor %}Total {{ total }}.
  """
  check total == round(sum(lines.amount), 2)
  allow junk, repetition, hollow
}
'''


def compiled(tmp_path: Path, text: str, name: str = "spec.synth") -> Plan:
    spec = tmp_path / name
    spec.write_text(text, encoding="utf-8")
    result = compile(spec)
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.plan is not None
    return result.plan


def records(tmp_path: Path, plan: Plan) -> list[dict]:
    run_plan(plan, RunOptions(out_dir=tmp_path / "out", engine_factory=lambda m: FakeEngine(), progress=False))
    return [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]


def test_items_are_drawn_from_the_record_seed_within_the_bounds(tmp_path):
    plan = compiled(tmp_path, BILL)
    block = plan.blocks[0]
    first = [draw_fields(block, random.Random(seed), plan.schemas.get) for seed in range(200)]
    again = [draw_fields(block, random.Random(seed), plan.schemas.get) for seed in range(200)]
    assert first == again                                       # the same seed draws the same items
    counts = Counter(len(v["lines"]) for v in first)
    assert set(counts) == {1, 2, 3, 4}
    for v in first:
        for line in v["lines"]:
            assert line["product"] in ("widget", "gadget", "cable", "adapter")
            assert 1 <= line["qty"] <= 9 and 100 <= line["cents"] <= 9900
            assert set(line) == {"product", "qty", "cents"}      # derived fields come after drawing


def test_weights_over_item_counts_are_one_per_count(tmp_path):
    plan = compiled(tmp_path, BILL.replace("weights(1, 1, 1, 1)", "weights(0, 0, 1, 0)"))
    block = plan.blocks[0]
    assert {len(draw_fields(block, random.Random(s), plan.schemas.get)["lines"]) for s in range(50)} == {3}


def test_every_record_holds_its_sums_and_exact_spans_item_by_item(tmp_path):
    rows = records(tmp_path, compiled(tmp_path, BILL))
    assert len(rows) == 12
    for r in rows:
        lines = r["lines"]
        for line in lines:
            assert line["price"] == round(line["cents"] / 100, 2)
            assert line["amount"] == round(line["qty"] * line["price"], 2)
        assert r["total"] == round(sum(x["qty"] * x["price"] for x in lines), 2)
        assert r["first"] == lines[0]["qty"]
        spans = r["_meta"]["spans"]["text"]
        want = [("vendor", None, r["vendor"])]
        want += [(f"lines.{k}", n, str(x[k])) for n, x in enumerate(lines) for k in ("product", "qty")]
        want += [("total", None, f"{r['total']:.2f}")]           # a rounded float with its decimals
        assert [(s["field"], s.get("item"), r["text"][s["start"]:s["end"]]) for s in spans] == want


def test_model_written_fields_inside_drawn_items(tmp_path):
    text = '''
schema Item {
  product: str ~ pick("widget", "gadget")
  qty:     int(1..5) ~ uniform
  note:    str(3..20)
}
schema Order {
  items: list[Item](2..3)
  n:     int = len(items)
  text:  str(10..300) mentions items.product
}
generate Order { count 6  allow junk, repetition, hollow }
'''
    plan = compiled(tmp_path, text)
    props = plan.blocks[0].json_schema["properties"]
    assert set(props["items"]["items"]["properties"]) == {"note"}      # the model writes the note only
    for r in records(tmp_path, plan):
        assert 2 <= len(r["items"]) == r["n"] <= 3
        assert all(set(i) == {"product", "qty", "note"} and 3 <= len(i["note"]) <= 20 for i in r["items"])
        assert [s["item"] for s in r["_meta"]["spans"]["text"]] == list(range(r["n"]))


def test_the_prompt_sees_the_drawn_list_and_the_totals(tmp_path):
    plan = compiled(tmp_path, BILL)
    seen: list[str] = []

    class Recording(FakeEngine):
        def generate(self, requests):
            seen.extend(m["content"] for r in requests for m in r.messages if m["role"] == "user")
            return super().generate(requests)

    run_plan(plan, RunOptions(out_dir=tmp_path / "out", engine_factory=lambda m: Recording(), progress=False))
    rows = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    for r in rows:
        lines = "".join(f"{i['qty']} x {i['product']} at {i['price']}\n" for i in r["lines"])
        assert any(f"Write a bill from {r['vendor']}:\n{lines}Total {r['total']}." in p for p in seen)


@pytest.mark.parametrize(("source", "value"), [
    ("items[0].qty", 2), ("items[-1].qty", 5), ("items.qty", [2, 3, 5]), ("items.qty * items.price", [2.0, 6.0, 2.5]),
    ("items.qty * 2", [4, 6, 10]), ("sum(items.qty)", 10), ("count(items)", 3), ("len(items)", 3),
    ("min(items.qty)", 2), ("max(items.price)", 2.0), ("sum(i.qty * i.price for i in items)", 10.5),
    ("[i.qty + 1 for i in items]", [3, 4, 6]), ("items.qty + [1]", [2, 3, 5, 1]),
    ("round(sum(items.price) / 3, 2)", 1.17), ("items.qty contains 3", True),
])
def test_expressions_over_lists(tmp_path, source, value):
    text = ('schema I {\n  qty: int(1..9) ~ uniform\n  price: float(0.5..9.0) ~ uniform\n}\n'
            f'schema T {{\n  items: list[I](1..4)\n  x: bool = ({source}) == ({source})\n}}\n')
    plan = compiled(tmp_path, text)
    expr = plan.schemas["T"].require("x").derived
    assert expr is not None
    record = {"items": [{"qty": 2, "price": 1.0}, {"qty": 3, "price": 2.0}, {"qty": 5, "price": 0.5}]}
    assert evaluate(expr.args[0], record) == value
    assert evaluate(expr, record) is True
    assert "for" not in source or " for i in " in to_source(expr)


def test_an_index_past_the_end_is_an_error_not_a_crash():
    e = ir.Expr(op="index", args=(ir.Expr(op="ref", path=("items",)), ir.Expr(op="lit", value=3)), path=("qty",))
    with pytest.raises(EvalError, match="out of range"):
        evaluate(e, {"items": [{"qty": 1}]})
    assert to_source(e) == "items[3].qty"


def test_fmt_writes_indexes_against_their_list_and_keeps_the_plan(tmp_path):
    messy = BILL.replace("lines[0].qty", "lines [ 0 ].qty").replace("sum(i.qty * i.price for i in lines)",
                                                                    "sum( i.qty*i.price   for i in lines )")
    formatted = format_text(messy)
    assert "first:  int = lines[0].qty" in formatted
    assert "sum(i.qty * i.price for i in lines)" in formatted
    assert format_text(formatted) == formatted
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert compiled(tmp_path / "a", messy).hash == compiled(tmp_path / "b", formatted).hash


def test_diff_names_the_item_field_that_changed(tmp_path):
    before = compiled(tmp_path, BILL, "a.synth")
    after = compiled(tmp_path, BILL.replace("qty:     int(1..9)", "qty:     int(1..5)"), "b.synth")
    changes = [c.what for c in diff_plans(before, after).changes if c.where == "block Bill"]
    assert "sampled fields: ~lines[].qty" in changes            # the item's field, not the list's count


def test_a_hand_edited_plan_with_weights_for_other_counts_is_refused(tmp_path):
    from synthlang.plan.validate_plan import validate_plan

    plan = compiled(tmp_path, BILL)
    data = json.loads(plan.to_json())
    lines = next(s for s in data["blocks"][0]["sampled"] if s["path"] == ["lines"])
    lines["sampler"]["weights"] = [1.0, 1.0]
    edited = Plan.load(data).with_hash()
    assert any("2 weights for the 4 item counts 1..4" in p for p in validate_plan(edited))
    assert validate_plan(plan) == []


def test_completion_offers_the_fields_of_a_list_s_items(tmp_path):
    from synthlang.lsp.analysis import analyse
    from synthlang.lsp.completion import complete

    spec = tmp_path / "c.synth"
    spec.write_text(BILL)
    for edited, marker in ((BILL.replace("lines[0].qty", "lines[0]."), "lines[0]."),
                           (BILL.replace("sum(i.qty * i.price", "sum(i."), "sum(i."),
                           (BILL.replace("lines.product, lines.qty", "lines."), "mentions vendor, lines.")):
        at = edited.index(marker) + len(marker)
        labels = {i.label for i in complete(analyse(spec.resolve(), {spec.resolve(): edited}), edited, at)}
        assert labels == {"product", "qty", "cents", "price", "amount"}, marker


def test_references_of_an_item_field_reach_mentions_and_indexes(tmp_path):
    from synthlang.lsp.analysis import analyse
    from synthlang.lsp.navigate import references

    spec = (tmp_path / "r.synth").resolve()
    spec.write_text(BILL)
    analysis = analyse(spec, {})
    found = references(analysis, spec, BILL.index("qty:"), include_declaration=True)
    # the declaration, `round(qty * price, 2)`, `lines[0].qty` and `lines.qty` in the mentions
    assert [(s.line, BILL[s.start - 6:s.end].strip()) for s in found] == [
        (4, "r\")\n  qty"), (7, "round(qty"), (14, "es[0].qty"), (15, "lines.qty")]


def test_seed_rows_must_hold_their_items_values_in_order(tmp_path):
    schema = '''
schema Line {
  product: str ~ pick("widget", "gadget")
  qty:     int(1..9) ~ uniform
}
schema Bill {
  lines: list[Line](1..3)
  total: int = sum(lines.qty)
  text:  str(10..200) mentions lines.product, lines.qty, total
}
seeds real from "rows.jsonl" as Bill
'''
    good = {"lines": [{"product": "widget", "qty": 2}, {"product": "gadget", "qty": 3}], "total": 5,
            "text": "2 x widget? no: widget 2, gadget 3, total 5."}
    bad = {**good, "text": "gadget 3, widget 2, total 5."}
    (tmp_path / "rows.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    spec = tmp_path / "spec.synth"
    spec.write_text(schema)
    found = [(d.code, d.span.line, d.message) for d in compile(spec).diagnostics]
    assert found == [("E0302", 2, "row 2 of `rows.jsonl` does not fit Bill: field `text` does not contain the values "
                      "of `lines.product`, `lines.qty`, `total` in that order")]
