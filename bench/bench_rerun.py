"""What an edit costs: wall time of reruns of an example spec against its first run, on the
embedded model, each `synthc run` timed as a whole process (start-up, compile, output and
report included). Target: an unchanged rerun under 5% of the first run.

    python bench/bench_rerun.py [--spec specs/support_tickets/tickets.synth] [--repeat 2]

Runs, in one temporary copy of the spec's folder, one after another:
  first       a fresh output folder: every request goes to the engine
  unchanged   the same command again (the journal says the dataset is complete; in later
              repeats "edit undone": the spec back as it was, rebuilt from the cache)
  cache only  the journal deleted: every record is made again from the result cache
  edited      the description edited (a new plan): rebuilt from the cache
  count +25%  `count` raised: only the new records are generated
and prints each one's wall time, its ratio to the first run and the engine requests it sent
and reused (from manifest.json). `--repeat` repeats the reruns to show the noise.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def synthc_run(spec: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "synthlang.cli", "run", str(spec), "--progress", "log"],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"synthc run failed:\n{proc.stderr[-3000:]}")
    return seconds


def output_folder(spec: Path) -> Path:
    match = re.search(r'^output\s+"([^"]+)"', spec.read_text(), re.M)
    if match is None:
        sys.exit(f"{spec} has no output block")
    return spec.parent / match.group(1)


def requests(out: Path) -> tuple[int, int]:
    blocks = json.loads((out / "manifest.json").read_text())["blocks"].values()
    return sum(b["requests_sent"] for b in blocks), sum(b["requests_reused"] for b in blocks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default="specs/support_tickets/tickets.synth")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    src = ROOT / args.spec
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / src.parent.name
        shutil.copytree(src.parent, folder, ignore=shutil.ignore_patterns("out"))
        spec = folder / src.name
        out = output_folder(spec)
        rows: list[tuple[str, float, tuple[int, int]]] = []
        first = synthc_run(spec)
        rows.append(("first", first, requests(out)))
        text = spec.read_text()
        for i in range(args.repeat):
            spec.write_text(text)
            rows.append(("unchanged" if i == 0 else "edit undone", synthc_run(spec), requests(out)))
            (out / ".synth/journal.jsonl").unlink()
            rows.append(("cache only", synthc_run(spec), requests(out)))
            spec.write_text(re.sub(r'description "', f'description "Edit {i}. ', text, count=1))
            rows.append(("edited", synthc_run(spec), requests(out)))
        count = re.search(r"^\s*count (\d+)", text, re.M)
        if count is not None:
            raised = int(count.group(1)) * 5 // 4
            spec.write_text(text.replace(count.group(0), count.group(0).replace(count.group(1), str(raised)), 1))
            rows.append((f"count {count.group(1)}->{raised}", synthc_run(spec), requests(out)))
    print(f"{args.spec} on the embedded model, each run a whole `synthc run` process")
    print(f"{'run':<16} {'seconds':>8} {'of first':>9} {'sent':>6} {'reused':>7}")
    for name, seconds, (sent, reused) in rows:
        print(f"{name:<16} {seconds:>8.2f} {seconds / first:>9.1%} {sent:>6} {reused:>7}")


if __name__ == "__main__":
    main()
