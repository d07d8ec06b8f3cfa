"""Incremental runs on the fake engine: an edit regenerates only the records it changes.

Every run counts the requests its engine was sent (independently of the manifest, which must
agree) and compares the output files of what the edit did not touch byte for byte."""

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from synthlang.compiler import compile
from synthlang.engines.base import EngineDead
from synthlang.engines.fake import FakeEngine, FakeFactory
from synthlang.runtime.driver import run_plan
from synthlang.runtime.options import RunOptions

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests/runtime_specs/two_blocks.synth"
DATA = ("Ticket.train.jsonl", "Ticket.test.jsonl", "Review.train.jsonl", "Review.test.jsonl")


class Counting(FakeFactory):
    """The fake engine, counting the requests it is sent; `die_after` kills it mid-run. Unlike
    the plain fake engine its values depend on the prompt too, as a model's do."""

    def __init__(self, die_after: int | None = None):
        super().__init__()
        self.sent = 0
        self.die_after = die_after

    def __call__(self, model):
        factory = self

        class Engine(FakeEngine):
            def generate(self, requests):
                if factory.die_after is not None and factory.sent + len(requests) > factory.die_after:
                    raise EngineDead("simulated crash")
                factory.sent += len(requests)
                return super().generate([replace(r, seed=r.seed ^ _digest(r.messages)) for r in requests])

        return Engine()


def _digest(messages) -> int:
    return int.from_bytes(hashlib.sha256(json.dumps(messages).encode()).digest()[:7], "big")


def run(spec: Path, out: Path, engine: Counting | None = None, **kw):
    engine = engine or Counting()
    plan = compile(spec).plan
    assert plan is not None
    report = run_plan(plan, RunOptions(out_dir=out, engine_factory=engine, progress=False, probe=False,
                                       cache_dir=out / ".synth" / "cache", **kw))
    blocks = report.manifest["blocks"]
    # the manifest counts what the engine was sent
    assert sum(b["requests_sent"] for b in blocks.values()) == engine.sent
    return engine.sent, blocks


def edited(tmp_path: Path, old: str, new: str, spec: Path | None = None) -> Path:
    spec = spec or tmp_path / "spec.synth"
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new))
    return spec


def data(out: Path, names=DATA) -> dict[str, bytes]:
    return {n: (out / n).read_bytes() for n in names}


def lines(out: Path, block: str) -> set[str]:
    return {line for split in ("train", "test") for line in (out / f"{block}.{split}.jsonl").read_text().splitlines()}


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "spec.synth"
    shutil.copy(SPEC, path)
    return path


@pytest.fixture
def first(spec, tmp_path):
    """The spec run once: (requests sent, manifest blocks, data files)."""
    sent, blocks = run(spec, tmp_path / "out")
    assert sent > 0 and all(b["requests_reused"] == 0 for b in blocks.values())
    return sent, blocks, data(tmp_path / "out")


def test_an_unchanged_rerun_sends_nothing_and_writes_the_same_bytes(spec, tmp_path, first):
    out = tmp_path / "out"
    sent, _ = run(spec, out)                      # the journal says everything is done
    assert sent == 0 and data(out) == first[2]
    (out / ".synth/journal.jsonl").unlink()       # no journal: everything comes from the cache
    sent, blocks = run(spec, out)
    assert sent == 0 and data(out) == first[2]
    assert sum(b["requests_reused"] for b in blocks.values()) > 0


def test_a_description_edit_and_reordered_declarations_send_nothing(spec, tmp_path, first):
    edited(tmp_path, 'description "Tickets and reviews."', 'description "Support tickets and product reviews."')
    text = spec.read_text()
    ticket = text[text.index("generate Ticket {"):text.index("generate Review {")]
    review = text[text.index("generate Review {"):text.index('output "out"')]
    spec.write_text(text.replace(ticket + review, review + ticket))   # the blocks' order swapped
    sent, blocks = run(spec, tmp_path / "out")
    assert sent == 0
    assert data(tmp_path / "out") == first[2]
    assert all(b["requests_reused"] > 0 for b in blocks.values())


def test_editing_one_blocks_prompt_regenerates_that_block_only(spec, tmp_path, first):
    edited(tmp_path, "Write one {{ stars }}-rated review", "Write a short {{ stars }}-rated review")
    sent, blocks = run(spec, tmp_path / "out")
    assert blocks["Ticket"]["requests_sent"] == 0 and blocks["Ticket"]["requests_reused"] > 0
    # the records are new, and so are their judge requests
    assert blocks["Review"]["requests_sent"] > blocks["Review"]["attempts"]
    assert blocks["Review"]["requests_reused"] == 0
    after = data(tmp_path / "out")
    for name in ("Ticket.train.jsonl", "Ticket.test.jsonl"):
        assert after[name] == first[2][name]
    assert after["Review.train.jsonl"] != first[2]["Review.train.jsonl"]


def test_raising_count_generates_only_the_new_records(spec, tmp_path, first):
    before = lines(tmp_path / "out", "Ticket")
    attempts_before = first[1]["Ticket"]["attempts"]
    edited(tmp_path, "count 12", "count 24")
    sent, blocks = run(spec, tmp_path / "out")
    ticket = blocks["Ticket"]
    assert ticket["accepted"] == 24
    # every request of the first run is reused; only attempts past them are sent
    assert ticket["requests_reused"] == first[1]["Ticket"]["requests_sent"]
    assert 0 < ticket["requests_sent"] <= ticket["attempts"] - attempts_before + 2 * ticket["cells"][0]["count"]
    assert blocks["Review"]["requests_sent"] == 0
    assert before <= lines(tmp_path / "out", "Ticket")   # the old records are kept, byte for byte


def test_adding_a_quota_value_reuses_the_other_cells(spec, tmp_path):
    edited(tmp_path, "count 9", "count 6")
    edited(tmp_path, "enum Stars { low, mid, high }", "enum Stars { low, high }")
    edited(tmp_path, "quota stars { low: 3, mid: 3, high: 3 }", "quota stars { low: 3, high: 3 }")
    run(spec, tmp_path / "out")
    before = lines(tmp_path / "out", "Review")
    edited(tmp_path, "count 6", "count 9")
    edited(tmp_path, "enum Stars { low, high }", "enum Stars { low, mid, high }")
    edited(tmp_path, "quota stars { low: 3, high: 3 }", "quota stars { low: 3, mid: 3, high: 3 }")
    sent, blocks = run(spec, tmp_path / "out")
    review = blocks["Review"]
    # `high` moved from the second cell to the third: its records are still reused
    assert before <= lines(tmp_path / "out", "Review")
    assert review["requests_reused"] > 0 and blocks["Ticket"]["requests_sent"] == 0
    mid = next(c for c in review["cells"] if c["key"] == {"stars": "mid"})
    # requests sent: the new cell's records and their judge requests
    assert 0 < review["requests_sent"] <= 2 * mid["attempts"] + 2


def test_edits_after_decoding_send_nothing_but_a_top_up(spec, tmp_path, first):
    edited(tmp_path, "split train 70%, test 30%", "split train 50%, validation 20%, test 30%")
    edited(tmp_path, "  dedup body near 0.9\n", "  dedup body near 0.9\n  noise body { typo 30% }\n")
    sent, _ = run(spec, tmp_path / "out")
    assert sent == 0
    # a stricter check rejects some records: only the attempts that replace them are sent
    edited(tmp_path, "check len(body) > len(subject)", "check len(body) > len(subject) + 40")
    sent, blocks = run(spec, tmp_path / "out")
    ticket = blocks["Ticket"]
    assert ticket["accepted"] == 12 and ticket["rejections"]
    assert ticket["requests_reused"] == first[1]["Ticket"]["requests_sent"]
    assert sent == ticket["requests_sent"] and sent <= ticket["attempts"] - first[1]["Ticket"]["attempts"] + 8


def test_a_killed_run_resumes_across_an_edit(spec, tmp_path):
    clean = tmp_path / "clean.synth"
    shutil.copy(spec, clean)
    edited(tmp_path, 'description "Tickets and reviews."', 'description "Edited."', clean)
    edited(tmp_path, "Write one {{ stars }}-rated review", "Write a short {{ stars }}-rated review", clean)
    run(clean, tmp_path / "reference")
    dying = Counting(die_after=14)
    with pytest.raises(EngineDead):
        run(spec, tmp_path / "out", dying)
    assert dying.sent > 0
    shutil.copy(clean, spec)                      # the spec is edited before the rerun
    sent, blocks = run(spec, tmp_path / "out")
    assert blocks["Ticket"]["requests_reused"] > 0   # what the killed run made is not made again
    assert data(tmp_path / "out") == data(tmp_path / "reference")


def test_without_the_cache_every_request_is_sent(spec, tmp_path, first):
    engine = Counting()
    plan = compile(spec).plan
    assert plan is not None
    (tmp_path / "out/.synth/journal.jsonl").unlink()
    report = run_plan(plan, RunOptions(out_dir=tmp_path / "out", engine_factory=engine, progress=False,
                                       probe=False))
    assert engine.sent >= sum(b["attempts"] for b in report.manifest["blocks"].values())
    assert all(b["requests_reused"] == 0 for b in report.manifest["blocks"].values())
    assert data(tmp_path / "out") == first[2]
