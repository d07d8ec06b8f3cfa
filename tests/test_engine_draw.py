"""The draw example (tests/contract/draw.synth) on the real embedded model (SmolLM2-135M on
llama.cpp), run small: every record's persona is a row of the personas file and its topic a row
of the topics file with the record's intent, read here from the files themselves. Marked
`engine`; CI runs it."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from synthlang import ir
from synthlang.compiler import compile
from synthlang.engines.base import EngineOptions
from synthlang.runtime.driver import run_plan
from synthlang.runtime.options import RunOptions

pytestmark = pytest.mark.engine
CONTRACT = Path(__file__).resolve().parent / "contract"


def test_real_model_records_carry_rows_drawn_from_the_files(tmp_path):
    from synthlang.engines.llamacpp import LlamaCppEngine

    folder = tmp_path / "spec"
    shutil.copytree(CONTRACT / "data", folder / "data")
    spec = folder / "draw.synth"
    spec.write_text((CONTRACT / "draw.synth").read_text().replace("count 30", "count 3")
                    .replace("billing: 40%, outage: 30%, login: 30%", "billing: 1, outage: 1, login: 1")
                    .replace('  prompt "', '  allow echo, junk, truncated, repetition, hollow\n  prompt "'))
    plan = compile(spec).plan
    assert plan is not None
    engine = LlamaCppEngine(ir.Model(name="embedded"), EngineOptions())
    try:
        run_plan(plan, RunOptions(out_dir=tmp_path / "out", spec_dir=folder, engine_factory=lambda m: engine,
                                  progress=False))
    finally:
        engine.close()
    rows = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    personas = [json.loads(line) for line in (folder / "data" / "personas.jsonl").read_text().splitlines()]
    with open(folder / "data" / "topics.csv", newline="") as fh:
        topics = {(r["intent"], r["name"]) for r in csv.DictReader(fh)}
    assert sorted(r["intent"] for r in rows) == ["billing", "login", "outage"]
    for r in rows:
        assert r["persona"] in personas
        assert (r["intent"], r["topic"]) in topics
        assert 40 <= len(r["body"]) <= 600
