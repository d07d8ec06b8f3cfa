"""Integration tests on the real embedded model (SmolLM2-135M-Instruct on llama.cpp,
constrained by llguidance through Outlines). Marked `engine`; CI runs them."""

import json
import re
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
        self.in_flight = engine.in_flight

    def generate(self, requests):
        return self.engine.generate(requests)

    def close(self):
        return None


class Counting(Shared):
    """The shared engine, counting the requests it is sent."""

    def __init__(self, shared: Shared):
        super().__init__(shared.engine)
        self.sent = 0

    def generate(self, requests):
        self.sent += len(requests)
        return super().generate(requests)


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


# batched decoding ---------------------------------------------------------------------------------
def _ticket_requests(n, max_tokens=None):
    from dataclasses import replace

    from synthlang.runtime.attempts import Attempts

    plan = compile(ROOT / "specs/support_tickets/tickets.synth").plan
    block = plan.blocks[0]
    attempts = Attempts(plan, RunOptions(out_dir=Path("/nonexistent")))
    out = []
    for i in range(n):
        request = attempts.prepare(block, i % len(block.cells), i)[2]
        out.append(request if max_tokens is None else replace(request, max_tokens=max_tokens[i % len(max_tokens)]))
    return block, out


def _batched_engine(batch):
    from synthlang.engines.llamacpp import LlamaCppEngine

    return LlamaCppEngine(ir.Model(name="embedded"), EngineOptions(batch=batch))


def test_batched_output_is_reproducible_with_and_without_prefix_reuse():
    block, requests = _ticket_requests(8)
    eng = _batched_engine(4)
    try:
        first = [r.text for r in eng.generate(requests)]
        reused_before = eng.decoder.stats.prompt_reused
        # the slots now hold these prompts: the second call reuses them
        second = [r.text for r in eng.generate(requests)]
        assert eng.decoder.stats.prompt_reused - reused_before > reused_before
    finally:
        eng.close()
    fresh = _batched_engine(4)
    try:
        third = [r.text for r in fresh.generate(requests)]
    finally:
        fresh.close()
    assert first == second == third
    for text in first:
        record = json.loads(text)
        assert set(record) == set(block.json_schema["properties"])


def test_continuous_batching_does_not_hold_short_records_behind_long_ones():
    # short and long requests interleaved; four slots
    _, requests = _ticket_requests(12, max_tokens=[12, 200])
    eng = _batched_engine(4)
    try:
        results = eng.generate(requests)
        steps = eng.decoder.stats.steps
    finally:
        eng.close()
    tokens = [r.tokens for r in results]
    assert all(r.error is None for r in results)
    assert all(t <= req.max_tokens for t, req in zip(tokens, requests))
    # static batches of four in request order would take the longest of each four
    static = sum(max(tokens[i:i + 4]) for i in range(0, len(tokens), 4))
    assert steps < static
    assert steps < sum(tokens) / 2  # and it is batching at all


def test_a_run_killed_mid_way_resumes_with_exact_quotas_and_nothing_lost(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "tickets"
    shutil.copytree(ROOT / "specs/support_tickets", folder)
    spec = folder / "tickets.synth"
    spec.write_text(spec.read_text().replace("count 40", "count 20"))
    journal = tmp_path / "out/.synth/journal.jsonl"
    cmd = [sys.executable, "-m", "synthlang.cli", "run", str(spec), "--out", str(tmp_path / "out"), "--progress", "log"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if journal.exists() and len(journal.read_text().splitlines()) >= 6:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    kept = [e["rec"] for e in before if e.get("ok")]
    assert kept
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=1200)
    assert done.returncode == 0, done.stderr
    after = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    assert after[:len(before)] == before  # the journal was only appended to
    keys = [(e["b"], e["c"], e["a"]) for e in after if "b" in e]  # the first line names the plan
    assert len(keys) == len(set(keys))  # no attempt counted twice
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    block = manifest["blocks"]["Ticket"]
    assert block["accepted"] == 20 and all(c["accepted"] == c["count"] for c in block["cells"])
    accepted = [e["rec"] for e in after if e.get("ok")]
    assert len(accepted) == 20
    assert accepted[:len(kept)] == kept  # what was accepted before the kill is in the data


def test_real_model_output_passes_plausibility_and_is_never_cut_mid_word(tmp_path, engine):
    """The example ticket spec on the real model: what is emitted is never cut at its cap inside
    a word, never holds a seed row's subject or the format note, and the manifest counts the
    filters' rejections by kind."""
    spec_dir = tmp_path / "support_tickets"
    shutil.copytree(ROOT / "specs/support_tickets", spec_dir)
    spec = spec_dir / "tickets.synth"
    spec.write_text(spec.read_text().replace("count 40", "count 10").replace(
        "noise body { typo 2%, lowercase 10% }", "").replace("noise subject { strip_punct 5% }", ""))
    plan, report, rows = run_spec(tmp_path, "specs/support_tickets/tickets.synth", engine)
    synthetic = [r for r in rows if r["_meta"]["source"] == "synthetic"]
    assert len(synthetic) == 10
    seed_subjects = {r["subject"].lower() for r in plan.seed_rows("Ticket")}
    for r in synthetic:
        for name, cap in (("subject", 80), ("body", 300)):
            value = r[name]
            if len(value) >= cap - 2:  # at the cap: it ends a sentence or was cut back to a whole word
                assert value.rstrip()[-1] in ".!?\"')" or name in r["_meta"].get("trimmed", []), value
        assert r["subject"].lower() not in seed_subjects
        assert not re.search(r"\d+\s*-\s*\d+ characters|list of up to", r["subject"] + " " + r["body"])
    block = report.manifest["blocks"]["Ticket"]
    kinds = {why.split(":")[0] for why in block["rejections"]}
    assert set(block["rejection_rates"]) == kinds
    assert abs(sum(block["rejections"].values()) / block["attempts"] - sum(block["rejection_rates"].values())) < 0.01


def test_real_model_edit_one_blocks_prompt_and_the_other_block_sends_nothing(tmp_path, engine):
    folder = tmp_path / "spec"
    folder.mkdir()
    spec = folder / "two_blocks.synth"
    spec.write_text((ROOT / "tests/runtime_specs/two_blocks.synth").read_text()
                    .replace("count 12", "count 4").replace("billing: 50%, outage: 25%, login: 25%", "billing: 2, outage: 1, login: 1")
                    .replace("count 9", "count 3").replace("low: 3, mid: 3, high: 3", "low: 1, mid: 1, high: 1"))
    counted = Counting(engine)

    def run(out: str):
        plan = compile(spec).plan
        assert plan is not None
        # no conformance probe: its requests would be counted as the run's
        report = run_plan(plan, RunOptions(out_dir=tmp_path / out, engine_factory=lambda m: counted, progress=False,
                                           probe=False, cache_dir=tmp_path / "cache"))
        return report.manifest["blocks"]

    first = run("out")
    ticket_files = {n: (tmp_path / "out" / n).read_bytes() for n in ("Ticket.train.jsonl", "Ticket.test.jsonl")}
    sent = counted.sent
    assert sent == sum(b["requests_sent"] for b in first.values()) > 0
    spec.write_text(spec.read_text().replace("Write one {{ stars }}-rated review", "Write a short {{ stars }}-rated review"))
    blocks = run("out")
    assert blocks["Ticket"]["requests_sent"] == 0 and blocks["Ticket"]["requests_reused"] > 0
    assert blocks["Review"]["requests_sent"] > 0
    assert counted.sent - sent == blocks["Review"]["requests_sent"]   # the engine saw the Review block's only
    assert {n: (tmp_path / "out" / n).read_bytes() for n in ticket_files} == ticket_files
    # unchanged, into a fresh folder: the cache answers everything, byte for byte
    sent = counted.sent
    run("again")
    assert counted.sent == sent
    assert {n: (tmp_path / "again" / n).read_bytes() for n in ticket_files} == ticket_files



def test_records_grown_from_the_example_rows_on_the_real_model(tmp_path, engine):
    """The model rewrites the example's real tickets (`generate Ticket from real_tickets`,
    `rewrite body`, `resample priority`): checked here without the product's code, every record
    keeps its row's label and subject, has a body of its own, names a row of the seed file in
    `_meta.from`, and was read by the label check."""
    folder = tmp_path / "support_tickets"
    shutil.copytree(ROOT / "specs/support_tickets", folder)
    spec = folder / "tickets.synth"
    text = spec.read_text()
    start, end = text.index("generate Ticket {"), text.index("output ")
    spec.write_text(text[:start] + """generate Ticket from real_tickets {
  count 5
  using writer
  quota intent { billing: 1, outage: 1, login: 1, refund: 1, data_loss: 1 }
  rewrite body
  resample priority
  prompt \"\"\"
    A customer wrote this {{ seed.channel }} ticket about the {{ seed.product }}:
    "{{ seed.body }}"
    Write the ticket another customer with the same {{ intent | replace("_", " ") }} problem would send.
  \"\"\"
}

""" + text[end:].replace("split train 80%, test 20%", "split train 100%").replace("mix real_tickets 20%", ""))
    plan = compile(spec).plan
    assert plan is not None and plan.blocks[0].grow.rewrite == ("body",)
    run_plan(plan, RunOptions(out_dir=tmp_path / "out", engine_factory=lambda m: engine, progress=False))
    rows = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    seeds = [json.loads(line) for line in (folder / "seeds" / "tickets.jsonl").read_text().splitlines()]
    assert sorted(r["intent"] for r in rows) == ["billing", "data_loss", "login", "outage", "refund"]
    for r in rows:
        meta = r["_meta"]
        source = seeds[meta["from"]["row"]]
        assert meta["from"] == {"seeds": "real_tickets", "row": meta["from"]["row"], "how": "rewritten"}
        assert r["intent"] == source["intent"] == meta["cell"]["intent"]     # the label is the row's
        assert r["subject"] == source["subject"] and r["channel"] == source["channel"]
        assert r["body"] != source["body"] and 40 <= len(r["body"]) <= 300
    journal = [json.loads(line) for line in (tmp_path / "out" / ".synth" / "journal.jsonl").read_text().splitlines()]
    read = {e["lab"]["intent"]["want"] for e in journal if e.get("ok") and "lab" in e}
    assert read == {"billing", "data_loss", "login", "outage", "refund"}
