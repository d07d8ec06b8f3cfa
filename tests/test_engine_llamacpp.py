"""Integration tests on the real embedded model (SmolLM2-135M-Instruct on llama.cpp,
constrained by llguidance through Outlines). Marked `engine`; CI runs them."""

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from synthlang import ir
from synthlang.compiler import compile
from synthlang.engines.base import ConstraintNotEnforced, EngineOptions
from synthlang.engines.probe import run_probe
from synthlang.expr import passes
from synthlang.runtime.driver import run_plan
from synthlang.runtime.noise import restore_truth
from synthlang.runtime.options import RunOptions
from synthlang.values import check_record

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[1]


class Shared:
    """One loaded model for the whole module; runs must not close it."""

    def __init__(self, engine):
        self.engine = engine
        self.name = engine.name
        self.capabilities = engine.capabilities

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


def run_spec(tmp_path, rel, engine, out="out"):
    src = ROOT / rel
    folder = tmp_path / src.parent.name
    if not folder.exists():
        shutil.copytree(src.parent, folder)
    plan = compile(folder / src.name).plan
    assert plan is not None
    report = run_plan(plan, RunOptions(out_dir=tmp_path / out, engine_factory=lambda m: engine, progress=False))
    rows = []
    for split in plan.output.splits:
        path = tmp_path / out / f"{split.name}.{plan.output.format}"
        rows += [json.loads(line) for line in path.read_text().splitlines()]
    return plan, report, rows


def test_probe_passes_on_the_real_engine(engine):
    run_probe(engine)


def test_probe_fails_when_the_constraint_is_switched_off():
    from synthlang.engines.llamacpp import LlamaCppEngine

    eng = LlamaCppEngine(ir.Model(name="embedded"), EngineOptions(constrained=False))
    try:
        with pytest.raises(ConstraintNotEnforced):
            run_probe(eng)
    finally:
        eng.close()


def test_real_model_records_are_valid_exact_and_reproducible(tmp_path, engine):
    plan, report, rows = run_spec(tmp_path, "tests/runtime_specs/engine_tickets.synth", engine)
    block = plan.blocks[0]
    schema = plan.schemas["Ticket"]
    assert len(rows) == 6
    assert Counter(r["intent"] for r in rows) == Counter({c.key["intent"]: c.count for c in block.cells})
    bodies = set()
    for r in rows:
        clean = restore_truth({k: v for k, v in r.items() if k != "_meta"}, r["_meta"])
        check_record(schema, clean, plan.schemas.get, require_generated=True)  # schema-valid
        assert all(passes(c, clean) for c in block.checks)
        assert r["_meta"]["judge"] in (1, 2, 3, 4, 5)
        assert clean["urgent"] == (clean["priority"] >= 4)
        assert r["body"] not in bodies
        bodies.add(r["body"])
    assert report.manifest["blocks"]["Ticket"]["tokens"] > 0
    # the same plan and seeds on the same engine give the same data
    _, _, again = run_spec(tmp_path, "tests/runtime_specs/engine_tickets.synth", engine, out="out2")
    assert again == rows


def test_real_model_mentions_at_their_spans_after_noise(tmp_path, engine):
    spec_dir = tmp_path / "address_extraction"
    shutil.copytree(ROOT / "specs/address_extraction", spec_dir)
    spec = spec_dir / "addresses.synth"
    text = spec.read_text().replace("count 30", "count 4").replace(
        "noise letter { typo 3%, whitespace 5% }", "noise letter { typo 70%, whitespace 70% }")
    spec.write_text(text.replace("split train 90%, test 10%", "split train 100%"))
    plan, report, rows = run_spec(tmp_path, "specs/address_extraction/addresses.synth", engine)
    assert len(rows) == 4
    noised = 0
    for r in rows:
        spans = r["_meta"]["spans"]["letter"]
        assert [s["field"] for s in spans] == ["number", "street", "city", "zip"]
        for s in spans:
            assert r["letter"][s["start"]:s["end"]] == r[s["field"]]
        assert 60 <= len(r["letter"]) <= 300
        noised += bool(r["_meta"]["noise"])
    assert noised >= 1


def test_real_model_generation_then_eval_end_to_end(tmp_path, engine):
    from synthlang.evaluate.run_eval import run_eval
    from synthlang.report import write_report

    folder = tmp_path / "news_topics"
    shutil.copytree(ROOT / "specs/news_topics", folder)
    spec = folder / "news.synth"
    spec.write_text(spec.read_text().replace("count 50", "count 10").replace("mix bbc 20%", "mix bbc 50%"))
    plan, report, rows = run_spec(tmp_path, "specs/news_topics/news.synth", engine)
    assert sum(r["_meta"]["source"] == "synthetic" for r in rows) == 10
    result = run_eval(plan, folder, tmp_path / "out")
    ev = result["evaluations"][0]
    assert ev["sets"]["synthetic"]["n_train"] == 10 and ev["n_test"] == 100
    assert set(ev["verdicts"]) == {"synthetic", "blend"}
    card, page = write_report(tmp_path / "out")
    assert "Contribution of the synthetic data" in page.read_text()
