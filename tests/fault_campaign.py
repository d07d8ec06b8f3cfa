"""A fault campaign on the fake engine, a local OpenAI-compatible server and the embedded model:
each case injects faults into `synthc run` (SIGKILL at random points, torn and garbled journal
lines, a damaged result cache, two runs at once, a prune during a run, edits between runs, a
server that fails, answers garbage, stalls or dies, llama.cpp failing mid-batch) and ends in a
clean resume, then compares the dataset with what an uninterrupted run makes: no record lost,
none duplicated, nothing hung.

    python tests/fault_campaign.py [--kills N] [--seed S] [--no-engine]

prints the figures; tests/test_faults.py runs a small campaign in CI, and
tests/test_engine_faults.py the real-engine case (the embedded model on llama.cpp failing in
the middle of a batch), which the script runs last unless --no-engine."""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests/runtime_specs/two_blocks.synth"
SPLITS = ("Ticket.train.jsonl", "Ticket.test.jsonl", "Review.train.jsonl", "Review.test.jsonl")
HANG = 180  # seconds a command may take before it counts as hung


@dataclass
class Figures:
    cases: int = 0
    faults: int = 0
    resumes: int = 0
    records_compared: int = 0
    lost: int = 0
    duplicated: int = 0
    hung: int = 0
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"cases {self.cases}, faults injected {self.faults}, resumes {self.resumes}, records compared "
                f"{self.records_compared}, lost {self.lost}, duplicated {self.duplicated}, hung {self.hung}, "
                f"failed cases {len(self.failures)}")


# `synthc` with the openai engine's timeout (per try) and backoff (0.05 s) shortened, for the
# stall cases and a dead server: the defaults (300 s and 0.5 s doubling over six tries) bound
# them as well, only too slowly for a campaign
SHORT_TIMEOUTS = """
import sys
from synthlang.engines import openai_compat
init = openai_compat.OpenAICompatEngine.__init__
def short(self, model, options, **kw):
    init(self, model, options, **{**kw, "timeout": TIMEOUT, "backoff": 0.05})
openai_compat.OpenAICompatEngine.__init__ = short
from synthlang.cli.main import main
sys.exit(main())
"""
STALL_TIMEOUT = 1.0


def synthc(*args, env: dict | None = None, figures: Figures | None = None,
           engine_timeout: float | None = None) -> subprocess.CompletedProcess:
    """`synthc ARGS`; with `engine_timeout`, the openai engine waits that long for a reply and
    backs off 0.05 s (doubling) between its tries."""
    head = ["-m", "synthlang.cli"] if engine_timeout is None else [
        "-c", SHORT_TIMEOUTS.replace("TIMEOUT", repr(engine_timeout))]
    try:
        return subprocess.run([sys.executable, *head, *map(str, args)], capture_output=True,
                              text=True, timeout=HANG, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired as exc:
        if figures is not None:
            figures.hung += 1
        return subprocess.CompletedProcess(exc.cmd, 124, "", f"hung: {exc}")


def start(*args, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "synthlang.cli", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def records(out: Path, names=SPLITS) -> dict[str, list[str]]:
    """Each split file's lines, the records of the dataset as a user reads them."""
    return {n: (out / n).read_text().splitlines() if (out / n).exists() else [] for n in names}


def compare(case: str, out: Path, ref: Path, figures: Figures, names=SPLITS) -> None:
    """The dataset in `out` against the uninterrupted run's in `ref`, record by record."""
    got, want = records(out, names), records(ref, names)
    problems = []
    for name in names:
        figures.records_compared += len(want[name])
        lost = len(set(want[name]) - set(got[name]))
        dup = len(got[name]) - len(set(got[name]))
        figures.lost += lost
        figures.duplicated += dup
        if got[name] != want[name]:
            problems.append(f"{name}: {len(got[name])} records, {lost} lost, {dup} duplicated, "
                            f"{'same' if set(got[name]) == set(want[name]) else 'different'} set")
    if problems:
        figures.failures.append(f"{case}: " + "; ".join(problems))


def compare_ids(case: str, out: Path, ref: Path, figures: Figures, names=SPLITS) -> int:
    """The dataset in `out` against `ref` by record id, in order: for an engine whose records
    after a resume may differ in their text from an uninterrupted run's (vLLM: a prompt served
    from its prefix cache is evaluated differently in floating point; docs/engines.md). Returns
    how many records are also identical in full."""
    same = 0
    problems = []
    for name in names:
        got, want = records(out, (name,))[name], records(ref, (name,))[name]
        ids = [json.loads(line)["_meta"]["id"] for line in got]
        want_ids = [json.loads(line)["_meta"]["id"] for line in want]
        figures.records_compared += len(want)
        lost, dup = len(set(want_ids) - set(ids)), len(ids) - len(set(ids))
        figures.lost += lost
        figures.duplicated += dup
        same += sum(a == b for a, b in zip(got, want))
        if ids != want_ids:
            problems.append(f"{name}: {len(ids)} records, {lost} lost, {dup} duplicated")
    if problems:
        figures.failures.append(f"{case}: " + "; ".join(problems))
    return same


def finish(spec: Path, out: Path, figures: Figures, env: dict | None = None, *extra) -> subprocess.CompletedProcess:
    """Run to the end (resume), counting the resume."""
    figures.resumes += 1
    return synthc("run", spec, "--out", out, "--fake-engine", "--progress", "log", *extra, env=env, figures=figures)


def case(figures: Figures, name: str, ok: bool, detail: str = "") -> None:
    figures.cases += 1
    if not ok:
        figures.failures.append(f"{name}: {detail}")


# ---- the cases --------------------------------------------------------------------------------

def kills(work: Path, ref: Path, figures: Figures, n: int, rng: random.Random, wall: float) -> None:
    """SIGKILL at random points of a run, the end (outputs, manifest, cache) included, each
    followed by a resume that is killed again, until the run finishes."""
    env = {"SYNTHLANG_FAKE_DELAY": "0.02"}
    for i in range(n):
        out = work / f"kill{i}"
        killed = 0
        for _ in range(3):
            proc = start("run", SPEC, "--out", out, "--fake-engine", "--batch", "3", env=env)
            time.sleep(rng.uniform(0.3, wall * 1.1))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            proc.wait(timeout=60)
        figures.faults += killed
        done = finish(SPEC, out, figures, env, "--batch", "3")
        case(figures, f"kill {i}", done.returncode == 0, done.stderr[-300:])
        compare(f"kill {i} ({killed} kills)", out, ref, figures)


def damaged_state(work: Path, ref: Path, figures: Figures) -> None:
    """A journal whose last line is torn, one garbled in the middle, a result cache of junk."""
    env = {"SYNTHLANG_FAKE_DELAY": "0.02"}
    # torn last line: a kill mid-write; the run cuts it off and resumes
    out = work / "torn"
    finish(SPEC, out, figures, env)
    journal = out / ".synth/journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[: len(lines) // 2]) + lines[len(lines) // 2][:17])
    figures.faults += 1
    done = finish(SPEC, out, figures, env)
    case(figures, "torn journal line", done.returncode == 0, done.stderr[-300:])
    compare("torn journal line", out, ref, figures)
    # a garbled line in the middle: refused with a message naming --fresh, then --fresh remakes it
    lines = journal.read_text().splitlines(keepends=True)
    lines[len(lines) // 2] = '{"b": "Ticket", "garbage\n'
    journal.write_text("".join(lines))
    figures.faults += 1
    refused = synthc("run", SPEC, "--out", out, "--fake-engine", figures=figures)
    case(figures, "garbled journal line", refused.returncode == 1 and "--fresh" in refused.stderr,
         f"exit {refused.returncode}: {refused.stderr[-300:]}")
    done = finish(SPEC, out, figures, env, "--fresh")
    case(figures, "garbled journal, --fresh", done.returncode == 0, done.stderr[-300:])
    compare("garbled journal, --fresh", out, ref, figures)
    # a result cache of junk bytes, and the journal gone: the run sets the cache aside and remakes
    cache = out / ".synth/cache/results.sqlite"
    cache.write_bytes(os.urandom(4096))
    journal.unlink()
    figures.faults += 1
    done = finish(SPEC, out, figures, env)
    case(figures, "damaged cache", done.returncode == 0, done.stderr[-300:])
    compare("damaged cache", out, ref, figures)


def neighbours(work: Path, ref: Path, figures: Figures) -> None:
    """Two runs of one folder started at once; a run while the cache is pruned."""
    env = {"SYNTHLANG_FAKE_DELAY": "0.02"}
    out = work / "two"
    first, second = (start("run", SPEC, "--out", out, "--fake-engine", env=env) for _ in range(2))
    codes = [p.wait(timeout=HANG) for p in (first, second)]
    errors = [p.stderr.read() for p in (first, second)]
    figures.faults += 1
    busy = [e for c, e in zip(codes, errors) if c != 0]
    case(figures, "two runs at once", 0 in codes and all("another synthc run" in e for e in busy),
         f"exits {codes}: {[e[-200:] for e in errors]}")
    done = finish(SPEC, out, figures, env)
    case(figures, "two runs at once, resumed", done.returncode == 0, done.stderr[-300:])
    compare("two runs at once", out, ref, figures)
    out = work / "prune"
    proc = start("run", SPEC, "--out", out, "--fake-engine", env=env)
    time.sleep(1.0)
    pruned = synthc("cache", "prune", "--all", "--cache", out / ".synth/cache", figures=figures)
    proc.wait(timeout=HANG)
    figures.faults += 1
    case(figures, "prune during a run", pruned.returncode in (0, 1) and "Traceback" not in pruned.stderr,
         pruned.stderr[-300:])
    done = finish(SPEC, out, figures, env)
    case(figures, "prune during a run, resumed", done.returncode == 0, done.stderr[-300:])
    compare("prune during a run", out, ref, figures)


def disk_full(work: Path, ref: Path, figures: Figures) -> None:
    """The disk filling up during the cache, the journal and the outputs: a small tmpfs (root
    only; skipped, and said so, where it cannot be mounted), refused with a clear error, then
    grown and resumed."""
    mount = work / "tmpfs"
    mount.mkdir()
    for size in ("16k", "64k", "160k", "400k"):
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                          capture_output=True).returncode != 0:
            figures.skipped.append("disk full: cannot mount a tmpfs here")
            return
        try:
            out = mount / "out"
            full = synthc("run", SPEC, "--out", out, "--fake-engine", figures=figures)
            figures.faults += 1
            said = "No space left" in full.stderr or "full disk" in full.stderr
            case(figures, f"disk full at {size}", full.returncode == 1 and said,
                 f"exit {full.returncode}: {full.stderr[-300:]}")
            subprocess.run(["mount", "-o", "remount,size=50m", str(mount)], check=True)
            done = finish(SPEC, out, figures)
            case(figures, f"disk full at {size}, resumed", done.returncode == 0, done.stderr[-300:])
            compare(f"disk full at {size}", out, ref, figures)
        finally:
            subprocess.run(["umount", str(mount)], capture_output=True)


EDITS = {
    "count": ("count 12", "count 15"),
    "quota": ("billing: 50%, outage: 25%, login: 25%", "billing: 25%, outage: 50%, login: 25%"),
    "prompt": ("Write one support ticket", "Write one short support ticket"),
    "split": ("split train 70%, test 30%", "split train 80%, test 20%"),
    "noise": ("  dedup body near 0.9\n", "  dedup body near 0.9\n  noise subject { lowercase 50% }\n"),
    "check": ("check len(body) > len(subject)", "check len(body) > len(subject) + 5"),
}


def edits(work: Path, figures: Figures, names: tuple[str, ...] = tuple(EDITS)) -> None:
    """The spec edited between runs: the resumed folder must hold what a fresh run of the edited
    spec makes, in another folder with no cache."""
    for name in names:
        old, new = EDITS[name]
        spec = work / f"edit_{name}.synth"
        text = SPEC.read_text()
        assert old in text, name
        spec.write_text(text)
        out, fresh = work / f"edit_{name}", work / f"edit_{name}_fresh"
        finish(spec, out, figures)
        spec.write_text(text.replace(old, new))
        figures.faults += 1
        done = finish(spec, out, figures)
        clean = synthc("run", spec, "--out", fresh, "--fake-engine", "--no-cache", figures=figures)
        case(figures, f"edit {name}", done.returncode == 0 and clean.returncode == 0,
             (done.stderr + clean.stderr)[-300:])
        compare(f"edit {name}", out, fresh, figures)
    # candidates N raised after a run: the record's cached candidates and the new one combine
    spec = work / "cands.synth"
    cands = ('schema P { topic: "a" | "b" ~ uniform  chosen: str(5..80)  rejected: str(5..80) }\n'
             'generate P { count 6\n  candidates chosen, rejected from N """Answer about {{ topic }}."""'
             ' ranked by judge """Rate it."""\n}\noutput "out" { format jsonl }\n')
    spec.write_text(cands.replace("from N", "from 2"))
    out, fresh = work / "cands", work / "cands_fresh"
    finish(spec, out, figures)
    spec.write_text(cands.replace("from N", "from 3"))
    figures.faults += 1
    done = finish(spec, out, figures)
    clean = synthc("run", spec, "--out", fresh, "--fake-engine", "--no-cache", figures=figures)
    case(figures, "edit candidates N", done.returncode == 0 and clean.returncode == 0,
         (done.stderr + clean.stderr)[-300:])
    compare("edit candidates N", out, fresh, figures, names=("train.jsonl",))


# ---- edits to a record's steps and to a seeds file ---------------------------------------------

# A record written in steps, in three shapes: one step writing question and answer, two steps,
# and two steps with a third one (and its field) written only for hard questions.
STEPS = '''dataset chain {
  seed 5
}

model asker {
  temperature 0.9
}

model answerer {
  temperature 0.2
}

schema Exchange {
  topic:      "billing" | "privacy" | "api limits" ~ uniform
  question:   str(20..120)
  difficulty: "easy" | "hard"
  answer:     str(40..300)
FOLLOWUP_FIELD}

generate Exchange {
  count 12
  quota difficulty { easy: 50%, hard: 50% }
STEP_LINES  check len(answer) > len(question)
}

output "out" {
  format jsonl
  split train 75%, test 25%
}
'''
ONE_STEP = '''  step question, answer using asker """
    Ask one {{ difficulty }} question a customer might ask about {{ topic }}, and answer it.
  """
'''
TWO_STEPS = '''  step question using asker """
    Ask one {{ difficulty }} question a customer might ask about {{ topic }}.
  """
  step answer using answerer """
    Answer the customer's question clearly and correctly.
    Question: {{ question }}
  """
'''
THIRD_STEP = '''  step followup using asker when difficulty == "hard" """
    The customer did not understand. Write their follow-up to: {{ answer }}
  """
'''


def steps_spec(shape: str) -> str:
    lines = {"one": ONE_STEP, "two": TWO_STEPS, "three": TWO_STEPS + THIRD_STEP}[shape]
    field = "  followup:   str(10..120)?\n" if shape == "three" else ""
    return STEPS.replace("FOLLOWUP_FIELD", field).replace("STEP_LINES", lines)


STEP_EDITS = {
    "step added": ("one", "two"),
    "step removed": ("two", "one"),
    "step added with its field": ("two", "three"),
    "step removed with its field": ("three", "two"),
}

# a block with few-shot examples from a seeds file that also goes into the train split
SEEDED = '''dataset seeded {
  seed 3
}

enum Intent { billing, outage, login }

schema Ticket {
  subject: str(8..60)
  body:    str(30..160)
  intent:  Intent
}

seeds real from "real.jsonl" as Ticket

generate Ticket {
  count 12
  quota intent { billing: 50%, outage: 25%, login: 25% }
  examples 1 from real matching intent
  prompt """
    Write one support ticket about a {{ intent }} problem, in the tone of this one:
    {% for ex in examples %}{{ ex.subject }}: {{ ex.body }}{% endfor %}
  """
}

output "out" {
  format jsonl
  split train 75%, test 25%
  mix real 20%
}
'''
SEED_ROWS = [
    {"subject": "Charged twice", "body": "My card was charged twice for the March invoice, please refund one.",
     "intent": "billing"},
    {"subject": "Invoice address", "body": "The invoice shows our old office address; how do I change it?",
     "intent": "billing"},
    {"subject": "Dashboard down", "body": "The dashboard has returned errors for every page since this morning.",
     "intent": "outage"},
    {"subject": "Cannot sign in", "body": "The sign-in page says my password is wrong although I just reset it.",
     "intent": "login"},
]
SEED_EDITS = {
    "seeds row edited": lambda rows: [rows[0], {**rows[1], "body": rows[1]["body"].replace("old", "former")},
                                      *rows[2:]],
    "seeds row added": lambda rows: [*rows, {"subject": "Locked out", "intent": "login",
                                             "body": "After three wrong codes the app locked my account for a day."}],
}


def _write_seeds(folder: Path, rows: list[dict]) -> None:
    (folder / "real.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def edit_rerun(spec: Path, out: Path, fresh: Path, figures: Figures, rng: random.Random, name: str,
               names: tuple[str, ...], edit) -> None:
    """Run `spec` to the end, `edit()` it, run it again killed at a random point, resume, and
    compare with a fresh run of the edited spec in another folder with no cache."""
    finish(spec, out, figures)
    edit()
    figures.faults += 1
    env = {"SYNTHLANG_FAKE_DELAY": "0.02"}
    journal, began = out / ".synth/journal.jsonl", time.time()
    proc = start("run", spec, "--out", out, "--fake-engine", "--batch", "3", env=env)
    # killed mid-way: once the rerun's journal (started over for the edited spec, or appended
    # to) holds a random number of its lines
    lines = rng.randint(2, 12)
    while proc.poll() is None and time.time() - began < 10 and not (
            journal.stat().st_mtime >= began and len(journal.read_bytes().splitlines()) >= lines):
        time.sleep(0.005)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        figures.faults += 1
    proc.wait(timeout=60)
    done = finish(spec, out, figures, env, "--batch", "3")
    clean = synthc("run", spec, "--out", fresh, "--fake-engine", "--no-cache", figures=figures)
    case(figures, name, done.returncode == 0 and clean.returncode == 0, (done.stderr + clean.stderr)[-300:])
    compare(name, out, fresh, figures, names=names)


def structure_edits(work: Path, figures: Figures, rng: random.Random, step_names: tuple[str, ...] = tuple(STEP_EDITS),
                    seed_names: tuple[str, ...] = tuple(SEED_EDITS)) -> None:
    """Steps added or removed (with and without a field of their own) and the seeds file changed
    (a row edited, a row added) between runs, each rerun killed at a random point and resumed."""
    names = ("train.jsonl", "test.jsonl")
    for name in step_names:
        old, new = STEP_EDITS[name]
        tag = name.replace(" ", "_")
        spec = work / f"{tag}.synth"
        spec.write_text(steps_spec(old))
        edit_rerun(spec, work / tag, work / f"{tag}_fresh", figures, rng, f"edit {name}", names,
                   lambda spec=spec, new=new: spec.write_text(steps_spec(new)))
    for name in seed_names:
        tag = name.replace(" ", "_")
        folder = work / tag
        folder.mkdir()
        spec = folder / "seeded.synth"
        spec.write_text(SEEDED)
        _write_seeds(folder, SEED_ROWS)
        edit_rerun(spec, folder / "run", folder / "fresh", figures, rng, f"edit {name}", names,
                   lambda folder=folder, name=name: _write_seeds(folder, SEED_EDITS[name](SEED_ROWS)))


# ---- a local OpenAI-compatible server that fails on purpose -----------------------------------

def _fake_answer(body: dict) -> str:
    """What the fake engine writes for this chat-completions request: valid for its schema and a
    function of the request alone, as a constrained model at a fixed seed is."""
    from synthlang.engines.base import GenerationRequest
    from synthlang.engines.fake import FakeEngine

    schema = body["response_format"]["json_schema"]["schema"]
    request = GenerationRequest(messages=tuple(body["messages"]), json_schema=schema,
                                max_tokens=int(body.get("max_tokens", 256)), seed=int(body.get("seed", 0)),
                                temperature=1.0, top_p=1.0)
    return FakeEngine().generate([request])[0].text or ""


class Server:
    """Answers chat completions as the fake engine would, constraints enforced, so the data
    depends on the requests only; `fault(n, seed)` decides what the n-th request gets: "ok", a
    status code, "truncated", "huge", "dead" (the connection closed with no reply), "stall" (no
    reply at all), "stall_headers" (the headers and the start of the body, then nothing) or
    "trickle" (the headers, then a byte every 0.1 s)."""

    def __init__(self, fault):
        self.fault, self.n, self.lock = fault, 0, threading.Lock()
        self.stopped = threading.Event()  # releases the stalled handlers
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.n += 1
                    n = outer.n
                seed = int(body.get("seed", 0))
                text = _fake_answer(body)
                kind = outer.fault(n, seed)
                if kind in (500, 429, 503):
                    self._send(kind, {"error": "try again"}, {"Retry-After": "0"})
                elif kind == "truncated":
                    self._send(200, None, raw=b'{"choices": [{"message": {"content": "{\\"b\\"')
                elif kind == "huge":
                    self._send(200, None, raw=b'{"x": "' + b"a" * (70 << 20) + b'"}')
                elif kind in ("stall", "stall_headers", "trickle"):
                    self._stall(kind)
                elif kind == "dead":  # the connection closed with no reply, as by a server dying
                    self.close_connection = True
                else:
                    self._send(200, {"choices": [{"message": {"role": "assistant", "content": text},
                                                  "finish_reason": "stop"}],
                                     "usage": {"completion_tokens": len(text) // 4}})

            def _stall(self, kind):
                try:
                    if kind != "stall":
                        self.send_response(200)
                        self.send_header("Content-Length", "100000")
                        self.end_headers()
                        self.wfile.write(b'{"choices": [')
                        self.wfile.flush()
                    while not outer.stopped.wait(0.1):
                        if kind == "trickle":
                            self.wfile.write(b" ")
                            self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            def _send(self, code, data, headers=None, raw=None):
                payload = raw if raw is not None else json.dumps(data).encode()
                try:
                    self.send_response(code)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def stop(self) -> None:
        self.stopped.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def server_spec(folder: Path, url: str) -> Path:
    spec = folder / "served.synth"
    spec.write_text(f'model m {{ engine openai  name "m"  endpoint "{url}" }}\n'
                    'schema T { b: str(3..40) }\ngenerate T { count 12  using m }\noutput "out" { format jsonl }\n')
    return spec


def served(work: Path, figures: Figures) -> None:
    """Server faults: 5xx and 429 bursts (retried: the data equals a healthy server's), a server
    that dies mid-run (exit 3, then a resume on a new one), truncated JSON and a body far larger
    than asked (each attempt rejected: the count still holds, nothing duplicated)."""
    healthy = Server(lambda n, seed: "ok")
    ref_dir = work / "served_ref"
    ref_dir.mkdir()
    ref = synthc("run", server_spec(ref_dir, healthy.url), "--no-cache", figures=figures)
    healthy.stop()
    case(figures, "server healthy", ref.returncode == 0, ref.stderr[-300:])
    names = ("out/train.jsonl",)
    # 5xx and 429 on a request's first tries, as many as three, never all six: keyed by the
    # request's own tries, not by the server's request count, which under load can hand one
    # request six faults in a row (then it is given up, and the data is another run's)
    tries: dict[int, int] = {}
    statuses = (500, 429, 503)

    def bursts(n, seed):
        k = tries[seed] = tries.get(seed, 0) + 1
        return statuses[(seed + k) % 3] if k <= seed % 4 else "ok"

    srv = Server(bursts)
    folder = work / "served_5xx"
    folder.mkdir()
    done = synthc("run", server_spec(folder, srv.url), "--no-cache", figures=figures)
    figures.faults += sum(min(k - 1, seed % 4) for seed, k in tries.items())
    srv.stop()
    case(figures, "server 5xx and 429", done.returncode == 0, done.stderr[-300:])
    compare("server 5xx and 429", folder, ref_dir, figures, names=names)
    # a server that dies after 6 requests (those in flight get no reply, then nothing listens);
    # the run stops, then resumes on a new one
    folder = work / "served_dies"
    folder.mkdir()
    dying = Server(lambda n, seed: "ok" if n <= 6 else "dead")
    spec = server_spec(folder, dying.url)

    def kill_when_busy():
        while dying.n < 6:
            time.sleep(0.01)
        dying.stop()

    killer = threading.Thread(target=kill_when_busy, daemon=True)
    killer.start()
    first = synthc("run", spec, "--no-cache", figures=figures, engine_timeout=30)  # backoff short, the same tries
    killer.join(timeout=10)
    figures.faults += 1
    case(figures, "server dies", first.returncode == 3, f"exit {first.returncode}: {first.stderr[-300:]}")
    again = Server(lambda n, seed: "ok")
    spec = server_spec(folder, again.url)
    figures.resumes += 1
    done = synthc("run", spec, "--no-cache", figures=figures)
    again.stop()
    case(figures, "server dies, resumed", done.returncode == 0, done.stderr[-300:])
    # the endpoint changed, so the resume keeps its records and makes the rest on the new server
    rows = records(folder, names)["out/train.jsonl"]
    case(figures, "server dies, count", len(rows) == 12 and len(set(rows)) == 12, f"{len(rows)} rows")
    figures.records_compared += len(rows)
    figures.duplicated += len(rows) - len(set(rows))
    for kind in ("truncated", "huge"):
        srv = Server(lambda n, seed, kind=kind: kind if n % 4 == 2 else "ok")
        folder = work / f"served_{kind}"
        folder.mkdir()
        done = synthc("run", server_spec(folder, srv.url), "--no-cache", figures=figures)
        figures.faults += srv.n // 4
        srv.stop()
        rows = records(folder, names)["out/train.jsonl"]
        manifest = json.loads((folder / "out/manifest.json").read_text()) if (folder / "out/manifest.json").exists() \
            else {}
        rejected = manifest.get("blocks", {}).get("T", {}).get("rejections", {})
        case(figures, f"server {kind} reply", done.returncode == 0 and len(rows) == 12 and len(set(rows)) == 12
             and any(k.startswith("malformed_reply") for k in rejected), f"exit {done.returncode}, {len(rows)} rows, "
             f"{rejected}, {done.stderr[-300:]}")
        figures.records_compared += len(rows)
        figures.duplicated += len(rows) - len(set(rows))


def stalled(work: Path, figures: Figures) -> None:
    """A server that stalls, with the engine's timeout shortened to STALL_TIMEOUT: some tries
    get no reply, or the headers and then nothing (retried: the data equals a healthy
    server's); then every request from the middle of the run on (the run stops within its
    timeouts, exit 3, naming the stall), and the same server healed: the resume holds exactly
    the healthy server's records."""
    ref_dir, names = work / "served_ref", ("out/train.jsonl",)
    seen: set[int] = set()

    def sometimes(n, seed):
        first = seed not in seen
        seen.add(seed)
        return ("stall" if seed % 2 else "stall_headers") if first and seed % 3 == 0 and n > 1 else "ok"

    srv = Server(sometimes)
    folder = work / "stalls_some"
    folder.mkdir()
    done = synthc("run", server_spec(folder, srv.url), "--no-cache", figures=figures, engine_timeout=STALL_TIMEOUT)
    srv.stop()
    figures.faults += sum(1 for s in seen if s % 3 == 0)
    case(figures, "server stalls some tries", done.returncode == 0, done.stderr[-300:])
    compare("server stalls some tries", folder, ref_dir, figures, names=names)
    for kind in ("stall", "stall_headers"):
        srv = Server(lambda n, seed, kind=kind: kind if n > 8 else "ok")
        folder = work / f"stalls_{kind}"
        folder.mkdir()
        spec = server_spec(folder, srv.url)
        started = time.perf_counter()
        first = synthc("run", spec, "--no-cache", figures=figures, engine_timeout=STALL_TIMEOUT)
        took = time.perf_counter() - started
        figures.faults += 1
        # the bound: two timeouts and their backoff for the stall, with the start-up around it
        case(figures, f"server {kind} for good", first.returncode == 3 and "no reply" in first.stderr
             and took < 20 * STALL_TIMEOUT + 10, f"exit {first.returncode} after {took:.0f} s: {first.stderr[-300:]}")
        srv.fault = lambda n, seed: "ok"
        figures.resumes += 1
        done = synthc("run", spec, "--no-cache", figures=figures, engine_timeout=STALL_TIMEOUT)
        srv.stop()
        case(figures, f"server {kind} for good, resumed", done.returncode == 0, done.stderr[-300:])
        compare(f"server {kind} for good", folder, ref_dir, figures, names=names)


# ---- the embedded llama.cpp engine raising in the middle of a batch ----------------------------

ENGINE_SPEC = '''dataset engine_faults {
  seed 3
}

schema Note {
  topic: "tea" | "rain" | "trains" ~ uniform
  mood:  "calm" | "busy" | "odd"
  n:     int(1..9)
}

generate Note {
  count 6
  prompt """
    Pick a mood and a number for {{ topic }}.
  """
}

output "out" {
  format jsonl
}
'''


def engine_runs(folder: Path, spec: str, engine):
    """The real-engine cases' runs: `spec` compiled in `folder`, and a function running it into
    `folder/OUT` in this process on `engine` (loaded once, shared by the runs)."""
    from synthlang.compiler import compile
    from synthlang.runtime.driver import run_plan
    from synthlang.runtime.options import RunOptions

    folder.mkdir()
    (folder / "notes.synth").write_text(spec)
    plan = compile(folder / "notes.synth").plan
    assert plan is not None

    def run(out: str):
        return run_plan(plan, RunOptions(out_dir=folder / out, engine_factory=lambda m: engine, progress=False))

    return run


class Faulty:
    """A loaded llama.cpp engine (LlamaCppEngine) shared by runs, never closed by them, sent
    waves of one batch each (`in_flight` = its slots); `arm(kind, wave, call)` makes its decoder
    fail at the `call`-th llama_decode call of its `wave`-th generate call (0: the conformance
    probe), with two or more sequences running: "exception" (the bindings raise) or "error code"
    (llama_decode returns 1)."""

    def __init__(self, engine):
        self.engine, self.name, self.capabilities = engine, engine.name, engine.capabilities
        self.in_flight = engine.decoder.slots
        self.waves = self.calls = self.running = 0
        self.kind: str | None = None
        self.target = (0, 0)
        self.failed_at: tuple[int, int] | None = None
        decoder, call, lib = engine.decoder, engine.decoder._call, engine.decoder.C
        outer = self

        class Lib:  # the bindings, with llama_decode failing when armed
            def __getattr__(self, name):
                return getattr(lib, name)

            def llama_decode(self, ctx, batch):
                return 1 if outer._fires("error code") else lib.llama_decode(ctx, batch)

        def counted(entries, running):
            self.calls += 1
            self.running = len(running)
            if self._fires("exception"):
                raise RuntimeError("llama_decode: injected fault in the middle of a batch")
            return call(entries, running)

        decoder._call, decoder.C = counted, Lib()
        self._restore = lambda: (setattr(decoder, "_call", call), setattr(decoder, "C", lib))

    def _fires(self, kind: str) -> bool:
        if self.kind != kind or self.failed_at is not None or (self.waves - 1, self.calls) < self.target \
                or self.running < 2:
            return False
        self.failed_at = (self.waves - 1, self.calls)
        return True

    def arm(self, kind: str | None, wave: int = 0, call: int = 0) -> None:
        self.kind, self.target, self.waves, self.failed_at = kind, (wave, call), 0, None

    def generate(self, requests):
        self.waves += 1
        self.calls = 0
        return self.engine.generate(requests)

    def close(self) -> None:
        return None

    def unwrap(self) -> None:
        self._restore()


def engine_raises(work: Path, figures: Figures, engine=None,
                  kinds: tuple[str, ...] = ("exception", "error code")) -> None:
    """The embedded model on llama.cpp (`engine`: a loaded LlamaCppEngine, or one loaded here
    with 3 slots) failing in the middle of a batch, in its second wave, the first journaled:
    the run stops with EngineDead (what `synthc run` reports as exit 3), then resumes on the
    same engine, healthy again, to exactly the records of an uninterrupted run. The resume asks
    the failed wave again whole, in the same batch as before, so the batch-rounding caveat of
    docs/engines.md ("Reproducibility": records drawn in other batches may differ) does not
    arise and the comparison is exact."""
    from synthlang import ir
    from synthlang.engines.base import EngineDead, EngineOptions

    own = engine is None
    if own:
        from synthlang.engines.llamacpp import LlamaCppEngine

        engine = LlamaCppEngine(ir.Model(name="embedded"), EngineOptions(batch=3, threads=1))
    faulty = Faulty(engine)
    try:
        folder = work / "engine_raises"
        run = engine_runs(folder, ENGINE_SPEC, faulty)
        faulty.arm(None)
        run("ref")
        names = ("train.jsonl",)
        waves = faulty.waves
        for kind in kinds:
            out = kind.replace(" ", "_")
            faulty.arm(kind, wave=2, call=7)  # the second wave (after the probe and the first), mid-way
            try:
                run(out)
                stopped, detail = False, "the run ended without the fault"
            except EngineDead as exc:
                stopped, detail = True, str(exc)
            except Exception as exc:  # noqa: BLE001 - a raw exception is what this case looks for
                stopped, detail = False, f"{type(exc).__name__} reached the caller: {exc}"
            figures.faults += faulty.failed_at is not None
            journal = folder / out / ".synth/journal.jsonl"
            kept = [line for line in journal.read_text().splitlines()[1:] if line.strip()] if journal.exists() else []
            case(figures, f"llama.cpp {kind} mid-batch", stopped and faulty.failed_at is not None,
                 f"{detail} (failed at wave and call {faulty.failed_at}; {waves} engine calls in all)")
            faulty.arm(None)
            figures.resumes += 1
            run(out)
            resumed = [line for line in journal.read_text().splitlines()[1:] if line.strip()]
            case(figures, f"llama.cpp {kind} mid-batch, journal kept",
                 len(kept) > 0 and resumed[:len(kept)] == kept, f"{len(kept)} lines before the fault")
            compare(f"llama.cpp {kind} mid-batch", folder / out, folder / "ref", figures, names=names)
    finally:
        faulty.unwrap()
        if own:
            engine.close()


# ---- vLLM raising in the middle of a batch ----------------------------------------------------

class VLLMFaulty:
    """A loaded vLLM engine (VLLMEngine) shared by runs and never closed by them, whose engine
    step raises once when armed: `arm(kind, call, step)` makes the `step`-th engine step of the
    `call`-th batch raise, part of the batch finished and the rest still scheduled. `runtime` is
    what vLLM raises when its engine breaks (the run stops), `value` one it raises for a bad
    request (the batch fails and is asked again)."""

    def __init__(self, engine):
        self.engine = engine
        self.name, self.options, self.capabilities = engine.name, engine.options, engine.capabilities
        self.in_flight = 4
        self.kind: str | None = None
        self.call = self.step = self.calls = 0
        self.fired = False

    def arm(self, kind: str | None, call: int = 0, step: int = 0) -> None:
        self.kind, self.call, self.step, self.calls, self.fired = kind, call, step, 0, False

    def generate(self, requests):
        self.calls += 1
        core = self.engine.llm.llm_engine
        if self.kind is None or self.calls != self.call:
            return self.engine.generate(requests)
        step, steps, outer = core.step, [0], self

        def faulty():
            steps[0] += 1
            if steps[0] == outer.step:
                outer.fired = True
                error = RuntimeError if outer.kind == "runtime" else ValueError
                raise error("injected fault in the middle of a batch")
            return step()

        core.step = faulty
        try:
            return self.engine.generate(requests)
        finally:
            core.step = step

    def close(self) -> None:
        return None


def vllm_raises(work: Path, figures: Figures, engine) -> dict[str, int]:
    """The embedded model on vLLM (`engine`: a loaded VLLMEngine) raising in the middle of its
    third batch (after the probe and a journaled wave): `value` fails that batch, which is
    asked again, and the run ends as an uninterrupted one does; `runtime` stops the run with
    EngineDead (exit 3 on the command line), and a resume on the healthy engine asks the failed
    wave again whole and ends in exactly the records of an uninterrupted run. Either way the
    requests the failed batch left in vLLM's scheduler must not answer for the next batch's.
    Records are compared by id (compare_ids); returns, per kind, how many are identical in full."""
    from synthlang.engines.base import EngineDead

    faulty = VLLMFaulty(engine)
    folder = work / "vllm_raises"
    run = engine_runs(folder, ENGINE_SPEC.replace("count 6", "count 12"), faulty)
    faulty.arm(None)
    run("ref")
    names = ("train.jsonl",)
    same: dict[str, int] = {}
    for kind in ("value", "runtime"):
        faulty.arm(kind, call=3, step=3)
        try:
            run(kind)
            stopped, detail = False, "the run ended"
        except EngineDead as exc:
            stopped, detail = True, str(exc)
        except Exception as exc:  # noqa: BLE001 - a raw exception is what this case looks for
            stopped, detail = False, f"{type(exc).__name__} reached the caller: {exc}"
        figures.faults += faulty.fired
        journal = folder / kind / ".synth/journal.jsonl"
        kept = [line for line in journal.read_text().splitlines()[1:] if line.strip()] if journal.exists() else []
        if kind == "value":
            case(figures, "vLLM bad-request error mid-batch", faulty.fired and not stopped, detail)
        else:
            case(figures, "vLLM engine error mid-batch", faulty.fired and stopped and "injected" in detail, detail)
            faulty.arm(None)
            figures.resumes += 1
            run(kind)
            resumed = [line for line in journal.read_text().splitlines()[1:] if line.strip()]
            case(figures, "vLLM engine error mid-batch, journal kept",
                 len(kept) > 0 and resumed[:len(kept)] == kept, f"{len(kept)} lines before the fault")
        same[kind] = compare_ids(f"vLLM {kind} error mid-batch", folder / kind, folder / "ref", figures, names=names)
    return same


def campaign(kills_n: int = 12, seed: int = 1, edit_names: tuple[str, ...] = tuple(EDITS),
             step_edit_names: tuple[str, ...] = tuple(STEP_EDITS),
             seed_edit_names: tuple[str, ...] = tuple(SEED_EDITS), real_engine: bool = False) -> Figures:
    """The cases on the fake engine and the local server; with `real_engine`, the embedded
    model failing mid-batch on llama.cpp and on vLLM (where installed) too
    (tests/test_engine_faults.py runs those in CI)."""
    figures = Figures()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ref = work / "ref"
        started = time.perf_counter()
        base = synthc("run", SPEC, "--out", ref, "--fake-engine", "--batch", "3",
                      env={"SYNTHLANG_FAKE_DELAY": "0.02"}, figures=figures)
        wall = time.perf_counter() - started
        if base.returncode != 0:
            figures.failures.append(f"reference run: {base.stderr[-300:]}")
            return figures
        kills(work, ref, figures, kills_n, rng, wall)
        damaged_state(work, ref, figures)
        neighbours(work, ref, figures)
        disk_full(work, ref, figures)
        edits(work, figures, edit_names)
        structure_edits(work, figures, rng, step_edit_names, seed_edit_names)
        served(work, figures)
        stalled(work, figures)
        if real_engine:
            engine_raises(work, figures)
            try:
                import vllm  # noqa: F401

                from synthlang.engines.vllm_engine import VLLMEngine
            except ImportError:
                figures.skipped.append("vLLM raising mid-batch (vLLM is not installed)")
            else:
                from synthlang import ir
                from synthlang.engines.base import EngineOptions

                engine = VLLMEngine(ir.Model(name="embedded", engine="vllm"), EngineOptions())
                try:
                    vllm_raises(work, figures, engine)
                finally:
                    engine.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-engine", action="store_true", help="leave out the real engines' cases (llama.cpp, vLLM)")
    args = parser.parse_args()
    started = time.perf_counter()
    figures = campaign(args.kills, args.seed, real_engine=not args.no_engine)
    print(figures.line() + f" ({time.perf_counter() - started:.0f} s)")
    for failure in figures.failures:
        print("  failed:", failure)
    for skipped in figures.skipped:
        print("  not run:", skipped)
    return 1 if figures.failures or figures.lost or figures.duplicated or figures.hung else 0


if __name__ == "__main__":
    sys.exit(main())
