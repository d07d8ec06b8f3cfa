"""The engine x backend matrix, measured in one run on one machine: for each in-process engine
and constraint backend, the same requests (the ones synthc makes for one example spec, same
prompts, seeds and max_tokens) generated constrained and then unconstrained on the same loaded
engine. Prints records/s, schema-valid % and the constrained/unconstrained ratio per backend.

    python bench/bench_backends.py [--records 16] [--only llamacpp|vllm]

vLLM rows need vLLM (the README's test command installs its CPU build)."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

SPEC = """
dataset bench {{ seed 5 }}
model writer {{ engine {engine}{backend} temperature 0.8 }}
schema Ticket {{
  product:  str ~ pick("mobile app", "web dashboard", "API", "desktop client")
  mood:     "calm" | "angry" | "confused" ~ uniform
  subject:  str(8..60)
  body:     str(40..240)
  priority: int(1..5)
  tags:     list[str(3..12)](1..2)
}}
generate Ticket {{
  count {n}
  using writer
  prompt "Write one {{{{ mood }}}} customer support ticket about the {{{{ product }}}}."
}}
output "out" {{ format jsonl }}
"""

MATRIX = [("llamacpp", "auto"), ("llamacpp", "outlines"),
          ("vllm", "auto"), ("vllm", "xgrammar"), ("vllm", "outlines")]


def _valid(text: str | None, schema: dict) -> bool:
    import jsonschema

    try:
        jsonschema.validate(json.loads(text or ""), schema)
        return True
    except (ValueError, jsonschema.ValidationError):
        return False


def measure(engine_name: str, backend: str, records: int) -> dict:
    from synthlang.compiler import compile
    from synthlang.engines.base import EngineOptions
    from synthlang.engines.registry import get_engine
    from synthlang.runtime.attempts import Attempts
    from synthlang.runtime.options import RunOptions

    tmp = Path(tempfile.mkdtemp())
    (tmp / "bench.synth").write_text(SPEC.format(engine=engine_name, backend=f"  backend {backend} ", n=records))
    plan = compile(tmp / "bench.synth").plan
    block = plan.blocks[0]
    start = time.perf_counter()
    options = EngineOptions()
    engine = get_engine(plan.models["writer"], options)
    startup = time.perf_counter() - start
    prep = Attempts(plan, RunOptions(out_dir=tmp / "unused"))
    requests = [prep.prepare(block, 0, a)[2] for a in range(records)]
    engine.generate(requests[:2])  # warm-up: grammar compilation is start-up, not generation
    row = {"engine": engine_name, "backend": backend, "startup_s": round(startup, 1)}
    for label, constrained in (("constrained", True), ("unconstrained", False)):
        options.constrained = constrained
        t = time.perf_counter()
        results = engine.generate(requests)
        seconds = time.perf_counter() - t
        row[label] = {"records_per_s": round(records / seconds, 3),
                      "tokens_per_s": round(sum(r.tokens for r in results) / seconds, 1),
                      "valid_pct": round(100 * sum(_valid(r.text, block.json_schema) for r in results) / records, 1)}
    row["ratio_records"] = round(row["constrained"]["records_per_s"] / row["unconstrained"]["records_per_s"], 2)
    engine.close()
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=16)
    ap.add_argument("--only", choices=("llamacpp", "vllm"))
    args = ap.parse_args()
    rows = []
    for engine_name, backend in MATRIX:
        if args.only and engine_name != args.only:
            continue
        row = measure(engine_name, backend, args.records)
        rows.append(row)
        c, u = row["constrained"], row["unconstrained"]
        print(f"{engine_name:9} {backend:9} start {row['startup_s']:6.1f} s | constrained {c['records_per_s']:6.3f} rec/s "
              f"{c['tokens_per_s']:6.1f} tok/s {c['valid_pct']:5.1f}% valid | unconstrained {u['records_per_s']:6.3f} rec/s "
              f"{u['tokens_per_s']:6.1f} tok/s {u['valid_pct']:5.1f}% valid | constrained/unconstrained {row['ratio_records']:.2f}",
              flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
