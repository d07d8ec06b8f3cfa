"""Properties of the invoice example (specs/invoice_extraction), for any seed: every drawn
invoice's derived amounts, subtotal, tax and total equal the sums recomputed here from its
items, and every span of `_meta.spans` holds the surface form of its value, after noise
(tests/invoice_checks.py: recomputed from the record alone, not with the product's code)."""

import json
import random
import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from invoice_checks import assert_spans, assert_sums

from synthlang.compiler import compile
from synthlang.engines.fake import FakeEngine
from synthlang.plan.model import Plan
from synthlang.runtime.derive import derive
from synthlang.runtime.driver import run_plan
from synthlang.runtime.options import RunOptions
from synthlang.runtime.sampling import draw_fields

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "specs" / "invoice_extraction"


_PLAN: dict[str, Plan] = {}


def example_plan() -> Plan:
    if "plan" not in _PLAN:
        plan = compile(EXAMPLE / "invoices.synth").plan
        assert plan is not None
        _PLAN["plan"] = plan
    return _PLAN["plan"]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_every_drawn_invoice_adds_up(seed):
    plan = example_plan()
    block = plan.blocks[0]
    values = draw_fields(block, random.Random(seed), plan.schemas.get)
    derive(block.derived, values, plan.schemas, plan.schemas[block.schema_name], early_only=True)
    assert_sums(values)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(min_value=0, max_value=2**31 - 1))
def test_every_generated_invoice_adds_up_and_its_spans_hold_their_values(tmp_path_factory, seed):
    folder = tmp_path_factory.mktemp("inv")
    shutil.copytree(EXAMPLE, folder / "spec")
    spec = folder / "spec" / "invoices.synth"
    # the fake engine writes random words: the plausibility filters that reject them are off
    spec.write_text(spec.read_text().replace("seed 11", f"seed {seed}").replace("count 40", "count 6")
                    .replace("allow echo, junk", "allow echo, junk, repetition, hollow")
                    .replace("75%, ocr 20%,", "90%, ocr 90%,").replace("whitespace 10%, typo 5%", "whitespace 90%, typo 90%"))
    plan = compile(spec).plan
    assert plan is not None
    run_plan(plan, RunOptions(out_dir=folder / "out", engine_factory=lambda m: FakeEngine(), progress=False))
    rows = [json.loads(line) for split in ("train", "test")
            for line in (folder / "out" / f"{split}.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    for r in rows:
        assert_sums(r)
        assert_spans(r)
    applied = {n["rule"] for r in rows for n in r["_meta"]["noise"]}
    assert "number_format" in applied and applied & {"ocr", "whitespace", "typo"}   # and the spans survived it
