"""Batch files (`synthc run --batch-files`): the Batch API's submit/poll protocol against a
loopback test server (a stand-in for OpenAI's Batch API, answering as the fake engine would,
constraints enforced), a run killed while a batch is out and the resume collecting it, the
offline runner's files, the journal's batch lines and `synthc plan`'s estimate."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from synthlang.compiler import compile
from synthlang.engines.base import GenerationRequest
from synthlang.engines.batch_format import parse_output_line
from synthlang.engines.fake import FakeEngine
from synthlang.runtime.entries import BatchEntry
from synthlang.runtime.journal import JournalCorrupt, read_entries, read_lines
from synthlang.values import check_record

ROOT = Path(__file__).resolve().parents[1]
HEX64 = re.compile(r"[0-9a-f]{64}")


def fake_answer(body: dict) -> str:
    """What the fake engine writes for a chat-completions body: valid for its schema, a function
    of the request alone (a constrained model at a fixed seed)."""
    schema = body["response_format"]["json_schema"]["schema"]
    request = GenerationRequest(messages=tuple(body["messages"]), json_schema=schema,
                                max_tokens=int(body["max_tokens"]), seed=int(body["seed"]), temperature=1.0,
                                top_p=1.0)
    return FakeEngine().generate([request])[0].text or ""


def output_line(request: dict, n: int) -> str:
    text = fake_answer(request["body"])
    return json.dumps({"id": f"req-{n}", "custom_id": request["custom_id"],
                       "response": {"status_code": 200, "request_id": f"r{n}", "body": {
                           "id": f"cmpl-{n}", "object": "chat.completion",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                        "finish_reason": "stop"}],
                           "usage": {"completion_tokens": max(1, len(text) // 4)}}},
                       "error": None}) + "\n"


def refused_line(request: dict, n: int) -> str:
    return json.dumps({"id": f"req-{n}", "custom_id": request["custom_id"],
                       "response": {"status_code": 400, "request_id": f"r{n}",
                                    "body": {"error": {"message": "response_format is not supported"}}},
                       "error": None}) + "\n"


def broken_line(request: dict, n: int) -> str:
    line = json.loads(output_line(request, n))
    line["response"]["body"]["choices"][0]["message"]["content"] = "{\"kind\": not json"
    return json.dumps(line) + "\n"


class LoopbackBatchAPI:
    """A loopback test server speaking OpenAI's Batch API: POST /files (multipart, purpose batch),
    POST /batches, GET /batches/{id}, GET /batches (listing), GET /files/{id}/content. A batch
    stays in_progress until `hold` is cleared, then completes with one output line per request."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.uploads: list[list[dict]] = []       # the request lines of every uploaded file
        self.hold = threading.Event()             # set: batches stay in progress
        self.refuse = False                       # every request of a batch answered with HTTP 400
        self.broken = False                       # about a third of the answers (by seed) not JSON
        self.expire_first = False                 # the first batch expires with half its lines done
        self.page_size: int | None = None         # list batches in pages of this many (None: all at once)
        self.listed = 0                           # pages listed
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                data = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/files":
                    content = _multipart_file(data, self.headers["Content-Type"])
                    with outer.lock:
                        fid = f"file-{len(outer.files)}"
                        outer.files[fid] = content
                        outer.uploads.append([json.loads(line) for line in content.decode().splitlines()])
                    self._send(200, {"id": fid, "object": "file", "purpose": "batch", "bytes": len(content)})
                elif self.path == "/v1/batches":
                    body = json.loads(data)
                    assert body["endpoint"] == "/v1/chat/completions" and body["completion_window"] == "24h"
                    with outer.lock:
                        bid = f"batch_{len(outer.batches)}"
                        outer.batches[bid] = {"id": bid, "object": "batch", "status": "validating",
                                              "input_file_id": body["input_file_id"],
                                              "metadata": body.get("metadata") or {}}
                        self._send(200, outer.batches[bid])
                else:
                    self._send(404, {"error": {"message": "no such route"}})

            def do_GET(self):
                if self.path.startswith("/v1/batches?"):
                    with outer.lock:
                        if outer.page_size is None:
                            self._send(200, {"object": "list", "data": list(outer.batches.values())})
                            return
                        # as OpenAI lists them: newest first, `after` an id, pages with has_more
                        query = dict(p.split("=", 1) for p in self.path.split("?", 1)[1].split("&"))
                        newest = list(reversed(outer.batches.values()))
                        ids = [b["id"] for b in newest]
                        start = ids.index(query["after"]) + 1 if "after" in query else 0
                        page = newest[start:start + outer.page_size]
                        outer.listed += 1
                        self._send(200, {"object": "list", "data": page,
                                         "has_more": start + outer.page_size < len(newest)})
                elif self.path.startswith("/v1/batches/"):
                    with outer.lock:
                        b = outer.batches.get(self.path.rsplit("/", 1)[1])
                        if b is not None:
                            outer._advance(b)
                    self._send(200, b) if b else self._send(404, {"error": {"message": "no such batch"}})
                elif self.path.startswith("/v1/files/") and self.path.endswith("/content"):
                    content = outer.files.get(self.path.split("/")[3])
                    if content is None:
                        self._send(404, {"error": {"message": "no such file"}})
                    else:
                        self._send(200, None, raw=content)
                else:
                    self._send(404, {"error": {"message": "no such route"}})

            def _send(self, code, data, raw=None):
                payload = raw if raw is not None else json.dumps(data).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _advance(self, b: dict) -> None:
        if b["status"] == "validating":
            b["status"] = "in_progress"
        elif b["status"] == "in_progress" and not self.hold.is_set():
            lines = [json.loads(line) for line in self.files[b["input_file_id"]].decode().splitlines()]
            fid = f"file-{len(self.files)}"
            if self.expire_first and b["id"] == "batch_0":
                done = lines[:len(lines) // 2]
                self.files[fid] = "".join(output_line(r, n) for n, r in enumerate(done)).encode()
                b.update(status="expired", output_file_id=fid,
                         request_counts={"total": len(lines), "completed": len(done), "failed": 0})
                return
            self.files[fid] = "".join(refused_line(r, n) if self.refuse
                                      else broken_line(r, n) if self.broken and r["body"]["seed"] % 3 == 0
                                      else output_line(r, n) for n, r in enumerate(lines)).encode()
            b.update(status="completed", output_file_id=fid,
                     request_counts={"total": len(lines), "completed": len(lines), "failed": 0})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _multipart_file(data: bytes, content_type: str) -> bytes:
    boundary = content_type.split("boundary=")[1].encode()
    for part in data.split(b"--" + boundary):
        head, _, body = part.partition(b"\r\n\r\n")
        if b'name="file"' in head:
            return body.removesuffix(b"\r\n")
    raise AssertionError("no file in the upload")


@pytest.fixture
def server():
    s = LoopbackBatchAPI()
    yield s
    s.stop()


SPEC = """enum Kind {{ bug, idea, question }}
model m {{ engine openai  name "m"  endpoint "{url}" }}
schema Note {{
  kind:  Kind
  stars: int(1..5)
  drift: int(-9..-2)
  title: str(5..40)
}}
generate Note {{
  count 9
  using m
  quota kind {{ bug: 4, idea: 3, question: 2 }}
  prompt "Write a short {{{{ kind }}}} note."
}}
output "out" {{ format jsonl }}
"""


def write_spec(folder: Path, url: str) -> Path:
    spec = folder / "notes.synth"
    spec.write_text(SPEC.format(url=url))
    return spec


def synthc(*args, cwd: Path, timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "synthlang.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def start(*args, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "synthlang.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def records_checked(spec: Path) -> list[dict]:
    """The run's records, each checked against its schema and the quotas exactly, without the
    runtime's code."""
    plan = compile(spec).plan
    rows = [json.loads(line) for line in (spec.parent / "out/train.jsonl").read_text().splitlines()]
    block = plan.blocks[0]
    assert len(rows) == block.count == 9
    assert Counter(r["kind"] for r in rows) == Counter({c.key["kind"]: c.count for c in block.cells})
    for r in rows:
        check_record(plan.schemas["Note"], {k: v for k, v in r.items() if k != "_meta"}, plan.schemas.get,
                     require_generated=True)
        assert 1 <= r["stars"] <= 5 and -9 <= r["drift"] <= -2 and 5 <= len(r["title"]) <= 40
    assert len({r["_meta"]["id"] for r in rows}) == len(rows)
    return rows


def batch_lines(spec: Path) -> list[dict]:
    return [e for e in read_lines(spec.parent / "out/.synth/journal.jsonl") if e.get("kind") == "batch"]


def test_the_batch_api_protocol_against_a_loopback_server(tmp_path, server):
    spec = write_spec(tmp_path, server.url)
    proc = synthc("run", spec.name, "--batch-files", "api", "--batch-poll", "0.05", "--progress", "log", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = records_checked(spec)
    # one batch holds the whole first wave (every cell's attempts); the fake server's answers
    # all pass, so no top-up batch is needed
    assert len(server.uploads) == len(server.batches) == 1
    lines = server.uploads[0]
    assert len(lines) == 9
    assert all(HEX64.fullmatch(line["custom_id"]) for line in lines)
    assert len({line["custom_id"] for line in lines}) == 9
    assert {line["url"] for line in lines} == {"/v1/chat/completions"}
    body = lines[0]["body"]
    assert body["model"] == "m" and body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["properties"]["stars"] == {
        "type": "integer", "minimum": 1, "maximum": 5}
    # the journal says which batch held which attempts, and how it went
    journaled = batch_lines(spec)
    assert [e["state"] for e in journaled] == ["written", "out", "collected"]
    first = BatchEntry.from_json(journaled[0])
    assert first.block == "Note" and sum(n for _, _, n in first.attempts) == 9 and first.requests == 9
    assert journaled[1]["handle"] == "batch_0"
    assert "batch batch-" in proc.stderr and "9 results collected" in proc.stderr
    # a second run is served by the result cache: nothing is uploaded, the same records written
    again = synthc("run", spec.name, "--batch-files", "api", "--batch-poll", "0.05", "--fresh", "--progress", "log",
                   cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(server.uploads) == 1 and "9 reused from the cache" in again.stderr
    assert records_checked(spec) == rows


def _wait_for(what, predicate, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_run_killed_while_a_batch_is_out_resumes_by_collecting_it(tmp_path, server):
    spec = write_spec(tmp_path, server.url)
    server.hold.set()
    proc = start("run", spec.name, "--batch-files", "api", "--batch-poll", "0.05", "--progress", "log", cwd=tmp_path)
    try:
        _wait_for("the batch to be journaled as out",
                  lambda: (tmp_path / "out/.synth/journal.jsonl").is_file()
                  and any(e["state"] == "out" for e in batch_lines(spec)))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(server.batches) == 1 and not (tmp_path / "out/train.jsonl").exists()
    assert not list(read_entries(tmp_path / "out/.synth/journal.jsonl"))  # no attempt journaled yet
    sent = {line["custom_id"] for line in server.uploads[0]}
    server.hold.clear()   # the batch completes while no run is watching
    proc2 = synthc("run", spec.name, "--batch-files", "api", "--batch-poll", "0.05", "--progress", "log",
                   cwd=tmp_path)
    assert proc2.returncode == 0, proc2.stderr
    records_checked(spec)
    # collected, not sent again: no upload after the kill holds any of its requests
    assert len(server.batches) == 1 and len(server.uploads) == 1, [len(u) for u in server.uploads]
    assert len(sent) == 9
    assert [e["state"] for e in batch_lines(spec)] == ["written", "out", "collected"]


def test_top_ups_of_every_short_cell_go_in_one_next_batch(tmp_path, server):
    # a third of the answers are broken: the first batch leaves cells short, and the next
    # batch tops up all of them at once, not one batch per cell, one after another
    spec = write_spec(tmp_path, server.url)
    server.broken = True
    proc = synthc("run", spec.name, "--batch-files", "api", "--batch-poll", "0.05", "--progress", "log", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records_checked(spec)
    journal = tmp_path / "out/.synth/journal.jsonl"
    written = [BatchEntry.from_json(e) for e in batch_lines(spec) if e["state"] == "written"]
    attempts = list(read_entries(journal))
    in_first = {(c, a) for c, first, n in written[0].attempts for a in range(first, first + n)}
    counts = {0: 4, 1: 3, 2: 2}   # bug, idea, question
    ok = Counter(e["c"] for e in attempts if e["ok"] and (e["c"], e["a"]) in in_first)
    short = {c for c, n in counts.items() if ok[c] < n}
    assert len(short) >= 2, (ok, short)   # the case this test is about
    assert {c for c, _, _ in written[1].attempts} >= short
    assert len(written) <= 3, [w.attempts for w in written]
    # nothing asked twice, and every journaled attempt was in a batch
    sent = [line["custom_id"] for upload in server.uploads for line in upload]
    assert len(sent) == len(set(sent))
    batched = {(c, a) for w in written for c, first, n in w.attempts for a in range(first, first + n)}
    assert {(e["c"], e["a"]) for e in attempts} <= batched


def test_an_expired_batch_keeps_what_it_finished_and_the_rest_goes_in_the_next_batch(tmp_path, server):
    spec = write_spec(tmp_path, server.url)
    server.expire_first = True
    proc = synthc("run", spec.name, "--batch-files", "api", "--batch-poll", "0.05", "--progress", "log", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records_checked(spec)
    first = {line["custom_id"] for line in server.uploads[0]}
    later = [line["custom_id"] for upload in server.uploads[1:] for line in upload]
    assert len(server.uploads) >= 2 and len(first) == 9
    # the 4 the expired batch answered are used, not asked again; nothing is asked twice
    assert len(first & set(later)) == 0 and len(later) == len(set(later))
    assert "4 results collected, 5 requests without one" in proc.stderr, proc.stderr[-2000:]


def test_a_run_killed_as_it_handed_a_batch_over_finds_it_at_the_service(tmp_path, server):
    # killed after the batch was created and before the journal said so: the resume looks the
    # batch up by its name (metadata.synthc_batch) instead of uploading it a second time
    spec = write_spec(tmp_path, server.url)
    server.hold.set()
    proc = start("run", spec.name, "--batch-files", "api", "--batch-poll", "0.05", "--progress", "log", cwd=tmp_path)
    journal = tmp_path / "out/.synth/journal.jsonl"
    try:
        _wait_for("the batch to be journaled as out",
                  lambda: journal.is_file() and any(e["state"] == "out" for e in batch_lines(spec)))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(line for line in lines if '"state":"out"' not in line))
    assert [e["state"] for e in batch_lines(spec)] == ["written"]
    server.hold.clear()
    proc2 = synthc("run", spec.name, "--batch-files", "api", "--batch-poll", "0.05", "--progress", "log",
                   cwd=tmp_path)
    assert proc2.returncode == 0, proc2.stderr
    records_checked(spec)
    assert len(server.uploads) == len(server.batches) == 1
    assert [e["state"] for e in batch_lines(spec)] == ["written", "out", "collected"]


def test_a_batch_still_out_stops_the_run_resumably_and_the_next_run_collects_it(tmp_path, server):
    spec = write_spec(tmp_path, server.url)
    server.hold.set()
    proc = synthc("run", spec.name, "--batch-files", "api", "--batch-poll", "0.05", "--batch-wait", "0.3",
                  "--progress", "log", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert "is still out at the Batch API" in proc.stderr and "the next run collects it" in proc.stderr
    assert "Traceback" not in proc.stderr
    server.hold.clear()
    proc = synthc("run", spec.name, "--batch-files", "api", "--batch-poll", "0.05", "--progress", "log", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records_checked(spec)
    assert len(server.uploads) == 1


def test_a_batch_the_service_forgot_is_failed_and_its_requests_go_in_a_new_one(tmp_path, server):
    # the run stops while its batch is out; the service then loses the batch (deleted, or the
    # account changed): the next run is told so, and the one after sends the requests again
    spec = write_spec(tmp_path, server.url)
    server.hold.set()
    proc = synthc("run", spec.name, "--batch-files", "api", "--batch-poll", "0.05", "--batch-wait", "0.3",
                  "--progress", "log", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    server.batches.clear()
    server.hold.clear()
    proc = synthc("run", spec.name, "--batch-files", "api", "--batch-poll", "0.05", "--progress", "log", cwd=tmp_path)
    assert proc.returncode == 3 and "no longer knows this batch" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    proc = synthc("run", spec.name, "--batch-files", "api", "--batch-poll", "0.05", "--progress", "log", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records_checked(spec)
    assert len(server.uploads) == 2 and [len(u) for u in server.uploads] == [9, 9]


def test_a_service_refusing_every_request_of_a_batch_stops_the_run_with_its_reason(tmp_path, server):
    spec = write_spec(tmp_path, server.url)
    server.refuse = True
    proc = synthc("run", spec.name, "--batch-files", "api", "--batch-poll", "0.05", "--progress", "log", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert "refused every request of batch" in proc.stderr and "response_format is not supported" in proc.stderr
    assert "Traceback" not in proc.stderr and len(server.batches) == 1   # not batch after batch
    assert not (tmp_path / "out/train.jsonl").exists()
    # the service fixed, the same command makes the dataset: the refused requests go in a new batch
    server.refuse = False
    proc = synthc("run", spec.name, "--batch-files", "api", "--batch-poll", "0.05", "--progress", "log", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records_checked(spec)
    assert len(server.batches) == 2


def test_the_offline_runner_reads_the_output_file_another_program_writes(tmp_path):
    # an `engine openai` model whose batch files a program of the user's runs: here a thread
    # that answers every input file it finds, as vLLM's run_batch would
    spec = write_spec(tmp_path, "http://127.0.0.1:9/v1")
    folder = tmp_path / "out/.synth/batches"
    stop = threading.Event()

    def runner():
        while not stop.is_set():
            for path in folder.glob("*.input.jsonl") if folder.is_dir() else ():
                out = path.with_name(path.name.replace(".input.", ".output."))
                if not out.exists():
                    lines = [json.loads(line) for line in path.read_text().splitlines()]
                    tmp = out.with_name(out.name + ".part")
                    tmp.write_text("".join(output_line(r, n) for n, r in enumerate(lines)))
                    tmp.replace(out)
            time.sleep(0.05)

    thread = threading.Thread(target=runner, daemon=True)
    thread.start()
    try:
        proc = synthc("run", spec.name, "--batch-files", "offline", "--batch-poll", "0.05", "--progress", "log",
                      cwd=tmp_path)
    finally:
        stop.set()
        thread.join()
    assert proc.returncode == 0, proc.stderr
    records_checked(spec)
    assert len(list(folder.glob("*.input.jsonl"))) == 1
    assert "from an OpenAI-format batch runner" in proc.stderr


def test_plan_estimates_batches_and_tokens(tmp_path):
    spec = write_spec(tmp_path, "http://127.0.0.1:9/v1")
    proc = synthc("plan", spec.name, "--batch-files", "api", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"batch files: about 1 batch of 9 requests, \d+ tokens at most, plus up to 4 top-up", proc.stdout), proc.stdout
    data = json.loads(synthc("plan", spec.name, "--batch-files", "api", "--format", "json", cwd=tmp_path).stdout)
    assert data["blocks"][0]["batches"] == 1 and data["blocks"][0]["tokens"] > 0


def test_batch_files_are_refused_where_nothing_would_be_batched(tmp_path):
    (tmp_path / "s.synth").write_text('model m { engine llamacpp }\nschema R { k: "a" | "b" }\n'
                                      'generate R { count 2 using m }\noutput "out" { format jsonl }\n')
    proc = synthc("run", "s.synth", "--batch-files", "api", cwd=tmp_path)
    assert proc.returncode == 2 and "no model of this plan has engine openai" in proc.stderr, proc.stderr
    proc = synthc("run", "s.synth", "--batch-wait", "5", cwd=tmp_path)
    assert proc.returncode == 2 and "go with --batch-files" in proc.stderr, proc.stderr


@pytest.mark.parametrize("line, error, kind, reason", [
    # a transient failure of one line: the batch was its try, a later attempt asks in the next batch
    ({"custom_id": "k", "response": {"status_code": 500, "body": None}, "error": "overloaded"}, "HTTP 500",
     "exhausted", None),
    ({"custom_id": "k", "response": {"status_code": 400, "body": {"error": "bad schema"}}}, "HTTP 400",
     "deterministic", "request_refused"),
    ({"custom_id": "k", "response": None, "error": {"code": "batch_expired"}}, "batch_expired", "exhausted", None),
    ({"custom_id": "k", "response": {"status_code": 200, "body": {"choices": []}}}, "malformed reply",
     "deterministic", "malformed_reply"),
    ({"custom_id": "k", "response": {"status_code": 200, "body": {
        "choices": [{"message": {"content": "{\"a\""}, "finish_reason": "length"}]}}}, "max_tokens",
     "deterministic", "max_tokens"),
])
def test_an_output_line_reads_as_the_live_reply_would(line, error, kind, reason):
    custom_id, result = parse_output_line(json.dumps(line))
    assert custom_id == "k" and result is not None and result.text is None
    assert error in (result.error or "") and result.error_kind == kind and result.reason == reason


def test_an_output_line_with_a_completion():
    line = {"custom_id": "k", "response": {"status_code": 200, "body": {
        "choices": [{"message": {"content": "{\"a\":1}"}, "finish_reason": "stop"}], "usage": {"completion_tokens": 3}}}}
    custom_id, result = parse_output_line(json.dumps(line))
    assert (custom_id, result.text, result.tokens, result.error) == ("k", "{\"a\":1}", 3, None)
    assert parse_output_line("not json") == (None, None)
    assert parse_output_line(json.dumps({"no": "custom_id"})) == (None, None)


class Ledger:
    """The batch ledger's protocol over a list, for the engine's own tests."""

    def __init__(self):
        self.entries: list[BatchEntry] = []

    def record(self, entry):
        self.entries.append(entry)

    def latest(self, model, state):
        last = {e.name: e for e in self.entries if e.model == model}
        return [e for e in last.values() if e.state in state]

    def outstanding(self, model):
        return self.latest(model, ("written", "out"))

    def collected(self, model):
        return self.latest(model, ("collected",))

    def known(self, name):
        return any(e.name == name for e in self.entries)


class FilesRunner:
    """An offline runner that answers each input file at once, `answer` choosing each line."""

    def __init__(self, folder: Path, answer):
        self.folder, self.answer, self.where, self.inputs = folder, answer, "the test's runner", []

    def submit(self, name, input_path, requests):
        lines = [json.loads(line) for line in input_path.read_text().splitlines()]
        self.inputs.append((name, [r["custom_id"] for r in lines]))
        (self.folder / f"{name}.output.jsonl").write_text(
            "".join(self.answer(r, n) for n, r in enumerate(lines)))
        return name

    def find(self, name):
        return None

    def poll(self, handle):
        from synthlang.engines.batch_runners import BatchState

        return BatchState("done")

    def fetch(self, handle, state, folder, name):
        return [folder / f"{handle}.output.jsonl"]


def _batch_engine(tmp_path, ledger, runner):
    from synthlang import ir
    from synthlang.runtime.batch_engine import BatchEngine, BatchSettings

    model = ir.Model(name="m", engine="openai", model="m", endpoint="http://127.0.0.1:9/v1")
    return BatchEngine(model, runner, BatchSettings("offline", tmp_path, 0.01, None), ledger, {"model": "m"},
                       say=lambda text: None)


def _requests(n):
    return [GenerationRequest(messages=({"role": "user", "content": f"note {i}"},),
                              json_schema={"type": "object", "properties": {"kind": {"enum": ["a", "b"]}},
                                           "required": ["kind"], "additionalProperties": False},
                              max_tokens=16, seed=i, temperature=1.0, top_p=1.0) for i in range(n)]


def test_the_same_requests_sent_again_go_in_a_batch_of_a_new_name(tmp_path):
    # every line answered 503 the first time: the requests come back in a later batch, which an
    # offline runner must run anew, not find the first one's output under the same name
    seen: set[str] = set()

    def answer(request, n):
        first = request["custom_id"] not in seen
        seen.add(request["custom_id"])
        return refused_line(request, n).replace('"status_code": 400', '"status_code": 503') if first \
            else output_line(request, n)

    runner = FilesRunner(tmp_path, answer)
    engine = _batch_engine(tmp_path, Ledger(), runner)
    requests = _requests(3)
    first = engine.generate(requests)
    assert all(r.error and r.error_kind == "exhausted" for r in first)  # not retried inside the wave
    again = engine.generate(requests)
    assert all(r.error is None and r.text for r in again), [r.error for r in again]
    (name1, ids1), (name2, ids2) = runner.inputs
    assert ids1 == ids2 and name1 != name2


def test_a_collected_batch_s_results_are_read_again_on_resume_not_paid_for_twice(tmp_path):
    # a run collected a batch and ended before its results reached the result cache (killed, or
    # stopped by --batch-wait on a later batch): the next run answers from the batch's output
    ledger = Ledger()
    runner = FilesRunner(tmp_path, output_line)
    requests = _requests(4)
    got = _batch_engine(tmp_path, ledger, runner).generate(requests)
    assert [e.state for e in ledger.entries] == ["written", "out", "collected"]
    resumed = _batch_engine(tmp_path, ledger, runner)   # a new run: nothing in memory
    again = resumed.generate(requests)
    assert len(runner.inputs) == 1
    assert [r.text for r in again] == [r.text for r in got]


def test_a_batch_waited_for_says_now_and_then_that_it_is_still_out(tmp_path, monkeypatch):
    from synthlang.engines.batch_runners import BatchState
    from synthlang.runtime import batch_engine

    class Slow(FilesRunner):
        polls = 0

        def poll(self, handle):
            self.polls += 1
            return BatchState("done") if self.polls > 3 else BatchState("running", f"{self.polls} polls")

    monkeypatch.setattr(batch_engine, "WAIT_NOTE", 0.0)
    said: list[str] = []
    engine = _batch_engine(tmp_path, Ledger(), Slow(tmp_path, output_line))
    engine.say = said.append
    assert all(r.text for r in engine.generate(_requests(2)))
    still = [line for line in said if "still out at the test's runner" in line]
    assert len(still) == 3 and "(3 polls)" in still[-1]


def test_a_batch_line_in_the_journal_is_checked_like_every_other(tmp_path):
    journal = tmp_path / "journal.jsonl"
    entry = BatchEntry("batch-1", "m", "written", requests=3, block="B", attempts=((0, 0, 2), (1, 0, 1)))
    assert BatchEntry.from_json(entry.to_json()) == entry
    good = json.dumps({"plan": "p", "dataset": "d", "kind": "header"}) + "\n" + json.dumps(entry.to_json()) + "\n"
    journal.write_text(good)
    assert [BatchEntry.from_json(e) for e in read_lines(journal)] == [entry]
    assert list(read_entries(journal)) == []   # replay sees attempts only
    journal.write_text(good + json.dumps({"kind": "batch", "batch": "b", "model": "m", "state": "lost"}) + "\n")
    with pytest.raises(JournalCorrupt):
        list(read_lines(journal))


VLLM_SPEC = """model m { engine vllm  temperature 0.7 }
schema R {
  kind:  "a" | "b"
  stars: int(1..5)
  drift: float(-2.5..7.25)
  body:  str(5..60)
}
generate R { count 4 using m }
output "out" { format jsonl }
"""
# what the batch runner needs on vLLM's CPU build (as the vllm_server fixture of the engine matrix)
VLLM_CPU = ["--dtype", "bfloat16", "--enforce-eager", "--no-enable-chunked-prefill", "--gpu-memory-utilization", "0.3"]


def _has_vllm() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


@pytest.mark.engine
@pytest.mark.skipif(not _has_vllm() and not os.environ.get("SYNTHLANG_REQUIRE_VLLM"), reason="vLLM is not installed")
def test_vllm_s_own_batch_runner_runs_the_batch_files_end_to_end(tmp_path):
    # synthc leaves the files; vLLM's run_batch (the command synthc prints) runs each on the
    # embedded model, with the structured-output fields vLLM reads in a batch file's body
    from synthlang.engines.batch_runners import runner_command

    (tmp_path / "r.synth").write_text(VLLM_SPEC)
    model = compile(tmp_path / "r.synth").plan.models["m"]
    proc = start("run", "r.synth", "--batch-files", "offline", "--batch-poll", "0.5", "--progress", "log",
                 cwd=tmp_path)
    folder = tmp_path / "out/.synth/batches"
    runs = []
    deadline = time.time() + 1800
    try:
        while proc.poll() is None:
            assert time.time() < deadline, "the run did not end"
            for path in sorted(folder.glob("*.input.jsonl")) if folder.is_dir() else ():
                out = path.with_name(path.name.replace(".input.", ".output."))
                if out.exists():
                    continue
                command = shlex.split(runner_command(model, path, out))
                assert command[:3] == ["python", "-m", "vllm.entrypoints.openai.run_batch"]
                ran = subprocess.run([sys.executable, *command[1:], *VLLM_CPU], capture_output=True, text=True,
                                     timeout=900)
                assert ran.returncode == 0, ran.stderr[-3000:]
                runs.append(path)
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    assert runs and "run_batch" in stderr   # synthc said how to run the file
    # what went out: one line per request, the schema as vLLM's structured_outputs; compact JSON
    # is the runner's setting, in the command synthc prints
    first = [json.loads(line) for line in runs[0].read_text().splitlines()]
    assert len(first) >= 4 and all(HEX64.fullmatch(line["custom_id"]) for line in first)
    assert first[0]["body"]["structured_outputs"]["json"]["properties"]["stars"] == {
        "type": "integer", "minimum": 1, "maximum": 5}
    assert '"disable_any_whitespace": true' in stderr
    # the records, checked without the product's code: count, fields, bounds
    rows = [json.loads(line) for line in (tmp_path / "out/train.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    for r in rows:
        assert set(r) == {"kind", "stars", "drift", "body", "_meta"}
        assert r["kind"] in ("a", "b")
        assert isinstance(r["stars"], int) and 1 <= r["stars"] <= 5
        assert isinstance(r["drift"], (int, float)) and -2.5 <= r["drift"] <= 7.25
        assert isinstance(r["body"], str) and 5 <= len(r["body"]) <= 60
    # every record came from a line of vLLM's output files, by its request's content address
    outputs = [json.loads(line) for p in folder.glob("*.output.jsonl") for line in p.read_text().splitlines()]
    texts = [o["response"]["body"]["choices"][0]["message"]["content"] for o in outputs if o["response"]["body"]]
    written = [json.loads(t) for t in texts]
    # compact JSON: no whitespace outside the strings
    assert not any(re.search(r"\s", re.sub(r'"(\\.|[^"\\])*"', "", t)) for t in texts), texts
    for r in rows:   # (a text the plausibility filter cut back to a sentence end is a prefix of it)
        assert any(all(w.get(k) == r[k] for k in ("kind", "stars", "drift")) and w["body"].startswith(r["body"])
                   for w in written), r
    journaled = batch_lines(tmp_path / "r.synth")
    assert {e["batch"] for e in journaled if e["state"] == "collected"} == {p.name.split(".")[0] for p in runs}


def test_a_full_disk_while_a_batch_output_downloads_is_named_not_blamed_on_the_service(tmp_path, server,
                                                                                    monkeypatch):
    from synthlang import ir
    from synthlang.engines.base import EngineDead, EngineOptions
    from synthlang.engines.batch_runners import BatchAPI, BatchState

    api = BatchAPI(ir.Model(name="m", engine="openai", model="m", endpoint=server.url), EngineOptions(),
                   backoff=0.01)
    server.files["file-x"] = b'{"custom_id": "k"}\n'
    folder = tmp_path / "batches"
    folder.mkdir()
    real_open = open

    def full(path, mode="r", *a, **kw):
        if "w" in mode and str(path).startswith(str(folder)):
            raise OSError(28, "No space left on device")
        return real_open(path, mode, *a, **kw)

    monkeypatch.setattr("builtins.open", full)
    started = time.monotonic()
    with pytest.raises(EngineDead, match=r"could not write .*No space left on device"):
        api.fetch("batch_0", BatchState("done", "", ("file-x",)), folder, "b")
    assert time.monotonic() - started < 1.0  # not retried as if the service had not answered


def test_a_batch_handed_over_is_found_among_many_pages_of_the_account_s_batches(server):
    from synthlang import ir
    from synthlang.engines.base import EngineOptions
    from synthlang.engines.batch_runners import BatchAPI

    server.page_size = 100
    server.batches["batch_mine"] = {"id": "batch_mine", "status": "in_progress", "metadata": {"synthc_batch": "b-1"}}
    for i in range(150):  # other runs' batches, created after it: it is on the second page
        server.batches[f"batch_other{i}"] = {"id": f"batch_other{i}", "status": "completed",
                                             "metadata": {"synthc_batch": f"o-{i}"}}
    api = BatchAPI(ir.Model(name="m", engine="openai", model="m", endpoint=server.url), EngineOptions())
    assert api.find("b-1") == "batch_mine" and server.listed == 2
    assert api.find("not-there") is None and server.listed == 4


def test_requests_are_split_into_batch_files_under_the_service_s_size_limit(tmp_path, monkeypatch):
    from synthlang.runtime import batch_engine

    monkeypatch.setattr(batch_engine, "MAX_BATCH_BYTES", 2500)
    runner = FilesRunner(tmp_path, output_line)
    engine = _batch_engine(tmp_path, Ledger(), runner)
    got = engine.generate(_requests(7))
    assert all(r.text for r in got)
    sizes = [input_path.stat().st_size for input_path in sorted(tmp_path.glob("*.input.jsonl"))]
    assert len(runner.inputs) == len(sizes) >= 2 and all(s <= 2500 for s in sizes)
    assert sorted(k for _, ids in runner.inputs for k in ids) == sorted({k for _, ids in runner.inputs for k in ids})
    assert sum(len(ids) for _, ids in runner.inputs) == 7


def test_every_key_a_batch_line_is_written_with_is_one_the_journal_accepts():
    from synthlang.runtime.entries import BATCH_KEYS

    full = BatchEntry("b", "m", "out", handle="h", requests=3, block="Note", attempts=((0, 0, 3),))
    assert set(full.to_json()) == BATCH_KEYS
    assert BatchEntry.from_json(full.to_json()) == full
