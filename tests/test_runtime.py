"""The runtime's guarantees, on the fake engine (which writes schema-valid random values):
exact quotas, validation, checks, dedup, noise with correct spans, provenance, splits and
mix, formats, failure messages, the conformance probe, and resume after SIGKILL.
The real-model tests are in test_engine_llamacpp.py."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from synthlang.compiler import compile
from synthlang.engines.base import ConstraintNotEnforced, EngineDead, GenerationResult
from synthlang.engines.fake import FakeEngine
from synthlang.expr import passes
from synthlang.runtime.driver import CellFailed, run_plan
from synthlang.runtime.journal import JournalMismatch
from synthlang.runtime.noise import restore_truth
from synthlang.runtime.options import RunOptions
from synthlang.values import check_record

ROOT = Path(__file__).resolve().parents[1]


def copy_spec(tmp_path, rel):
    src = ROOT / rel
    dst = tmp_path / src.parent.name
    shutil.copytree(src.parent, dst)
    return dst / src.name


def run(spec, out, **kw):
    plan = compile(spec).plan
    assert plan is not None
    kw.setdefault("engine_factory", lambda m: FakeEngine())
    kw.setdefault("progress", False)
    return plan, run_plan(plan, RunOptions(out_dir=out, **kw))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_quotas_exact_records_valid_checks_hold(tmp_path):
    spec = copy_spec(tmp_path, "specs/support_tickets/tickets.synth")
    plan, report = run(spec, tmp_path / "out")
    block = plan.blocks[0]
    rows = read_jsonl(tmp_path / "out/train.jsonl") + read_jsonl(tmp_path / "out/test.jsonl")
    synth = [r for r in rows if r["_meta"]["source"] == "synthetic"]
    real = [r for r in rows if r["_meta"]["source"] == "real"]
    assert len(synth) == block.count
    assert Counter(r["intent"] for r in synth) == Counter({c.key["intent"]: c.count for c in block.cells})
    schema = plan.schemas["Ticket"]
    for r in synth:
        clean = restore_truth({k: v for k, v in r.items() if k != "_meta"}, r["_meta"])
        check_record(schema, clean, plan.schemas.get, require_generated=True)
        assert r["urgent"] == (r["priority"] >= 4)
        for check in block.checks:
            assert passes(check, clean)
        meta = r["_meta"]
        assert meta["block"] == "Ticket" and meta["cell"]["intent"] == r["intent"]
    ids = [r["_meta"]["id"] for r in synth]
    assert len(set(ids)) == len(ids)
    # 80/20 split of the 40 synthetic records; real rows are 20% of train
    train = read_jsonl(tmp_path / "out/train.jsonl")
    assert sum(r["_meta"]["source"] == "synthetic" for r in train) == 32
    assert sum(r["_meta"]["source"] == "real" for r in train) == 8 == len(real)
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["complete"] and manifest["blocks"]["Ticket"]["accepted"] == 40
    assert sum(c["accepted"] for c in manifest["blocks"]["Ticket"]["cells"]) == 40


def test_dedup_catches_seed_rows_and_near_duplicates():
    from synthlang import ir
    from synthlang.runtime.dedup import Deduper

    seed = {"body": "My invoice for March lists the wrong plan, please correct it soon."}
    d = Deduper((ir.Dedup(field="body", mode="near", threshold=0.8),), [seed])
    assert d.duplicate_of({"body": "my invoice for March lists the wrong plan,  please correct it soon."}) == "body"
    fresh = {"body": "The export button does nothing in Firefox since yesterday evening."}
    assert d.duplicate_of(fresh) is None
    d.add(fresh)
    assert d.duplicate_of({"body": "The export button does nothing in Firefox since yesterday evening!"}) == "body"
    exact = Deduper((ir.Dedup(field="n", mode="exact"),), [{"n": 3}])
    assert exact.duplicate_of({"n": 3}) == "n" and exact.duplicate_of({"n": 4}) is None


def test_mentions_spans_exact_after_noise(tmp_path):
    spec = copy_spec(tmp_path, "tests/runtime_specs/noisy_addresses.synth")
    plan, report = run(spec, tmp_path / "out")
    rows = read_jsonl(tmp_path / "out/train.jsonl") + read_jsonl(tmp_path / "out/test.jsonl")
    assert len(rows) == 40
    applied = Counter()
    letters = set()
    for r in rows:
        spans = r["_meta"]["spans"]["letter"]
        assert [s["field"] for s in spans] == ["number", "street", "city", "zip"]
        prev_end = 0
        for s in spans:
            assert r["letter"][s["start"]:s["end"]] == r[s["field"]]
            assert s["start"] >= prev_end
            prev_end = s["end"]
        assert 60 <= len(r["letter"]) <= 300
        for n in r["_meta"]["noise"]:
            applied[n["rule"]] += 1
        if any(n["rule"] == "date_format" for n in r["_meta"]["noise"]):
            assert r["_meta"]["truth"]["day"][:4] == "2024" and "-" not in r["day"][:4]
        assert r["letter"] not in letters  # dedup exact
        letters.add(r["letter"])
    assert applied["typo"] > 5 and applied["uppercase"] > 3 and applied["date_format"] == 40
    assert applied["drop"] > 5


def test_outputs_in_parquet_and_csv(tmp_path):
    import csv

    import pyarrow.parquet as pq

    for fmt in ("parquet", "csv"):
        spec = copy_spec(tmp_path / fmt, "specs/self_instruct/instructions.synth")
        spec.write_text(spec.read_text().replace("format jsonl", f"format {fmt}"))
        run(spec, tmp_path / fmt / "out")
        if fmt == "parquet":
            table = pq.read_table(tmp_path / fmt / "out/train.parquet")
            assert table.num_rows == 32 and "instruction" in table.column_names
        else:
            with open(tmp_path / fmt / "out/test.csv", newline="") as fh:
                rows = list(csv.DictReader(fh))
            assert len(rows) == 4 and json.loads(rows[0]["_meta"])["source"] == "synthetic"


def test_unfillable_cell_stops_with_a_clear_message(tmp_path):
    spec = copy_spec(tmp_path, "tests/runtime_specs/hard_cell.synth")
    with pytest.raises(CellFailed) as info:
        run(spec, tmp_path / "out", max_attempts=30)
    msg = str(info.value)
    assert "cell kind=hard holds 0 of 5 records after 30 attempts" in msg
    assert "pass rate 0.0%" in msg and 'check: ((kind == "easy") or (n > 100)) (30)' in msg
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["complete"] is False
    assert manifest["blocks"]["R"]["cells"][0]["accepted"] == 5  # what was made is kept


def test_probe_refuses_an_engine_that_ignores_constraints(tmp_path):
    spec = copy_spec(tmp_path, "specs/self_instruct/instructions.synth")
    with pytest.raises(ConstraintNotEnforced):
        run(spec, tmp_path / "out", engine_factory=lambda m: FakeEngine(broken=True))
    assert not (tmp_path / "out/train.jsonl").exists()


class FlakyEngine(FakeEngine):
    """Fails every third request once, then dies after `die_after` requests."""

    def __init__(self, die_after=None):
        super().__init__()
        self.calls = 0
        self.die_after = die_after

    def generate(self, requests):
        out = []
        for r in requests:
            self.calls += 1
            if self.die_after is not None and self.calls > self.die_after:
                raise EngineDead("simulated crash")
            if self.calls % 3 == 0:
                out.append(GenerationResult(None, error="HTTP 503"))
            else:
                out += super().generate([r])
        return out


def test_engine_errors_are_retried_and_a_dead_engine_resumes(tmp_path):
    spec = copy_spec(tmp_path, "specs/self_instruct/instructions.synth")
    _, full = run(spec, tmp_path / "ref")
    with pytest.raises(EngineDead):
        run(spec, tmp_path / "out", engine_factory=lambda m: FlakyEngine(die_after=25), probe=False)
    _, resumed = run(spec, tmp_path / "out", engine_factory=lambda m: FlakyEngine(), probe=False)
    for split in ("train.jsonl", "test.jsonl"):
        assert (tmp_path / "out" / split).read_text() == (tmp_path / "ref" / split).read_text()
    assert resumed.manifest["blocks"]["Pair"]["rejections"].get("engine_error", 0) == 0


class CuttingEngine(FakeEngine):
    """Every other request comes back cut at max_tokens (deterministic) or as a dropped connection
    that succeeds when asked again (transient); counts what it is sent."""

    def __init__(self):
        super().__init__()
        self.sent: Counter = Counter()

    def generate(self, requests):
        from synthlang.engines.base import deterministic

        out = []
        for r in requests:
            self.sent[r.seed] += 1
            if r.seed % 2:
                out.append(deterministic("output cut at max_tokens", "max_tokens", tokens=r.max_tokens))
            elif self.sent[r.seed] == 1:
                out.append(GenerationResult(None, error="ConnectionResetError: reset by peer"))
            else:
                out += super().generate([r])
        return out


def test_a_deterministic_engine_error_is_not_retried_and_is_named(tmp_path):
    spec = tmp_path / "s.synth"
    spec.write_text('schema T { b: str(1..10) }\ngenerate T { count 6 }\n')
    engine = CuttingEngine()
    report = run_plan(compile(spec).plan, RunOptions(out_dir=tmp_path / "out", engine_factory=lambda m: engine,
                                                     probe=False))
    block = report.manifest["blocks"]["T"]
    assert block["accepted"] == 6 and block["rejections"].get("max_tokens", 0) >= 1, block
    assert "engine_error" not in block["rejections"]
    odd = [n for seed, n in engine.sent.items() if seed % 2]
    even = [n for seed, n in engine.sent.items() if not seed % 2]
    assert odd and all(n == 1 for n in odd)          # cut at max_tokens: asked once
    assert even and all(n == 2 for n in even)        # a dropped connection: asked again, once


def test_output_folder_of_another_dataset_is_refused(tmp_path):
    spec = copy_spec(tmp_path, "specs/self_instruct/instructions.synth")
    run(spec, tmp_path / "out")
    text = spec.read_text()
    assert "dataset self_instruct_mini {" in text
    spec.write_text(text.replace("dataset self_instruct_mini {", "dataset another {").replace("count 36", "count 30").replace(
        "quota task { explain: 6, summarize: 6, classify: 6, rewrite: 6, list_items: 6, compare: 6 }",
        "quota task { explain: 5, summarize: 5, classify: 5, rewrite: 5, list_items: 5, compare: 5 }"))
    with pytest.raises(JournalMismatch, match="another dataset"):
        run(spec, tmp_path / "out")
    run(spec, tmp_path / "out", fresh=True)
    assert len(read_jsonl(tmp_path / "out/train.jsonl")) == 27


def test_rerun_of_a_finished_run_changes_nothing(tmp_path):
    spec = copy_spec(tmp_path, "specs/self_instruct/instructions.synth")
    run(spec, tmp_path / "out")
    before = (tmp_path / "out/train.jsonl").read_text()
    _, again = run(spec, tmp_path / "out")
    assert (tmp_path / "out/train.jsonl").read_text() == before
    assert again.manifest["journal_entries_replayed"] >= 36


def _synthc_run(spec, out, env):
    return subprocess.Popen([sys.executable, "-m", "synthlang.cli", "run", str(spec), "--out", str(out),
                             "--fake-engine", "--batch", "3", "--progress", "log"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_sigkill_at_random_points_then_resume_equals_uninterrupted(tmp_path):
    spec = copy_spec(tmp_path, "tests/runtime_specs/noisy_addresses.synth")
    env = {**os.environ, "SYNTHLANG_FAKE_DELAY": "0.15"}
    ref = _synthc_run(spec, tmp_path / "ref", env)
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    rng = random.Random(3)
    kills = 0
    for _ in range(5):
        proc = _synthc_run(spec, tmp_path / "out", env)
        time.sleep(rng.uniform(0.8, 1.8))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= 3
    final = _synthc_run(spec, tmp_path / "out", env)
    assert final.wait(timeout=300) == 0, final.stderr.read()
    for split in ("train.jsonl", "test.jsonl"):
        assert (tmp_path / "out" / split).read_text() == (tmp_path / "ref" / split).read_text()
    journal = [json.loads(l) for l in (tmp_path / "out/.synth/journal.jsonl").read_text().splitlines()]
    accepted = [(e["c"], e["a"]) for e in journal if e.get("ok")]
    assert len(accepted) == len(set(accepted)) == 40
    # the result cache came through the kills whole: without the journal, it alone rebuilds the data
    (tmp_path / "out/.synth/journal.jsonl").unlink()
    again = _synthc_run(spec, tmp_path / "out", env)
    assert again.wait(timeout=300) == 0, again.stderr.read()
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["blocks"]["Address"]["requests_sent"] == 0 and manifest["blocks"]["Address"]["requests_reused"] > 0
    for split in ("train.jsonl", "test.jsonl"):
        assert (tmp_path / "out" / split).read_text() == (tmp_path / "ref" / split).read_text()


@pytest.mark.parametrize("fields", [
    "a: int = n * 2\n b: int = a + 1\n c: int = b + a",
    "c: int = b + a\n b: int = a + 1\n a: int = n * 2",
])
def test_derived_fields_are_evaluated_after_the_fields_they_read(tmp_path, fields):
    spec = tmp_path / "d.synth"
    spec.write_text(f"schema T {{ n: int(1..5) ~ uniform\n {fields}\n t: str(1..10) }}\ngenerate T {{ count 4 }}\n")
    result = compile(spec)
    assert result.ok, result.diagnostics
    report = run_plan(result.plan, RunOptions(out_dir=tmp_path / "out", engine_factory=lambda m: FakeEngine()))
    rows = [json.loads(line) for line in (report.out_dir / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    for r in rows:
        assert (r["a"], r["b"], r["c"]) == (2 * r["n"], 2 * r["n"] + 1, 4 * r["n"] + 1)


def test_the_run_lock_is_held_until_the_last_output_is_written(tmp_path, monkeypatch):
    """A second run of the folder while the first writes its split files, plan.json and
    manifest.json is refused, so the two can never leave files from different runs."""
    from synthlang.runtime import driver
    from synthlang.runtime.journal import Journal, RunBusy

    spec = tmp_path / "s.synth"
    spec.write_text('schema T { b: str(1..10) }\ngenerate T { count 2 }\n')
    plan = compile(spec).plan
    seen = []
    real_manifest = driver.Driver._write_manifest

    def second_run_while_writing(self, *args, **kwargs):
        with pytest.raises(RunBusy, match=rf"another synthc run \(process {os.getpid()}\) is writing to"):
            Journal(self.opt.out_dir / driver.RUN_DIR / driver.JOURNAL, plan.hash, plan.dataset.name)
        seen.append(True)
        return real_manifest(self, *args, **kwargs)

    monkeypatch.setattr(driver.Driver, "_write_manifest", second_run_while_writing)
    run_plan(plan, RunOptions(out_dir=tmp_path / "out", engine_factory=lambda m: FakeEngine()))
    assert seen == [True]


def test_a_wave_without_a_result_for_its_first_attempt_stops_instead_of_spinning(tmp_path):
    """The driver's guard: if a pool ever answers a wave with nothing but pending attempts,
    asking again would get the same, so the run stops with the block and cell named."""
    from synthlang.runtime.entries import PENDING, Attempt, Candidate
    from synthlang.runtime.pool import LocalPool

    class Stuck(LocalPool):
        def run(self, block_id, work):
            return [[Candidate(Attempt(block_id, ci, a), ok=False, why=PENDING) for a in attempts]
                    for ci, attempts in work]

    spec = tmp_path / "s.synth"
    spec.write_text('schema T { b: str(1..10) }\ngenerate T { count 2 }\n')
    plan = compile(spec).plan
    options = RunOptions(out_dir=tmp_path / "out", engine_factory=lambda m: FakeEngine())
    start = time.perf_counter()
    with pytest.raises(CellFailed, match=r"block T: cell \(the whole block\): a wave of attempts 0\.\. came back"):
        run_plan(plan, options, pool=Stuck(plan, options))
    assert time.perf_counter() - start < 10


def test_output_nested_past_any_schema_is_an_invalid_output_not_a_crash(tmp_path):
    """A server that ignores the schema can answer 200,000 arrays deep; the attempt is rejected."""
    class Deep(FakeEngine):
        def generate(self, requests):
            out = super().generate(requests)
            return [GenerationResult("[" * 200_000 + "]" * 200_000, tokens=1) if r.seed % 3 == 0 else o
                    for r, o in zip(requests, out)]

    spec = tmp_path / "s.synth"
    spec.write_text('schema T { b: str(1..10) }\ngenerate T { count 6 }\n')
    report = run_plan(compile(spec).plan, RunOptions(out_dir=tmp_path / "out", engine_factory=lambda m: Deep(),
                                                     probe=False))
    block = report.manifest["blocks"]["T"]
    assert block["accepted"] == 6 and block["rejections"].get("invalid_output", 0) >= 1, block


def test_with_batch_files_the_live_models_of_the_run_are_still_probed(tmp_path, monkeypatch):
    from synthlang.runtime import attempts
    from synthlang.runtime.batch_engine import BatchEngine

    spec = tmp_path / "two.synth"
    spec.write_text('model live {\n  engine llamacpp\n}\nmodel batched {\n  engine vllm\n}\n'
                    'schema A {\n  text: str(5..40)\n}\nschema B {\n  text: str(5..40)\n}\n'
                    'generate A {\n  count 2\n  using live\n}\ngenerate B {\n  count 2\n  using batched\n}\n'
                    'output "out" {\n  format jsonl\n}\n')
    probed = []
    monkeypatch.setattr(attempts, "run_probe", lambda engine, *a: probed.append(engine))
    with pytest.raises(EngineDead, match="still out"):  # the offline batch is never run here
        run(spec, tmp_path / "out", batch_files="offline", batch_wait=0.0, batch_poll=0.01)
    assert len(probed) == 1 and isinstance(probed[0], FakeEngine)  # the live model's engine, not the batch's
    assert not any(isinstance(e, BatchEngine) for e in probed)
