"""Batch files against live calls on vLLM: the same spec run twice with the embedded model, once
live (`engine vllm` in-process) and once with `--batch-files offline`, its files run by vLLM's own
batch runner (`python -m vllm.entrypoints.openai.run_batch`, started here for each file synthc
leaves). Neither run has a result cache, so every request is made. Reports records, completion
tokens, requests, batches and wall time of each, and how many records are the same (the same
requests at the same seeds give the same records when both paths decode them alike).

    python bench/bench_batch_files.py [--records 16]

Needs vLLM (its CPU build here); run from the repository root."""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = """
dataset bench {{ seed 5 }}
model writer {{ engine vllm  temperature 0.8 }}
schema Ticket {{
  mood:    "calm" | "angry" | "confused" ~ uniform
  stars:   int(1..5)
  subject: str(8..60)
  body:    str(30..160)
}}
generate Ticket {{
  count {n}
  using writer
  prompt "Write one {{{{ mood }}}} customer support ticket."
}}
output "out" {{ format jsonl }}
"""
# what vLLM's batch runner needs on its CPU build (the in-process engine sets the same)
VLLM_CPU = ["--dtype", "bfloat16", "--enforce-eager", "--no-enable-chunked-prefill", "--gpu-memory-utilization", "0.3"]


def synthc(*args: str) -> list[str]:
    return [sys.executable, "-m", "synthlang.cli", *args]


def journal_figures(out: Path) -> dict:
    entries = [json.loads(line) for line in (out / ".synth/journal.jsonl").read_text().splitlines()[1:]]
    attempts = [e for e in entries if e.get("kind") != "batch"]
    return {"attempts": len(attempts), "tokens": sum(e.get("tok") or 0 for e in attempts),
            "batches": len({e["batch"] for e in entries if e.get("kind") == "batch"})}


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]


def run_live(spec: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(synthc("run", str(spec), "--out", str(out), "--no-cache", "--progress", "log"), check=True,
                   cwd=ROOT)
    return time.perf_counter() - start


def run_batched(spec: Path, out: Path) -> tuple[float, float]:
    """Wall time of the run, and the part of it vLLM's batch runner took."""
    from synthlang.compiler import compile
    from synthlang.engines.batch_runners import runner_command

    model = compile(spec).plan.models["writer"]
    start = time.perf_counter()
    proc = subprocess.Popen(synthc("run", str(spec), "--out", str(out), "--no-cache", "--batch-files", "offline",
                                   "--batch-poll", "0.2", "--progress", "log"), cwd=ROOT)
    folder = out / ".synth/batches"
    runner = 0.0
    while proc.poll() is None:
        for path in sorted(folder.glob("*.input.jsonl")) if folder.is_dir() else ():
            output = path.with_name(path.name.replace(".input.", ".output."))
            if output.exists():
                continue
            command = shlex.split(runner_command(model, path, output))
            began = time.perf_counter()
            subprocess.run([sys.executable, *command[1:], *VLLM_CPU], check=True, capture_output=True)
            runner += time.perf_counter() - began
        time.sleep(0.2)
    if proc.returncode != 0:
        raise SystemExit(f"the batch-file run failed (exit {proc.returncode})")
    return time.perf_counter() - start, runner


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=16)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    spec = tmp / "bench.synth"
    spec.write_text(SPEC.format(n=args.records))
    live_wall = run_live(spec, tmp / "live")
    batch_wall, runner = run_batched(spec, tmp / "batch")
    live, batched = records(tmp / "live"), records(tmp / "batch")
    fl, fb = journal_figures(tmp / "live"), journal_figures(tmp / "batch")
    same = sum(1 for a, b in zip(live, batched) if a == b)
    print("| | records | attempts (requests) | completion tokens | batch files | wall time |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| live (`engine vllm` in-process) | {len(live)} | {fl['attempts']} | {fl['tokens']} | - | "
          f"{live_wall:.1f} s |")
    print(f"| `--batch-files offline` + vLLM's run_batch | {len(batched)} | {fb['attempts']} | {fb['tokens']} | "
          f"{fb['batches']} | {batch_wall:.1f} s (run_batch {runner:.1f} s) |")
    print(f"\nthe same records (values and provenance) in the same order: {same} of {len(live)}")


if __name__ == "__main__":
    main()
