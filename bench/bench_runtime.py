"""Runtime benchmarks, each a ratio measured in one run on one machine:

1. records/s with constraints divided by records/s without, on the embedded llama.cpp
   model, same prompts, same seeds, same max_tokens (target >= 0.9);
2. the share of wall time spent outside engine calls in a real `synthc run` (target < 5%);
3. peak memory of a 100,000-record run on the fake engine against a 10,000-record run
   (flat = records are streamed, not held).

    python bench/bench_runtime.py [--records 24] [--skip-model]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def constrained_vs_unconstrained(n: int) -> None:
    from synthlang import ir
    from synthlang.compiler import compile
    from synthlang.engines.base import EngineOptions
    from synthlang.engines.llamacpp import LlamaCppEngine
    from synthlang.runtime.attempts import Attempts
    from synthlang.runtime.options import RunOptions

    plan = compile(ROOT / "specs/support_tickets/tickets.synth").plan
    block = plan.blocks[0]
    attempts = Attempts(plan, RunOptions(out_dir=Path(tempfile.mkdtemp())))
    requests = []
    for i in range(n):
        ci = i % len(block.cells)
        _, values, req = attempts.prepare(block, ci, i)
        requests.append(req)
    model = ir.Model(name="embedded")
    results = {}
    for label, constrained in (("unconstrained", False), ("constrained", True)):
        engine = LlamaCppEngine(model, EngineOptions(constrained=constrained))
        engine.generate(requests[:1])  # warm-up
        start = time.perf_counter()
        out = engine.generate(requests)
        secs = time.perf_counter() - start
        tokens = sum(r.tokens for r in out)
        valid = sum(1 for r in out if r.text and _valid_json(r.text, block.json_schema))
        results[label] = (n / secs, tokens / secs, valid)
        engine.close()
    c, u = results["constrained"], results["unconstrained"]
    print(f"llama.cpp, {n} ticket prompts, SmolLM2-135M, max_tokens {block.max_tokens}")
    print(f"  unconstrained: {u[0]:.3f} records/s, {u[1]:.1f} tokens/s, {u[2]}/{n} schema-valid")
    print(f"  constrained:   {c[0]:.3f} records/s, {c[1]:.1f} tokens/s, {c[2]}/{n} schema-valid")
    print(f"  ratio constrained/unconstrained records/s: {c[0] / u[0]:.2f} (target >= 0.9)")
    print(f"  ratio constrained/unconstrained tokens/s:  {c[1] / u[1]:.2f}")


def _valid_json(text: str, schema: dict) -> bool:
    import jsonschema

    try:
        jsonschema.validate(json.loads(text), schema)
        return True
    except Exception:  # noqa: BLE001 - any failure means invalid
        return False


def overhead_share() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        spec_dir = Path(tmp) / "support_tickets"
        shutil.copytree(ROOT / "specs/support_tickets", spec_dir)
        text = (spec_dir / "tickets.synth").read_text().replace("count 40", "count 10")
        (spec_dir / "tickets.synth").write_text(text)
        proc = subprocess.run([sys.executable, "-m", "synthlang.cli", "run", str(spec_dir / "tickets.synth"),
                               "--progress", "log"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        m = json.loads((spec_dir / "out/support_tickets/manifest.json").read_text())
        b = m["blocks"]["Ticket"]
        print(f"synthc run, 10 tickets: wall {m['wall_seconds']:.1f} s (model load and probe included), "
              f"engine {m['engine_seconds_this_run']:.1f} s, attempts {b['attempts']}")
        print(f"  share of wall time outside engine calls: {m['outside_engine_share']:.1%} in all, "
              f"{m['outside_engine_share_after_startup']:.1%} after start-up "
              f"(model load and probe {m['startup_seconds']:.1f} s) (target < 5%)")


def peak_memory(records: int) -> float:
    code = f"""
import resource, sys, tempfile
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
from synthlang.compiler import compile
from synthlang.engines.fake import FakeEngine
from synthlang.runtime.driver import run_plan
from synthlang.runtime.options import RunOptions
tmp = Path(tempfile.mkdtemp())
spec = tmp / "s.synth"
spec.write_text('enum K {{ a, b, c }}\\nschema R {{ k: K\\n n: int(1..9) ~ uniform\\n t: str(20..120)\\n'
                ' u: list[str(2..8)](0..3) }}\\ngenerate R {{ count {records}\\n quota k {{ a: 50%, b: 30%, c: 20% }}\\n'
                ' dedup t exact }}\\noutput "out" {{ split train 90%, test 10% }}\\n')
plan = compile(spec).plan
run_plan(plan, RunOptions(out_dir=tmp / "out", engine_factory=lambda m: FakeEngine(batch=64), progress=False,
                          probe=False))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return int(proc.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=24)
    ap.add_argument("--skip-model", action="store_true")
    args = ap.parse_args()
    if not args.skip_model:
        constrained_vs_unconstrained(args.records)
        overhead_share()
    small, large = peak_memory(10_000), peak_memory(100_000)
    print(f"fake engine peak RSS: 10,000 records {small:.0f} MiB, 100,000 records {large:.0f} MiB, "
          f"ratio {large / small:.2f} (flat = close to 1)")


if __name__ == "__main__":
    main()
