"""A file-backed sampler over files of 1,000 to 100,000 rows: what compiling costs and what the
plan holds, and what drawing costs at run time.

    python bench/bench_draw_file.py [--rows 1000,10000,100000]

Each compile runs in its own process (its peak memory is that process's); the plan's size shows
that the rows stay in the file (the plan holds its digest and row count). The run-time side reads
and indexes the file once, then draws 10,000 records' fields."""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = ("billing", "login", "outage", "refund", "data_loss")
SPEC = '''seeds topics from "topics.csv" as Topic
schema Topic {
  category: "billing" | "login" | "outage" | "refund" | "data_loss"
  name: str(1..80)
  weight: float
}
schema Ticket {
  category: "billing" | "login" | "outage" | "refund" | "data_loss" ~ uniform
  topic: str ~ draw(topics.name matching category) weighted by topics.weight
  body: str(20..400)
}
generate Ticket { count 1000 }
'''

CHILD = r'''
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
started = time.perf_counter()
from synthlang.compiler import compile
result = compile(__import__("pathlib").Path(sys.argv[1]))
seconds = time.perf_counter() - started
assert result.ok, [d.message for d in result.diagnostics]
plan = result.plan.to_json()
t0 = time.perf_counter()
from synthlang.runtime.drawn_rows import DrawnRows
from synthlang.runtime.sampling import draw_fields
import random
drawn = DrawnRows(result.plan, __import__("pathlib").Path(sys.argv[1]).parent)
drawn.load_all()
load = time.perf_counter() - t0
block = result.plan.blocks[0]
t1 = time.perf_counter()
for seed in range(10000):
    draw_fields(block, random.Random(seed), result.plan.schemas.get, None, drawn)
draws = time.perf_counter() - t1
print(json.dumps({"compile_s": seconds, "plan_bytes": len(plan), "load_s": load, "draw_10k_s": draws,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def write_project(folder: Path, rows: int) -> Path:
    rng = random.Random(rows)
    lines = ["category,name,weight"]
    for i in range(rows):
        lines.append(f"{CATEGORIES[i % len(CATEGORIES)]},topic number {i} about {rng.choice(('cards', 'keys', 'pages'))},"
                     f"{rng.randint(1, 9)}")
    (folder / "topics.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "spec.synth").write_text(SPEC, encoding="utf-8")
    return folder / "spec.synth"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000,10000,100000")
    args = parser.parse_args()
    print(f"{'rows':>8}  {'file MB':>7}  {'compile s':>9}  {'plan KB':>7}  {'peak RSS MB':>11}  "
          f"{'read+index s':>12}  {'10k draws s':>11}")
    for n in (int(x) for x in args.rows.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            spec = write_project(Path(tmp), n)
            proc = subprocess.run([sys.executable, "-c", CHILD, str(spec), str(ROOT)], capture_output=True, text=True,
                                  timeout=900)
            if proc.returncode != 0:
                print(proc.stderr[-2000:])
                return 1
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            size = (Path(tmp) / "topics.csv").stat().st_size / 2**20
            print(f"{n:>8,}  {size:>7.1f}  {r['compile_s']:>9.2f}  {r['plan_bytes'] / 1024:>7.1f}  "
                  f"{r['peak_rss_mb']:>11.0f}  {r['load_s']:>12.2f}  {r['draw_10k_s']:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
