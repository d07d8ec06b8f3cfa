"""Incremental runs on the fake engine: an edit regenerates only the records it changes.

Every run counts the requests its engine was sent (independently of the manifest, which must
agree) and compares the output files of what the edit did not touch byte for byte."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from synthlang.compiler import compile
from synthlang.engines.base import EngineDead
from synthlang.engines.fake import FakeEngine, FakeFactory
from synthlang.runtime.driver import run_plan
from synthlang.runtime.estimate import estimate
from synthlang.runtime.journal import Journal
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
    # the first run's results are reused (all but the judge's for records the stricter check now
    # rejects before judging)
    rejected_now = ticket["rejections"].get("check: (len(body) > (len(subject) + 40))", 0)
    assert first[1]["Ticket"]["requests_sent"] - rejected_now <= ticket["requests_reused"] \
        <= first[1]["Ticket"]["requests_sent"]
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
    # the first run's results are reused (all but the judge's for records the stricter check now
    # rejects before judging)
    rejected_now = ticket["rejections"].get("check: (len(body) > (len(subject) + 40))", 0)
    assert first[1]["Ticket"]["requests_sent"] - rejected_now <= ticket["requests_reused"] \
        <= first[1]["Ticket"]["requests_sent"]
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


# ---- synthc plan, preview and cache, as a user runs them ------------------------------------------

def synthc(*args, env=None):
    return subprocess.run([sys.executable, "-m", "synthlang.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def plan_json(spec: Path) -> dict:
    proc = synthc("plan", spec, "--fake-engine", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return {b["id"]: b for b in json.loads(proc.stdout)["blocks"]}


def test_plan_sends_nothing_and_counts_what_a_run_reuses(spec, tmp_path):
    engine = Counting()
    plan = compile(spec).plan
    assert plan is not None
    options = RunOptions(out_dir=tmp_path / "out", engine_factory=engine, cache_dir=tmp_path / "out/.synth/cache")
    before = estimate(plan, options)
    assert engine.sent == 0
    assert [(b.reused, b.to_generate) for b in before.blocks] == [(0, 12), (0, 9)]
    assert before.blocks[1].judge_requests == before.blocks[1].requests   # acceptance unknown: the worst case
    run(spec, tmp_path / "out", engine)
    sent = engine.sent
    after = estimate(plan, options)
    assert engine.sent == sent                       # still nothing sent
    assert all(b.to_generate == 0 and b.reused == b.count for b in after.blocks)
    assert after.resumes


def test_plan_after_an_edit_shows_what_is_reused_made_and_dropped(spec, tmp_path):
    proc = synthc("run", spec, "--fake-engine", "--progress", "log")
    assert proc.returncode == 0, proc.stderr
    edited(tmp_path, "count 12", "count 20")
    edited(tmp_path, "quota stars { low: 3, mid: 3, high: 3 }", "quota stars { low: 3, mid: 3, high: 1 }")
    edited(tmp_path, "count 9", "count 7")
    blocks = plan_json(spec)
    ticket, review = blocks["Ticket"], blocks["Review"]
    assert ticket["reused"] >= 12 and ticket["to_generate"] == 20 - ticket["reused"] > 0
    assert ticket["acceptance_from"] == "cache" and ticket["tokens_from"] == "cache"
    assert ticket["tokens_per_second"] > 0 and ticket["seconds"] is not None
    assert review["to_generate"] == 0 and review["reused"] == 7 and review["dropped"] == 2
    text = synthc("plan", spec, "--fake-engine")
    assert text.returncode == 0 and "dropped: 2 records of the last run" in text.stdout
    assert "intent=billing" in text.stdout and "to generate:" in text.stdout
    # the run does what the plan said
    proc = synthc("run", spec, "--fake-engine", "--progress", "log")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["blocks"]["Review"]["requests_sent"] == 0
    assert manifest["blocks"]["Ticket"]["requests_sent"] > 0
    assert all(b["to_generate"] == 0 for b in plan_json(spec).values())


def test_preview_records_are_reused_by_the_run(spec, tmp_path):
    proc = synthc("preview", spec, "--fake-engine", "-n", "4", "--block", "Ticket")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Ticket\n┌") and "│ subject" in proc.stdout and "Review" not in proc.stdout
    assert "Ticket: 4 records from" in proc.stderr
    lines_json = synthc("preview", spec, "--fake-engine", "-n", "4", "--block", "Ticket", "--format", "json")
    shown = [json.loads(line) for line in lines_json.stdout.splitlines()]
    assert len(shown) == 4 and "engine requests: 0 sent" in lines_json.stderr   # the second preview: all cached
    assert {r["intent"] for r in shown} == {"billing", "outage", "login"}
    proc = synthc("run", spec, "--fake-engine", "--progress", "log")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["blocks"]["Ticket"]["requests_reused"] >= 4
    kept = {json.dumps(json.loads(line), sort_keys=True) for line in lines(tmp_path / "out", "Ticket")}
    assert {json.dumps(r, sort_keys=True) for r in shown} <= kept   # the previewed records are in the dataset


def test_preview_refuses_an_unknown_block(spec):
    proc = synthc("preview", spec, "--fake-engine", "--block", "Nope")
    assert proc.returncode == 2 and "no block named Nope" in proc.stderr


def test_cache_info_and_prune(spec, tmp_path):
    proc = synthc("cache", "info", spec)
    assert proc.returncode == 0 and "no result cache" in proc.stderr
    assert synthc("run", spec, "--fake-engine", "--progress", "log").returncode == 0
    info = synthc("cache", "info", tmp_path / "out")
    match = re.search(r"(\d+) results", info.stdout)
    assert info.returncode == 0 and match and int(match.group(1)) > 0, info.stdout + info.stderr
    assert synthc("cache", "prune", spec).returncode == 2           # says what to drop
    pruned = synthc("cache", "prune", "--cache", tmp_path / "out/.synth/cache", "--max-size", "1K")
    assert pruned.returncode == 0 and "dropped" in pruned.stderr
    left = int(re.search(r"(\d+) results", pruned.stdout).group(1))
    assert 0 < left < int(match.group(1))
    assert "0 results" in synthc("cache", "prune", spec, "--all").stdout


def test_a_second_run_into_the_same_folder_is_refused(spec, tmp_path):
    assert synthc("run", spec, "--fake-engine", "--progress", "log").returncode == 0
    plan = compile(spec).plan
    assert plan is not None
    holder = Journal(tmp_path / "out/.synth/journal.jsonl", plan.hash, plan.dataset.name)
    try:
        proc = synthc("run", spec, "--fake-engine", "--progress", "log")
        # the holder here is this test's process: the message names it
        assert proc.returncode == 1 and f"another synthc run (process {os.getpid()}) is writing to" in proc.stderr
    finally:
        holder.close()
    assert synthc("run", spec, "--fake-engine", "--progress", "log").returncode == 0


def test_the_cache_refuses_a_symlink_planted_in_its_place(spec, tmp_path):
    cache = tmp_path / "out/.synth/cache"
    cache.mkdir(parents=True)
    (tmp_path / "elsewhere.sqlite").write_bytes(b"")
    (cache / "results.sqlite").symlink_to(tmp_path / "elsewhere.sqlite")
    proc = synthc("run", spec, "--fake-engine", "--progress", "log")
    assert proc.returncode == 1 and "is not a regular file" in proc.stderr, proc.stderr
    assert (tmp_path / "elsewhere.sqlite").read_bytes() == b""


def test_runs_sharing_a_cache_at_the_same_time(spec, tmp_path):
    # two runs of the spec into two folders, one cache, at once: both complete, neither loses a write
    cache = tmp_path / "shared-cache"
    env = {**os.environ, "SYNTHLANG_FAKE_DELAY": "0.01"}
    procs = [subprocess.Popen([sys.executable, "-m", "synthlang.cli", "run", str(spec), "--fake-engine", "--progress",
                               "log", "--out", str(tmp_path / name), "--cache", str(cache)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read() if p.stderr else ""
    assert data(tmp_path / "a") == data(tmp_path / "b")
    proc = synthc("run", spec, "--fake-engine", "--progress", "log", "--out", tmp_path / "c", "--cache", cache)
    assert proc.returncode == 0 and proc.stderr.count("engine requests: 0 sent") == 2, proc.stderr
    assert data(tmp_path / "c") == data(tmp_path / "a")


_OPEN_AT = """
import sys, time
from pathlib import Path
from synthlang.engines.base import GenerationResult
from synthlang.runtime.cache import ResultCache
start = float(sys.argv[2])
while time.time() < start:
    pass
cache = ResultCache(Path(sys.argv[1]))
cache.put_many([(sys.argv[3], GenerationResult("text", tokens=1, seconds=0.1))])
cache.close()
"""


def test_processes_opening_a_new_cache_at_the_same_moment_all_open_it(tmp_path):
    # a new cache file is switched to WAL, which SQLite does not wait for: each opener retries
    import time

    from synthlang.runtime.cache import ResultCache

    for round_ in range(6):
        folder = tmp_path / f"cache{round_}"
        folder.mkdir()
        start = str(time.time() + 1.0)
        procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT, str(folder), start, f"k{i}"],
                                  stderr=subprocess.PIPE, text=True) for i in range(3)]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], errors
        cache = ResultCache.open_existing(folder)
        assert cache is not None and sorted(cache.get_many(["k0", "k1", "k2"])) == ["k0", "k1", "k2"]
        cache.close()


def test_the_cache_opens_read_only_in_a_folder_with_odd_characters(tmp_path):
    from synthlang.engines.base import GenerationResult
    from synthlang.runtime.cache import ResultCache

    folder = tmp_path / "a b?#c%20"
    folder.mkdir()
    cache = ResultCache(folder)
    cache.put_many([("k", GenerationResult("text", tokens=3, seconds=0.1)),
                    ("failed", GenerationResult(None, error="HTTP 503"))])   # errors are not kept
    cache.close()
    readonly = ResultCache.open_existing(folder)
    assert readonly is not None
    assert {k: r.text for k, r in readonly.get_many(["k", "failed", "other"]).items()} == {"k": "text"}
    readonly.close()


def test_a_cache_with_holes_is_filled_in_and_never_stalls_a_run(spec, tmp_path, first):
    # results lost from the middle of the cache (pruned, or an engine error that was not kept):
    # a run asks the engine for exactly those and writes the same data
    import sqlite3

    db = sqlite3.connect(tmp_path / "out/.synth/cache/results.sqlite")
    keys = [k for (k,) in db.execute("select key from results order by key")]
    db.executemany("delete from results where key = ?", [(k,) for k in keys[::3]])
    db.commit()
    db.close()
    (tmp_path / "out/.synth/journal.jsonl").unlink()
    env = {**os.environ, "SYNTHLANG_FAKE_DELAY": "0"}
    proc = subprocess.run([sys.executable, "-c", (
        "import sys; sys.path.insert(0, sys.argv[1]); import test_incremental as t; from pathlib import Path; "
        "print(t.run(Path(sys.argv[2]), Path(sys.argv[3]))[0])"), str(Path(__file__).parent), str(spec),
        str(tmp_path / "out")], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 0 < int(proc.stdout.split()[-1]) < len(keys) // 2   # the holes, not the whole dataset, again
    assert data(tmp_path / "out") == first[2]


def test_a_judges_token_probabilities_are_kept_with_its_result_and_pruned_with_it(tmp_path):
    import sqlite3

    from synthlang.engines.base import GenerationRequest, GenerationResult
    from synthlang.runtime.cache import ResultCache, request_key

    plain = GenerationRequest(messages=({"role": "user", "content": "rate"},), json_schema={"type": "object"},
                              max_tokens=16, seed=1, temperature=0.2, top_p=1.0)
    asking = replace(plain, logprobs=5)
    assert request_key({}, asking) != request_key({}, plain)      # asked or not: different results
    cache = ResultCache(tmp_path)
    choices = [('{"score":', {}), ("4", {"4": -0.4, "3": -1.2})]
    cache.put_many([("judged", GenerationResult('{"score":4}', tokens=2, logprobs=choices)),
                    ("plain", GenerationResult("text", tokens=1))])
    got = cache.get_many(["judged", "plain"])
    assert got["judged"].logprobs == choices and got["plain"].logprobs is None
    assert cache.prune(max_bytes=0) == 2
    assert cache.db.execute("select count(*) from token_choices").fetchone()[0] == 0
    cache.close()

    # a cache written before token probabilities were kept still reads, read-only too
    old = tmp_path / "old"
    old.mkdir()
    db = sqlite3.connect(old / "results.sqlite")
    db.execute("create table results (key text primary key, text text not null, tokens integer not null, "
               "seconds real not null, bytes integer not null, created real not null, used real not null)")
    db.execute("insert into results values ('k', 'text', 1, 0.1, 10, 0, 0)")
    db.commit()
    db.close()
    readonly = ResultCache.open_existing(old)
    assert readonly is not None and readonly.get_many(["k"])["k"].text == "text"
    readonly.close()


CANDIDATES = """schema P { topic: "a" | "b" ~ uniform  chosen: str(5..80)  rejected: str(5..80) }
generate P { count 3
  candidates chosen, rejected from N \"\"\"Answer a question about {{ topic }}.\"\"\" ranked by judge \"\"\"Rate it.\"\"\"
}
"""


@pytest.mark.parametrize("between", ["edit", "prune"])
def test_a_first_step_the_cache_holds_in_part_is_sent_not_asked_for_forever(tmp_path, between):
    """A wave's first attempt with several requests (candidates), of which the cache holds some:
    more candidates after an edit, or a cache pruned between runs. Its missing requests must be
    sent, or the driver asks for the same attempt again without end."""
    spec = tmp_path / "c.synth"
    spec.write_text(CANDIDATES.replace("from N", "from 2"))
    cli = [sys.executable, "-m", "synthlang.cli"]
    assert subprocess.run([*cli, "run", spec, "--fake-engine"], capture_output=True, timeout=120).returncode == 0
    if between == "edit":
        spec.write_text(CANDIDATES.replace("from N", "from 3"))
    else:  # keep the first candidate of each record only: what a size-bounded prune can leave
        import sqlite3

        with sqlite3.connect(tmp_path / "out/c/.synth/cache/results.sqlite") as db:
            db.execute("delete from results where rowid % 2 = 0")
    fresh = ["--fresh"] if between == "prune" else []  # the dataset made again, from what the cache kept
    proc = subprocess.run([*cli, "run", spec, "--fake-engine", *fresh], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-800:]
    manifest = json.loads((tmp_path / "out/c/manifest.json").read_text())
    assert manifest["blocks"]["P"]["accepted"] == 3 and manifest["blocks"]["P"]["requests_sent"] > 0
