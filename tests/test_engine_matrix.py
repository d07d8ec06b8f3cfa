"""The same spec on every engine: llama.cpp in-process, vLLM (its CPU build, with the embedded
model prepared for it), and an OpenAI-compatible server started on loopback inside the test
(llama-cpp-python's server). Each run must give schema-valid records and exact quotas.
Marked `engine`; CI installs vLLM's CPU build so none of them is skipped there."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest

from synthlang.compiler import compile
from synthlang.runtime.noise import restore_truth
from synthlang.values import check_record

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests/runtime_specs/engine_tickets.synth"
MODEL_BLOCK = re.compile(r"model writer \{.*?\n\}", re.S)
# model-written numbers with bounds, negative ones included, on every row that enforces them (all
# but llama-cpp-python's server, which drops integer bounds: the capability check refuses it, see
# test_capability_check_refuses_what_the_server_does_not_enforce). The Outlines backends get them
# as an exact regex (engines/json_regex.py), as outlines_core's own regex drops minimum and maximum
BOUNDED = SPEC.read_text().replace("  tags:     list[str(/[a-z]{3,12}/)](1..2)",
                                   "  tags:     list[str(/[a-z]{3,12}/)](1..2)\n  severity: int(1..3)\n"
                                   "  drift:    float(-2.5..7.25)")


def spec_with_model(tmp_path: Path, model_block: str, text: str | None = None) -> Path:
    folder = tmp_path / "spec"
    folder.mkdir(exist_ok=True)
    spec = folder / "tickets.synth"
    spec.write_text(MODEL_BLOCK.sub(model_block, text or SPEC.read_text()))
    return spec


def synthc(*args, timeout=1200, env=None):
    return subprocess.run([sys.executable, "-m", "synthlang.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def assert_valid_exact(spec: Path):
    plan = compile(spec).plan
    block = plan.blocks[0]
    out = spec.parent / "out"
    rows = [json.loads(l) for split in ("train", "test") for l in (out / f"{split}.jsonl").read_text().splitlines()]
    assert len(rows) == block.count
    assert Counter(r["intent"] for r in rows) == Counter({c.key["intent"]: c.count for c in block.cells})
    for r in rows:
        clean = restore_truth({k: v for k, v in r.items() if k != "_meta"}, r["_meta"])
        check_record(plan.schemas["Ticket"], clean, plan.schemas.get, require_generated=True)
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _server(log_dir: Path, what: str, args: list[str], port: int, ready_within: float):
    """A server started on loopback for the module's tests; its URL once it answers."""
    log_path = log_dir / "server.log"
    log = open(log_path, "w")  # a file, not a pipe: the server's logs must never block it
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + ready_within
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"{what} did not start: {log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        else:
            pytest.fail(f"{what} did not answer within {ready_within:g} s: {log_path.read_text()[-3000:]}")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    from llama_cpp import llama_cpp as C

    from synthlang.engines.embedded import embedded_model_path
    from synthlang.engines.gguf_weights import batched_weights

    # the F16 copy the llamacpp engine loads: llama-cpp-python 0.3.36's high-level Llama
    # crashes (SIGSEGV in llama_decode) on the embedded Q4_1 file on AVX-512/AMX machines
    model = batched_weights(C, embedded_model_path())
    port = _free_port()
    with _server(tmp_path_factory.mktemp("server"), "llama-cpp-python's server",
                 [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
                  "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"], port, 120) as url:
        yield url


# every backend each in-process engine accepts, the default (no `backend`, no `name`) first
LLAMACPP_BACKENDS = [None, "llguidance", "outlines"]


@pytest.mark.parametrize("backend", LLAMACPP_BACKENDS, ids=lambda b: b or "default")
def test_llamacpp_engine(tmp_path, backend):
    line = f"  backend {backend}\n" if backend else ""
    spec = spec_with_model(tmp_path, f"model writer {{\n  engine llamacpp\n{line}  temperature 0.7\n}}", BOUNDED)
    proc = synthc("run", str(spec), "--progress", "log")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_valid_exact(spec)


def test_llamacpp_engines_on_ray_workers(tmp_path):
    spec = spec_with_model(tmp_path, "model writer {\n  engine llamacpp\n  temperature 0.7\n}", BOUNDED)
    proc = synthc("run", str(spec), "--progress", "log", "--ray", "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = assert_valid_exact(spec)
    # a single-process run of the same plan after it is served by the Ray run's results and
    # writes the same records (without them, llama.cpp's batches differ between one engine and
    # two, and a batching engine's output depends on what shares its batch: docs/engines.md)
    single = tmp_path / "single"
    proc = synthc("run", str(spec), "--progress", "log", "--out", str(single),
                  "--cache", str(spec.parent / "out/.synth/cache"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "engine requests: 0 sent" in proc.stderr, proc.stderr[-3000:]
    again = [json.loads(l) for split in ("train", "test") for l in (single / f"{split}.jsonl").read_text().splitlines()]
    assert again == rows


def test_openai_engine_against_a_real_server(tmp_path, llama_server):
    spec = spec_with_model(tmp_path, f'model writer {{\n  engine openai\n  name "smollm2"\n'
                                     f'  endpoint "{llama_server}"\n  schema_format json_object\n'
                                     f'  concurrency 2\n  temperature 0.7\n}}')
    proc = synthc("run", str(spec), "--progress", "log")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_valid_exact(spec)


def test_openai_json_schema_refused_by_a_server_without_it(tmp_path, llama_server):
    # llama-cpp-python's server answers OpenAI's json_schema response_format with an error:
    # the run stops at once (exit 3), saying so, with nothing written
    spec = spec_with_model(tmp_path, f'model writer {{\n  engine openai\n  name "smollm2"\n'
                                     f'  endpoint "{llama_server}"\n  schema_format json_schema\n}}')
    proc = synthc("run", str(spec), "--progress", "log")
    assert proc.returncode == 3 and "failed its first request" in proc.stderr, proc.stderr[-3000:]
    assert not (spec.parent / "out/train.jsonl").exists()


def test_openai_structured_outputs_is_refused_by_a_server_that_ignores_it(tmp_path, llama_server):
    # llama-cpp-python's server does not read vLLM's `structured_outputs` field: the output is
    # unconstrained, and the conformance probe must stop the run before any record is kept
    spec = spec_with_model(tmp_path, f'model writer {{\n  engine openai\n  name "smollm2"\n'
                                     f'  endpoint "{llama_server}"\n  schema_format structured_outputs\n}}')
    proc = synthc("run", str(spec), "--progress", "log")
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert not (spec.parent / "out/train.jsonl").exists()


def test_capability_check_refuses_what_the_server_does_not_enforce(tmp_path, llama_server):
    # llama-cpp-python's server turns schemas into GBNF but drops integer bounds
    text = SPEC.read_text().replace("  tags:     list[str(/[a-z]{3,12}/)](1..2)", "  tags:     list[str(/[a-z]{3,12}/)](1..2)\n"
                                    "  severity: int(1..3)")
    spec = spec_with_model(tmp_path, f'model writer {{\n  engine openai\n  name "smollm2"\n'
                                     f'  endpoint "{llama_server}"\n  schema_format json_object\n}}', text)
    proc = synthc("run", str(spec), "--progress", "log")
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert re.search(r"does not enforce (maximum, )?minimum", proc.stderr), proc.stderr[-2000:]
    assert "Ticket.severity: `minimum`" in proc.stderr
    assert not (spec.parent / "out/train.jsonl").exists()


def _vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
        return True
    except ImportError:
        return False


needs_vllm = pytest.mark.skipif(not _vllm_available() and not os.environ.get("SYNTHLANG_REQUIRE_VLLM"),
                                reason="vLLM is not installed (the README's test command installs its CPU build)")
VLLM_BACKENDS = [None, "xgrammar", "guidance", "outlines"]
VLLM_LOG_LINE = re.compile(r"^(\(\w+ pid=\d+\) )?(INFO|WARNING|DEBUG) \d\d-\d\d ", re.M)


@needs_vllm
@pytest.mark.parametrize("backend", VLLM_BACKENDS, ids=lambda b: b or "default")
def test_vllm_engine(tmp_path, backend):
    # no `name`: the embedded model, prepared for vLLM on first use
    line = f"  backend {backend}\n" if backend else ""
    spec = spec_with_model(tmp_path, f"model writer {{\n  engine vllm\n{line}  temperature 0.7\n}}", BOUNDED)
    proc = synthc("run", str(spec), "--progress", "log")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_valid_exact(spec)
    # vLLM's own logs (its engine process's included) went to the run's log file, not here
    assert not VLLM_LOG_LINE.search(proc.stdout + proc.stderr), proc.stderr[-3000:]
    assert VLLM_LOG_LINE.search((spec.parent / "out/.synth/engine.log").read_text())


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    from synthlang.engines.prepare_vllm import prepare_embedded

    port = _free_port()
    # compact JSON on the server side too (free whitespace lets a small model run to max_tokens)
    config = json.dumps({"backend": "guidance", "disable_any_whitespace": True})
    with _server(tmp_path_factory.mktemp("vllm"), "vllm serve",
                 [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(prepare_embedded()),
                  "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "smollm2",
                  "--dtype", "bfloat16", "--max-model-len", "2048", "--enforce-eager",
                  "--no-enable-chunked-prefill", "--gpu-memory-utilization", "0.3",
                  "--structured-outputs-config", config], port, 600) as url:
        yield url


@needs_vllm
@pytest.mark.parametrize("schema_format", ["structured_outputs", "json_schema"])
def test_openai_engine_against_vllm_serve(tmp_path, vllm_server, schema_format):
    spec = spec_with_model(tmp_path, f'model writer {{\n  engine openai\n  name "smollm2"\n'
                                     f'  endpoint "{vllm_server}"\n  schema_format {schema_format}\n'
                                     f'  concurrency 4\n  temperature 0.7\n}}', BOUNDED)
    proc = synthc("run", str(spec), "--progress", "log")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_valid_exact(spec)


@pytest.mark.parametrize("engine, backend, fragment", [
    ("llamacpp", "xgrammar", "engine llamacpp has no `xgrammar` backend"),
    ("openai", "outlines", "engine openai has no `outlines` backend"),
])
def test_unavailable_backends_are_refused_by_check(tmp_path, engine, backend, fragment):
    endpoint = '\n  endpoint "http://127.0.0.1:9/v1"\n  name "m"' if engine == "openai" else ""
    spec = spec_with_model(tmp_path, f"model writer {{\n  engine {engine}{endpoint}\n  backend {backend}\n}}")
    proc = synthc("check", str(spec))
    assert proc.returncode == 1 and fragment in proc.stderr, proc.stderr
    line = next(i for i, l in enumerate(spec.read_text().splitlines(), 1) if l.strip().startswith("backend"))
    assert f"tickets.synth:{line}:" in proc.stderr
