"""The multi-step example specs on the real embedded model (llama.cpp), with their counts cut
down: every step's output valid against that step's schema, quotas exact, and the chat and
preference files loaded by the `datasets` package in the columns TRL's SFT and DPO trainers
read."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import datasets
import jsonschema
import pytest

from synthlang import ir
from synthlang.compiler import compile
from synthlang.engines.base import EngineOptions
from synthlang.plan.model import Plan
from synthlang.runtime.driver import run_plan
from synthlang.runtime.options import RunOptions

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[1]


class Shared:
    """One loaded model for the whole module, counting what it is sent; runs must not close it."""

    def __init__(self, engine):
        self.engine, self.name = engine, engine.name
        self.capabilities, self.in_flight = engine.capabilities, engine.in_flight
        self.requests: list = []

    def generate(self, requests):
        self.requests += requests
        return self.engine.generate(requests)

    def close(self):
        return None


@pytest.fixture(scope="module")
def engine():
    from synthlang.engines.llamacpp import LlamaCppEngine

    eng = LlamaCppEngine(ir.Model(name="embedded"), EngineOptions())
    yield Shared(eng)
    eng.close()


def run_example(tmp_path: Path, rel: str, engine: Shared, count: int) -> tuple[Plan, list[dict], Path]:
    src = ROOT / rel
    folder = tmp_path / src.parent.name
    shutil.copytree(src.parent, folder)
    spec = folder / src.name
    spec.write_text(re.sub(r"count \d+", f"count {count}", spec.read_text(), count=1))
    plan = compile(spec).plan
    assert plan is not None
    out = tmp_path / "out"
    run_plan(plan, RunOptions(out_dir=out, engine_factory=lambda m: engine, progress=False))
    rows = [json.loads(line) for s in plan.output.splits for line in (out / f"{s.name}.jsonl").read_text().splitlines()]
    if plan.output.format in ("chat", "preference"):   # provenance as JSON text, one column type
        assert all(isinstance(r["_meta"], str) for r in rows)
        rows = [{**r, "_meta": json.loads(r["_meta"])} for r in rows]
    return plan, rows, out


def load(out: Path, plan: Plan) -> datasets.DatasetDict:
    files = {s.name: str(out / f"{s.name}.jsonl") for s in plan.output.splits}
    return datasets.load_dataset("json", data_files=files)


def test_a_chain_writes_each_step_under_its_schema(tmp_path, engine):
    plan, rows, _ = run_example(tmp_path, "specs/qa_chain/qa.synth", engine, count=4)
    block = plan.blocks[0]
    assert len(rows) == 4
    assert Counter(r["difficulty"] for r in rows) == Counter({c.key["difficulty"]: c.count for c in block.cells})
    for row in rows:
        for step in block.steps:
            written = {f: row[f] for f in step.fields}
            if step.when is not None and row["difficulty"] == "easy":
                assert all(v is None for v in written.values())
                continue
            jsonschema.validate(written, step.json_schema)
        assert len(row["answer"]) > len(row["question"])
    # the answer step was asked with its question in the prompt
    answers = [r for r in engine.requests if set(r.json_schema["properties"]) == {"answer"}]
    assert all(any(f"Question: {row['question']}" in r.messages[-1]["content"] for r in answers) for row in rows)


def test_a_dialogue_is_written_turn_by_turn_and_loads_as_chat(tmp_path, engine):
    plan, rows, out = run_example(tmp_path, "specs/support_dialogue/dialogue.synth", engine, count=4)
    block = plan.blocks[0]
    (dialogue,) = block.steps
    assert len(rows) == 4
    assert Counter(r["intent"] for r in rows) == Counter({c.key["intent"]: c.count for c in block.cells})
    lo, hi = dialogue.rounds
    roles = [t.role for t in dialogue.turns]
    for row in rows:
        messages = row["messages"]
        assert lo * len(roles) <= len(messages) <= hi * len(roles) and len(messages) % len(roles) == 0
        assert [m["role"] for m in messages] == roles * (len(messages) // len(roles))
        for m in messages:
            jsonschema.validate({"content": m["content"]}, dialogue.json_schema)
    chats = load(out, plan)
    train = chats["train"]
    assert "messages" in train.column_names and train.num_rows + chats["test"].num_rows == len(rows)
    first = train[0]["messages"]
    assert isinstance(first, list) and set(first[0]) == {"role", "content"} and first[0]["role"] == "user"


def test_preference_pairs_are_ranked_by_the_judge_and_load_for_dpo(tmp_path, engine):
    plan, rows, out = run_example(tmp_path, "specs/dpo_preferences/preferences.synth", engine, count=4)
    block = plan.blocks[0]
    candidates = block.steps[1]
    assert len(rows) == 4
    for row in rows:
        jsonschema.validate({"chosen": row["chosen"]}, candidates.json_schema)
        jsonschema.validate({"chosen": row["rejected"]}, candidates.json_schema)
        ranked = row["_meta"]["candidates"]
        assert len(ranked["scores"]) == candidates.candidates
        judged = [s for s in ranked["scores"] if s is not None]   # null: failed plausibility, not judged
        assert len(judged) >= 2
        assert ranked["scores"][ranked["chosen"]] == max(judged) > min(judged) == ranked["scores"][ranked["rejected"]]
    pairs = load(out, plan)
    train = pairs["train"]
    assert {"prompt", "chosen", "rejected"} <= set(train.column_names)
    assert all(isinstance(train[0][c], str) and train[0][c] for c in ("prompt", "chosen", "rejected"))
