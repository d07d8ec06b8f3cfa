"""The invoice example (specs/invoice_extraction) end to end on the fake engine: its records
feed `synthc eval`'s span tagger, which learns an entity type per mentioned path (an item's
product, quantity and amount, the totals) and is scored on the held-out invoices; the
held-out file's own spans hold what they claim."""

import json
import shutil
from pathlib import Path

from synthlang.compiler import compile
from synthlang.engines.fake import FakeEngine
from synthlang.evaluate.run_eval import run_eval
from synthlang.evaluate.spans import bio
from synthlang.runtime.driver import run_plan
from synthlang.runtime.options import RunOptions

EXAMPLE = Path(__file__).resolve().parents[1] / "specs" / "invoice_extraction"
PATHS = {"vendor", "number", "issued", "lines.product", "lines.qty", "lines.amount", "subtotal", "tax", "total"}


def test_the_held_out_invoices_hold_their_spans():
    rows = [json.loads(line) for line in (EXAMPLE / "data" / "held_out.jsonl").read_text().splitlines()]
    assert len(rows) == 30
    for r in rows:
        assert {s["field"] for s in r["spans"]} == PATHS
        assert r["text"][r["spans"][0]["start"]:r["spans"][0]["end"]] == r["vendor"]
        assert all(s["end"] > s["start"] for s in r["spans"])


def test_eval_trains_a_span_tagger_with_an_entity_type_per_mentioned_path(tmp_path):
    shutil.copytree(EXAMPLE, tmp_path / "spec")
    plan = compile(tmp_path / "spec" / "invoices.synth").plan
    assert plan is not None
    out = tmp_path / "out"
    run_plan(plan, RunOptions(out_dir=out, engine_factory=lambda m: FakeEngine(), progress=False))
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    labels = {label for r in rows for label in bio(r["text"], [(s["field"], s["start"], s["end"])
                                                               for s in r["_meta"]["spans"]["text"]])[1]}
    assert {f"B-{p}" for p in PATHS} <= labels
    (result,) = run_eval(plan, tmp_path / "spec", out)["evaluations"]
    assert result["kind"] == "spans" and result["n_test"] == 30 and set(result["fields"]) == PATHS
    synthetic = result["sets"]["synthetic"]
    assert synthetic["n_train"] == len(rows)
    predicted = {span[0] for spans in synthetic["predictions"] for span in spans}
    assert predicted & {"lines.product", "lines.qty", "lines.amount"}   # the items' entity types are learnt
    assert synthetic["f1"]["value"] > 0
