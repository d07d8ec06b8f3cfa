"""The invoice example (specs/invoice_extraction) on the real embedded model (SmolLM2-135M on
llama.cpp), run small: every record is checked on its own, from the record alone
(tests/invoice_checks.py, not the product's checker): its amounts, subtotal, tax and total in
whole cents, and each span's text against its value's surface form, after noise. Marked
`engine`; CI runs it."""

import json
import shutil
from pathlib import Path

import pytest
from invoice_checks import assert_spans, assert_sums

from synthlang import ir
from synthlang.compiler import compile
from synthlang.engines.base import EngineOptions
from synthlang.runtime.driver import run_plan
from synthlang.runtime.options import RunOptions

pytestmark = pytest.mark.engine
EXAMPLE = Path(__file__).resolve().parents[1] / "specs" / "invoice_extraction"


class Shared:
    """One loaded model for the module; a run must not close it."""

    def __init__(self, engine):
        self.engine = engine
        self.name = engine.name
        self.capabilities = engine.capabilities
        self.in_flight = engine.in_flight

    def generate(self, requests):
        return self.engine.generate(requests)

    def close(self):
        return None


@pytest.fixture(scope="module")
def engine():
    from synthlang.engines.llamacpp import LlamaCppEngine

    eng = LlamaCppEngine(ir.Model(name="embedded"), EngineOptions())
    yield Shared(eng)
    eng.close()


def test_real_model_invoices_add_up_and_hold_their_values_at_their_spans(tmp_path, engine):
    shutil.copytree(EXAMPLE, tmp_path / "spec")
    spec = tmp_path / "spec" / "invoices.synth"
    # small: two invoices of one or two lines, a shorter text. What is checked here is the ground
    # truth of the values the constraint wrote, not the prose around them, so the filters that
    # would send a 135M model's loops and unfinished sentences back for another try are off:
    # the run takes one attempt per record
    spec.write_text(spec.read_text().replace("count 40", "count 2").replace("weights(3, 3, 2, 1, 1)",
                                                                             "weights(1, 1, 0, 0, 0)")
                    .replace("str(80..900)", "str(60..240)")
                    .replace("allow echo, junk", "allow echo, junk, truncated, repetition, hollow"))
    plan = compile(spec).plan
    assert plan is not None
    run_plan(plan, RunOptions(out_dir=tmp_path / "out", engine_factory=lambda m: engine, progress=False))
    rows = [json.loads(line) for split in ("train", "test")
            for line in (tmp_path / "out" / f"{split}.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for r in rows:
        assert_sums(r)
        assert_spans(r)
        assert r["_meta"]["model"] == "writer" and 60 <= len(r["text"]) <= 240
