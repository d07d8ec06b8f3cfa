"""The embedded engine's batching, measured in one process run on one machine:

1. side by side on a 30-ticket, 5-class spec, same model file, prompts and seeds:
   (a) `synthc run` (whole process: model load, probe, generation, checks, output);
   (b) a plain loop over llama-cpp-python's OpenAI-compatible server, one request at a time,
       with the same JSON Schema as response_format and up to 3 retries on invalid output,
       as a careful user would write it (the server's start-up is not counted).
   Prints records/s for both, the ratio (target: synthc >= 2x) and schema-valid %.
2. batched constrained vs batched unconstrained tokens/s on the same engine (target >= 0.9);
3. tokens/s against the batch size: 1, 2, 4, 8, 16 sequences decoded together, on the same
   requests (prompts evaluated included, so prefix reuse counts).

    python bench/bench_batching.py [--records 30] [--repeat 1] [--skip-loop] [--skip-curve]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ticket_spec(tmp: Path, records: int) -> Path:
    spec_dir = tmp / "support_tickets"
    shutil.copytree(ROOT / "specs/support_tickets", spec_dir)
    spec = spec_dir / "tickets.synth"
    spec.write_text(spec.read_text().replace("count 40", f"count {records}"))
    return spec


def requests_of(spec: Path, n: int):
    """The first n attempts' requests of the spec, spread over its cells as synthc spreads them."""
    from synthlang.compiler import compile
    from synthlang.runtime.attempts import Attempts
    from synthlang.runtime.options import RunOptions

    plan = compile(spec).plan
    block = plan.blocks[0]
    attempts = Attempts(plan, RunOptions(out_dir=spec.parent / "scratch"))
    out, per_cell = [], [0] * len(block.cells)
    for ci, cell in enumerate(block.cells):
        for _ in range(cell.count):
            out.append(attempts.prepare(block, ci, per_cell[ci])[2])
            per_cell[ci] += 1
    return plan, block, out[:n]


def valid(text: str | None, schema: dict) -> bool:
    import jsonschema

    try:
        jsonschema.validate(json.loads(text or ""), schema)
        return True
    except Exception:  # noqa: BLE001 - any failure means invalid
        return False


# 1a. synthc --------------------------------------------------------------------------------------
def synthc_run(spec: Path) -> dict:
    out = spec.parent / "out_synthc"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "synthlang.cli", "run", str(spec), "--out", str(out), "--fresh",
                           "--progress", "log"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    m = json.loads((out / "manifest.json").read_text())
    b = m["blocks"]["Ticket"]
    invalid = b["rejections"].get("invalid_output", 0) + b["rejections"].get("engine_error", 0)
    return {"records": b["accepted"], "wall": wall, "attempts": b["attempts"],
            "valid": (b["attempts"] - invalid) / b["attempts"], "startup": m.get("startup_seconds", 0.0)}


# 1b. the plain loop ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plain_loop(requests, threads: int) -> dict:
    from synthlang.engines.embedded import embedded_model_path

    port = _free_port()
    log = open(tempfile.mktemp(suffix=".log"), "w")  # noqa: SIM115 - open for the server's lifetime
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_model_path()),
                               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
                               "--n_threads", str(threads), "--n_threads_batch", str(threads)],
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise SystemExit(f"llama-cpp-python's server did not start (see {log.name})") from None
                time.sleep(0.5)
        records, first_valid, calls = 0, 0, 0
        start = time.perf_counter()
        for r in requests:
            for attempt in range(4):  # the first try and up to 3 retries
                body = {"messages": list(r.messages), "max_tokens": r.max_tokens, "temperature": r.temperature,
                        "top_p": r.top_p, "seed": (r.seed + attempt) % (2**31),
                        "response_format": {"type": "json_object", "schema": r.json_schema}}
                req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=600) as resp:
                    text = json.loads(resp.read())["choices"][0]["message"]["content"]
                calls += 1
                ok = valid(text, r.json_schema)
                first_valid += ok and attempt == 0
                if ok:
                    records += 1
                    break
        wall = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"records": records, "wall": wall, "calls": calls, "valid": first_valid / len(requests)}


# 2 and 3. the engine alone -----------------------------------------------------------------------
def engine_run(plan, block, requests, batch: int, constrained: bool, threads: int):
    """(tokens/s, schema-valid count, tokens per request) on a freshly loaded engine."""
    from synthlang.engines.base import EngineOptions
    from synthlang.engines.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine(plan.models[block.model], EngineOptions(constrained=constrained, batch=batch,
                                                                    threads=threads))
    try:
        start = time.perf_counter()
        out = engine.generate(requests)
        secs = time.perf_counter() - start
    finally:
        engine.close()
    return (sum(r.tokens for r in out) / secs, sum(1 for r in out if valid(r.text, block.json_schema)),
            [r.tokens for r in out])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=1, help="side-by-side rounds, back to back")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip-loop", action="store_true")
    ap.add_argument("--skip-curve", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = ticket_spec(Path(tmp), args.records)
        plan, block, requests = requests_of(spec, args.records)
        print(f"machine: {os.cpu_count()} CPUs, {args.threads} threads; model SmolLM2-135M (embedded); "
              f"{args.records} tickets, {len(block.cells)} classes, max_tokens {block.max_tokens}")
        if not args.skip_loop:
            for round_ in range(args.repeat):
                s = synthc_run(spec)
                loop = plain_loop(requests, args.threads)
                s_rate, l_rate = s["records"] / s["wall"], loop["records"] / loop["wall"]
                print(f"round {round_ + 1}:")
                print(f"  synthc run:  {s['records']} records in {s['wall']:.1f} s (start-up {s['startup']:.1f} s "
                      f"included) = {s_rate:.2f} records/s; {s['attempts']} attempts, "
                      f"{s['valid']:.0%} schema-valid")
                print(f"  plain loop:  {loop['records']} records in {loop['wall']:.1f} s = {l_rate:.2f} records/s; "
                      f"{loop['calls']} calls, {loop['valid']:.0%} schema-valid on the first try")
                print(f"  ratio synthc / loop: {s_rate / l_rate:.2f}x (target >= 2)")
        n = len(requests)
        con, ok_c, lengths = engine_run(plan, block, requests, 16, True, args.threads)
        # the same requests unconstrained, each stopped at the length its constrained run had:
        # the same decoding work with and without the masks (free text would run to max_tokens)
        same_work = [replace(r, max_tokens=max(1, t)) for r, t in zip(requests, lengths)]
        unc, _, _ = engine_run(plan, block, same_work, 16, False, args.threads)
        print(f"batch 16, {n} requests: constrained {con:.0f} tokens/s ({ok_c}/{n} schema-valid), "
              f"unconstrained {unc:.0f} tokens/s (same lengths); ratio {con / unc:.2f} (target >= 0.9)")
        if not args.skip_curve:
            base = None
            for b in (1, 2, 4, 8, 16):
                rate, _, _ = engine_run(plan, block, requests, b, True, args.threads)
                base = base or rate
                print(f"  batch {b:>2}: {rate:6.0f} tokens/s constrained, {rate / base:.2f}x batch 1")


if __name__ == "__main__":
    main()
