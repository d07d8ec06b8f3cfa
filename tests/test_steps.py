"""Records written in steps, on the fake engine: the order of the requests, conditions, checks
that reject before later steps are paid for, templates that see earlier steps, resume."""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from synthlang.compiler import compile
from synthlang.engines.base import EngineDead
from synthlang.engines.fake import FakeEngine
from synthlang.runtime.driver import run_plan
from synthlang.runtime.options import RunOptions

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests" / "runtime_specs" / "chain.synth"


class Recording(FakeEngine):
    """Keeps every request it is sent, per engine call."""

    def __init__(self, log: list, die_after: int | None = None):
        super().__init__()
        self.log, self.die_after = log, die_after

    def generate(self, requests):
        if self.die_after is not None and sum(len(c) for c in self.log) + len(requests) > self.die_after:
            raise EngineDead("simulated crash")
        self.log.append(list(requests))
        return super().generate(requests)


def run(out: Path, log: list, spec: Path = SPEC, **kw):
    plan = compile(spec).plan
    assert plan is not None
    kw.setdefault("engine_factory", lambda m: Recording(log))
    return run_plan(plan, RunOptions(out_dir=out, progress=False, probe=False, cache_dir=None, **kw))


def fields_of(request) -> tuple[str, ...]:
    return tuple(request.json_schema["properties"])


def records(out: Path) -> list[dict]:
    """The train split's rows, `_meta` decoded where a fine-tuning format writes it as text."""
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    return [{**r, "_meta": json.loads(r["_meta"]) if isinstance(r["_meta"], str) else r["_meta"]} for r in rows]


def test_each_step_is_its_own_request_sent_for_the_whole_wave_in_order(tmp_path):
    log: list = []
    result = run(tmp_path / "out", log)
    calls = [{fields_of(r) for r in call} for call in log]
    assert all(len(c) == 1 for c in calls)       # one step per engine call: a wave's requests together
    order = [next(iter(c)) for c in calls]
    steps = [("question", "difficulty"), ("answer",), ("followup",)]
    assert order[0] == steps[0] and set(order) == set(steps)
    for a, b in itertools.pairwise(order):          # within a wave, steps go forward; a new wave starts over
        assert steps.index(b) == steps.index(a) + 1 or b == steps[0]
    assert len(log[0]) > 1
    rows = records(tmp_path / "out")
    assert len(rows) == 24 and result.manifest["blocks"]["Exchange"]["accepted"] == 24


def test_a_when_step_runs_only_when_its_condition_holds_and_writes_null_otherwise(tmp_path):
    log: list = []
    run(tmp_path / "out", log)
    rows = records(tmp_path / "out")
    hard = [r for r in rows if r["difficulty"] == "hard"]
    easy = [r for r in rows if r["difficulty"] == "easy"]
    assert hard and easy
    assert all(r["followup"] is not None and len(r["followup"]) >= 10 for r in hard)
    assert all(r["followup"] is None for r in easy)
    assert all(r["_meta"]["steps"][2] == {"fields": ["followup"], "model": None} for r in easy)
    assert all(r["_meta"]["steps"][2] == {"fields": ["followup"], "model": "embedded"} for r in hard)
    assert all(r["_meta"]["steps"][0]["model"] == "asker" for r in rows)
    followups = [r for call in log for r in call if fields_of(r) == ("followup",)]
    answers = [r for call in log for r in call if fields_of(r) == ("answer",)]
    # each follow-up request quotes an answer whose question was hard
    assert 0 < len(followups) < len(answers)


def test_later_steps_see_earlier_fields_in_their_templates(tmp_path):
    log: list = []
    run(tmp_path / "out", log)
    rows = records(tmp_path / "out")
    prompts = [r.messages[-1]["content"] for call in log for r in call if fields_of(r) == ("answer",)]
    for row in rows:
        assert any(f"Question: {row['question']}" in p for p in prompts)
    for row in rows:
        if row["followup"] is not None:
            assert any(row["answer"] in r.messages[-1]["content"] for call in log for r in call
                       if fields_of(r) == ("followup",))


def test_a_check_on_the_first_steps_fields_rejects_before_the_second_step_is_sent(tmp_path):
    log: list = []
    result = run(tmp_path / "out", log)
    questions = [r for call in log for r in call if fields_of(r) == ("question", "difficulty")]
    answers = [r for call in log for r in call if fields_of(r) == ("answer",)]
    short = [r for r in questions
             if len(json.loads(FakeEngine().generate([r])[0].text)["question"]) < 40]
    assert short                                  # the fake engine writes some short questions
    assert len(answers) == len(questions) - len(short)
    rejected = result.manifest["blocks"]["Exchange"]["rejections"]
    assert rejected.get("check: (len(question) >= 40)", 0) == len(short)
    by_step = result.manifest["blocks"]["Exchange"]["rejections_by_step"]
    assert by_step["1 (question, difficulty)"] == len(short) and by_step["3 (followup)"] == 0
    assert all(len(r["question"]) >= 40 for r in records(tmp_path / "out"))


class Markup(Recording):
    """Writes HTML into every third question (junk to the plausibility filter)."""

    def generate(self, requests):
        out = super().generate(requests)
        for r, result in zip(requests, out):
            if fields_of(r) == ("question", "difficulty") and r.seed % 3 == 0:
                value = json.loads(result.text)
                value["question"] = "How do I <u>reset</u> the billing settings for our whole team account?"
                result.text = json.dumps(value)
        return out


def test_a_step_that_fails_plausibility_rejects_before_the_next_step_is_sent(tmp_path):
    log: list = []
    result = run(tmp_path / "out", log, engine_factory=lambda m: Markup(log))
    questions = [r for call in log for r in call if fields_of(r) == ("question", "difficulty")]
    answers = [r for call in log for r in call if fields_of(r) == ("answer",)]
    junk = [r for r in questions if r.seed % 3 == 0]
    long_enough = [r for r in questions if r.seed % 3 != 0
                   and len(json.loads(FakeEngine().generate([r])[0].text)["question"]) >= 40]
    assert junk and len(answers) == len(long_enough)       # no answer was asked for a junk question
    block = result.manifest["blocks"]["Exchange"]
    assert block["rejections"]["junk: question"] == len(junk)
    assert block["rejections_by_step"]["1 (question, difficulty)"] == len(junk) + len(questions) - len(junk) \
        - len(long_enough)
    assert not any("<u>" in r["question"] for r in records(tmp_path / "out"))


def test_a_run_killed_mid_record_resumes_to_the_same_records(tmp_path):
    log: list = []
    run(tmp_path / "ref", log)
    killed: list = []
    with pytest.raises(EngineDead):
        run(tmp_path / "out", killed, engine_factory=lambda m: Recording(killed, die_after=30))
    run(tmp_path / "out", [], engine_factory=lambda m: Recording([]))
    assert (tmp_path / "out" / "train.jsonl").read_text() == (tmp_path / "ref" / "train.jsonl").read_text()


def test_the_plan_carries_each_steps_schema_template_model_and_condition():
    plan = compile(SPEC).plan
    block = plan.blocks[0]
    assert [s.fields for s in block.steps] == [("question", "difficulty"), ("answer",), ("followup",)]
    assert [s.model for s in block.steps] == ["asker", "answerer", "embedded"]
    assert block.steps[2].when is not None and block.steps[0].when is None
    assert block.steps[2].json_schema["properties"]["followup"] == {"type": "string", "minLength": 10,
                                                                    "maxLength": 120}
    assert "{{ question }}" in block.steps[1].template
    assert set(plan.models) >= {"asker", "answerer", "embedded"}


DIALOGUE = ROOT / "specs" / "support_dialogue" / "dialogue.synth"
PREFERENCES = ROOT / "specs" / "dpo_preferences" / "preferences.synth"


def test_each_dialogue_turn_sees_the_conversation_as_chat_history(tmp_path):
    log: list = []
    run(tmp_path / "out", log, spec=DIALOGUE)
    turns = [r for call in log for r in call]
    assert turns and all(fields_of(r) == ("content",) for r in turns)
    histories = [r.messages[1:] for r in turns]
    for row in records(tmp_path / "out"):
        messages = row["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2)
        for i in range(1, len(messages)):   # the request that wrote message i had 0..i-1 as its history:
            side = messages[i]["role"]      # its own side's as `assistant`, the other side's as `user`
            expected = tuple({"role": "assistant" if m["role"] == side else "user", "content": m["content"]}
                             for m in messages[:i])
            assert expected in histories
    for r in turns:   # a system message with the side's template, then the history
        assert r.messages[0]["role"] == "system"
        assert ("support about" in r.messages[0]["content"]) == (len(r.messages) % 2 == 1)


class Parrot(Recording):
    """An agent that repeats the customer's last message back in every other conversation."""

    def generate(self, requests):
        out = super().generate(requests)
        for r, result in zip(requests, out):
            if len(r.messages) > 1 and r.seed % 2 == 0:
                result.text = json.dumps({"content": r.messages[-1]["content"]})
        return out


def test_a_dialogue_turn_that_repeats_the_other_side_is_rejected_before_the_next_turn(tmp_path):
    log: list = []
    result = run(tmp_path / "out", log, spec=DIALOGUE, engine_factory=lambda m: Parrot(log))
    turns = [r for call in log for r in call]
    parroted = [r.messages[-1]["content"] for r in turns if len(r.messages) > 1 and r.seed % 2 == 0]
    echoes = [p for p in parroted if len(p.split()) >= 8]     # eight words in a row make an echo
    assert echoes and len(echoes) < len(parroted)
    # no conversation went on after an echo: no history holds it twice
    assert not any(a["content"] == b["content"] and a["content"] in echoes
                   for r in turns for a, b in zip(r.messages[1:], r.messages[2:]))
    block = result.manifest["blocks"]["SupportChat"]
    assert 0 < block["rejections"]["echo: turns.content"] <= len(echoes)
    assert block["rejections_by_step"]["1 (turns)"] >= block["rejections"]["echo: turns.content"]
    for row in records(tmp_path / "out"):
        contents = [m["content"] for m in row["messages"]]
        assert len(set(contents)) == len(contents)


class Judging(Recording):
    """Scores each candidate by a rule of its text (the judge's requests carry the JUDGE_SCHEMA)."""

    def __init__(self, log: list, score):
        super().__init__(log)
        self.score = score

    def generate(self, requests):
        from synthlang.engines.base import GenerationResult
        from synthlang.plan.model import JUDGE_SCHEMA

        self.log.append(list(requests))
        out = []
        for r in requests:
            if r.json_schema == JUDGE_SCHEMA:
                shown = r.messages[-1]["content"]
                out.append(GenerationResult(json.dumps({"score": self.score(shown)}), tokens=3))
            else:
                out += FakeEngine.generate(self, [r])
        return out


def test_candidates_keep_the_judges_best_and_worst(tmp_path):
    log: list = []
    score = lambda shown: 1 + len(shown) % 5      # noqa: E731 - a rule of the shown record
    run(tmp_path / "out", log, spec=PREFERENCES, engine_factory=lambda m: Judging(log, score))
    judged = [r for call in log for r in call if "score" in r.json_schema.get("properties", {})]
    for row in records(tmp_path / "out"):
        ranked = row["_meta"]["candidates"]
        assert len(ranked["scores"]) == 4
        assert ranked["scores"][ranked["chosen"]] == max(ranked["scores"])
        assert ranked["scores"][ranked["rejected"]] == min(ranked["scores"]) < max(ranked["scores"])
        # the judge saw the chosen answer, and gave it the highest score
        shown = [r.messages[-1]["content"] for r in judged if json.dumps(row["chosen"]) in r.messages[-1]["content"]]
        assert shown and max(score(s) for s in shown) == max(ranked["scores"])


class Unsure(Recording):
    """A judge that always writes 3, less or more sure of it by a rule of the shown record, and
    reports the score token's probabilities as llama.cpp, vLLM and OpenAI's API do."""

    def __init__(self, log: list):
        super().__init__(log)

    def generate(self, requests):
        from synthlang.engines.base import GenerationResult
        from synthlang.plan.model import JUDGE_SCHEMA

        self.log.append(list(requests))
        out = []
        for r in requests:
            if r.json_schema != JUDGE_SCHEMA:
                out += FakeEngine.generate(self, [r])
                continue
            p4 = unsure_p4(r.messages[-1]["content"])
            digit = {"3": math.log(0.6), "4": math.log(p4), "2": math.log(0.4 - p4), " ": math.log(1e-3)}
            pieces = [('{"', {}), ("score", {}), ('":', {}), ("3", digit), ("}", {})]
            out.append(GenerationResult('{"score":3}', tokens=5, logprobs=pieces if r.logprobs else None))
        return out


def unsure_p4(shown: str) -> float:
    return 0.05 + (len(shown) % 7) / 25


def test_candidates_the_judge_writes_alike_are_ranked_by_its_expected_score(tmp_path):
    log: list = []
    run(tmp_path / "out", log, spec=PREFERENCES, engine_factory=lambda m: Unsure(log))
    judged = [r for call in log for r in call if "score" in r.json_schema.get("properties", {})]
    assert judged and all(r.logprobs == 5 for r in judged)
    rows = records(tmp_path / "out")
    assert rows
    for row in rows:
        ranked = row["_meta"]["candidates"]
        shown = {json.loads(_answer(r)): r.messages[-1]["content"] for r in judged
                 if row["prompt"] in r.messages[-1]["content"]}
        # 3 x 0.6 + 4 x p4 + 2 x (0.4 - p4), over the mass on the five scores
        expected = {v: round(1.8 + 4 * unsure_p4(s) + 2 * (0.4 - unsure_p4(s)), 3) for v, s in shown.items()}
        assert sorted(ranked["scores"]) == sorted(expected[v] for v in shown)
        assert expected[row["chosen"]] == max(ranked["scores"]) > min(ranked["scores"]) == expected[row["rejected"]]


class Garbled(Unsure):
    """Candidate 1 of every record is markup (junk); in records whose prompt is odd in length,
    candidate 2 as well, and candidate 3 repeats itself. A record's four candidates are asked
    for one after another in one call."""

    def generate(self, requests):
        out = super().generate(requests)
        asked = [(r, result) for r, result in zip(requests, out) if set(r.json_schema["properties"]) == {"chosen"}]
        for n, (r, result) in enumerate(asked):
            i = n % 4
            odd = len(r.messages[-1]["content"]) % 2
            if i == 1 or (odd and i == 2):
                result.text = json.dumps({"chosen": "Open <b>Settings</b> and reset the password there."})
            elif odd and i == 3:
                result.text = json.dumps({"chosen": "reset it now. " * 6})
        return out


def test_candidates_that_fail_plausibility_are_not_judged(tmp_path):
    log: list = []
    result = run(tmp_path / "out", log, spec=PREFERENCES, engine_factory=lambda m: Garbled(log))
    judged = [r for call in log for r in call if "score" in r.json_schema.get("properties", {})]
    assert judged and not any("<b>" in r.messages[-1]["content"] for r in judged)
    rows = records(tmp_path / "out")
    assert rows
    for row in rows:
        scores = row["_meta"]["candidates"]["scores"]
        assert scores[1] is None and sum(s is None for s in scores) == 1   # odd records had too few left
        assert "<b>" not in row["chosen"] + row["rejected"]
    block = result.manifest["blocks"]["Preference"]
    # two of four candidates junk and one repeating itself: too few left to make a pair
    assert block["rejections"]["junk: chosen"] > 0
    assert block["rejections_by_step"]["2 (chosen, rejected)"] >= block["rejections"]["junk: chosen"]


def test_a_graded_score_reads_the_probabilities_at_the_score_token():
    from synthlang.engines.base import GenerationResult, merge_pieces
    from synthlang.runtime.scores import graded_score, judge_score

    # a token with its leading space, two tokens reading the same, and a digit before the score's
    pieces = [('{"', {"1": -1.0}), ("score", {}), ('":', {}),
              (" 4", merge_pieces([(" 4", math.log(0.5)), ("4", math.log(0.2)), (" 2", math.log(0.3)),
                                   (" x", math.log(0.9)), (" 5", -math.inf)])), ("}", {})]
    assert " 5" not in pieces[3][1]                     # ruled out by the constraint
    result = GenerationResult('{"score": 4}', logprobs=pieces)
    assert judge_score(result) == 4
    assert graded_score(result) == round(4 * 0.7 + 2 * 0.3, 3) == 3.4
    assert graded_score(GenerationResult('{"score": 4}')) == 4.0                       # no probabilities
    assert graded_score(GenerationResult('{"score": 4}', logprobs=[('{"score": 4}', {"x": 0.0})])) == 4.0
    assert graded_score(GenerationResult('{"score": 9}')) is None
    assert graded_score(GenerationResult('{"score": true}')) is None
    assert graded_score(GenerationResult("nonsense")) is None


def _answer(judge_request) -> str:
    """The candidate a judge request shows (the record's `chosen` field)."""
    record = judge_request.messages[-1]["content"].split("Record:\n", 1)[1].rsplit("\n\nReply", 1)[0]
    return json.dumps(json.loads(record)["chosen"])


def test_candidates_that_tie_are_rejected_as_no_preference(tmp_path):
    from synthlang.runtime.driver import CellFailed

    log: list = []
    with pytest.raises(CellFailed):
        run(tmp_path / "out", log, spec=PREFERENCES, engine_factory=lambda m: Judging(log, lambda shown: 3),
            max_attempts=6)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    block = manifest["blocks"]["Preference"]
    assert block["accepted"] == 0 and block["rejections"] == {"no_preference": block["attempts"]}
    assert block["rejections_by_step"]["2 (chosen, rejected)"] == block["attempts"]


def test_noise_dedup_and_quotas_work_on_a_block_written_in_steps(tmp_path):
    spec = tmp_path / "chain.synth"
    text = SPEC.read_text().replace("  check len(question) >= 40\n", "  check len(question) >= 40\n"
                                    "  quota topic { billing: 50%, privacy: 25%, \"api limits\": 25% }\n"
                                    "  noise answer { typo 50% }\n  dedup question exact\n")
    spec.write_text(text)
    run(tmp_path / "out", [], spec=spec)
    rows = records(tmp_path / "out")
    assert Counter(r["topic"] for r in rows) == Counter({"billing": 12, "privacy": 6, "api limits": 6})
    assert len({r["question"] for r in rows}) == len(rows)
    noised = [r for r in rows if r["_meta"]["noise"]]
    assert noised and all(n["field"] == "answer" and n["rule"] == "typo" for r in noised for n in r["_meta"]["noise"])


def test_sigkill_mid_record_then_resume_equals_uninterrupted(tmp_path):
    """Killed between the steps of records (each step is its own engine call, each slowed down),
    the run resumes from its journal at the record level to exactly the uninterrupted records."""
    spec = tmp_path / "chain.synth"
    shutil.copy(SPEC, spec)
    env = {**os.environ, "SYNTHLANG_FAKE_DELAY": "0.05"}

    def synthc_run(out: Path) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "synthlang.cli", "run", str(spec), "--out", str(out),
                                 "--fake-engine", "--batch", "3", "--progress", "log"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    ref = synthc_run(tmp_path / "ref")
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    rng = random.Random(5)
    kills = 0
    for _ in range(4):
        proc = synthc_run(tmp_path / "out")
        time.sleep(rng.uniform(0.8, 1.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= 2
    final = synthc_run(tmp_path / "out")
    assert final.wait(timeout=300) == 0, final.stderr.read()
    for split in ("train.jsonl",):
        assert (tmp_path / "out" / split).read_text() == (tmp_path / "ref" / split).read_text()
    journal = [json.loads(line) for line in (tmp_path / "out/.synth/journal.jsonl").read_text().splitlines()]
    accepted = [(e["c"], e["a"]) for e in journal if e.get("ok")]
    assert len(accepted) == len(set(accepted)) == 24


def test_preference_splits_load_with_datasets_whatever_provenance_their_records_carry(tmp_path):
    """A key of `_meta` that only a test record has (a value cut back) must not fail the load:
    `datasets` types every split by the first."""
    import datasets

    from synthlang.runtime.sinks import split_of_each, write_block

    plan = compile(PREFERENCES).plan
    assert plan is not None
    ids = [f"Preference-{i}" for i in range(8)]
    where = split_of_each(plan.dataset.seed, "Preference", ids, [6, 2])   # train 75%, test 25%
    rows = []
    for i, ident in enumerate(ids):
        meta = {"id": ident, "source": "synthetic", "attempt": i, "candidates": {"scores": [1.5, 3.25]}}
        if where[i] == 1:
            meta["trimmed"] = ["prompt"]
        rows.append({"topic": "billing", "prompt": f"question {i}?", "chosen": f"good {i}.", "rejected": f"bad {i}.",
                     "_meta": meta})
    written = write_block(plan, "Preference", lambda: iter(rows), tmp_path)
    assert {s: w["rows"] for s, w in written.items()} == {"train": 6, "test": 2}
    loaded = datasets.load_dataset("json", data_files={s: str(tmp_path / w["path"]) for s, w in written.items()})
    test = loaded["test"]
    assert {"prompt", "chosen", "rejected", "topic", "_meta"} <= set(test.column_names)
    assert all(json.loads(m)["trimmed"] == ["prompt"] for m in test["_meta"])
    assert sorted(json.loads(m)["attempt"] for s in ("train", "test") for m in loaded[s]["_meta"]) == list(range(8))


def test_parquet_keeps_each_steps_model_and_the_candidates_scores(tmp_path):
    import pyarrow.parquet as pq

    spec = tmp_path / "preferences.synth"
    spec.write_text(PREFERENCES.read_text().replace("format preference from prompt, chosen, rejected", "format parquet")
                    .replace("count 12", "count 3"))
    log: list = []
    run(tmp_path / "out", log, spec=spec, engine_factory=lambda m: Unsure(log))
    metas = [r["_meta"] for s in ("train", "test") for r in pq.read_table(tmp_path / "out" / f"{s}.parquet").to_pylist()]
    assert len(metas) == 3
    for meta in metas:
        assert [s["fields"] for s in meta["steps"]] == [["prompt"], ["chosen", "rejected"]]
        scores = meta["candidates"]["scores"]
        assert len(scores) == 4 and scores[meta["candidates"]["chosen"]] == max(scores)


def test_examples_mix_and_evaluate_work_on_a_block_written_in_steps(tmp_path):
    """Seed examples reach a step's template, real rows are mixed into train, and `evaluate`
    trains on the multi-step block's records."""
    from synthlang.evaluate.run_eval import run_eval

    topics = ["billing", "privacy", "api limits"]
    seeds = [{"topic": t, "question": f"Real question {i} about {t}, asked by a customer?", "difficulty": "easy",
              "answer": f"A real answer number {i} about {t} that is longer than its question was.",
              "followup": None} for i, t in enumerate(topics * 4)]
    (tmp_path / "seeds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in seeds))
    (tmp_path / "held_out.jsonl").write_text("".join(json.dumps({"question": r["question"], "topic": r["topic"]})
                                                     + "\n" for r in seeds))
    text = SPEC.read_text()
    text = text.replace("generate Exchange {", 'seeds real from "seeds.jsonl" as Exchange\n\ngenerate Exchange {')
    text = text.replace("  count 24\n", "  count 24\n  quota topic { billing: 50%, privacy: 25%, \"api limits\": 25% }\n"
                                        "  examples 2 from real matching topic\n")
    text = text.replace("say how hard it is.", "say how hard it is.\n"
                        "    {% for ex in examples %}Like: {{ ex.question }}\n    {% endfor %}")
    text += ('\noutput "out" {\n  format jsonl\n  split train 100%\n  mix real 20%\n}\n'
             '\nevaluate topic {\n  text question\n  test "held_out.jsonl"\n  compare real, synthetic, blend\n}\n')
    spec = tmp_path / "chain.synth"
    spec.write_text(text)
    log: list = []
    run(tmp_path / "out", log, spec=spec)
    firsts = [r for call in log for r in call if fields_of(r) == ("question", "difficulty")]
    assert len(firsts) >= 24
    for r in firsts:   # each first step shows two real questions of its own topic
        shown = re.findall(r"Like: Real question \d+ about ([a-z ]+),", r.messages[-1]["content"])
        asked = re.search(r"about ([a-z ]+);", r.messages[-1]["content"])
        assert asked and shown and len(shown) == 2 and set(shown) == {asked.group(1)}
    rows = records(tmp_path / "out")
    assert Counter(r["_meta"]["source"] for r in rows) == Counter({"synthetic": 24, "real": 6})
    plan = compile(spec).plan
    assert plan is not None
    result = run_eval(plan, tmp_path, tmp_path / "out")
    (ev,) = result["evaluations"]
    assert {name: s["n_train"] for name, s in ev["sets"].items()} == {"real": 12, "synthetic": 24, "blend": 36}
    assert ev["n_test"] == 12
