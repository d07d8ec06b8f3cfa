"""Compiler speed: `synthc check` of a typical spec as a whole process (it runs as a
pre-commit hook), compiling a generated spec with 100 schemas and 100 generate blocks, and
`synthc check` of hostile-sized input: a quota over 1,000 values, a 2 MB spec of long prompts,
the densest spec the token budget admits, and a 2 MB dense spec (refused before parsing).

    python bench/bench_compiler.py

Prints wall times and their ratio to the targets (0.3 s, 1 s and 2 s on a 2-core machine)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TYPICAL = ROOT / "specs" / "support_tickets" / "tickets.synth"


def large_spec(n: int = 100) -> str:
    parts = ["dataset big { seed 1 }\nenum Level { low, mid, high }\n"]
    for i in range(n):
        parts.append(f"""
schema S{i} {{
  level: Level
  topic: str ~ pick("a{i}", "b{i}", "c{i}")
  n:     int(1..9) ~ uniform
  title: str(5..80)
  body:  str(20..400)
  tags:  list[str(2..12)](0..4)
  size:  int = len(body)
}}
generate S{i} {{
  count {1000 + i}
  quota level {{ low: 50%, mid: 30%, high: 20% }}
  prompt "Write a {{{{ level }}}} {{{{ topic }}}} item, n={{{{ n }}}}."
  check len(body) > len(title)
  check size < 400 or level == "high"
  dedup body near 0.9
}}
""")
    return "".join(parts)


def quota_spec(values: int = 1000) -> str:
    names = [f"v{i}" for i in range(values)]
    return ("enum Label { " + ", ".join(names) + " }\nschema T { label: Label\n  text: str(10..200) }\n"
            "generate T {\n  count 100000\n  quota label { " + ", ".join(f"{n}: {100 / values}%" for n in names)
            + " }\n}\n")


def prose_spec(size: int = 2_000_000) -> str:
    """A large spec as large specs are written: a taxonomy enum, long prompt texts, a few blocks."""
    labels = [f"label_{i}" for i in range(20_000)]
    parts = ["enum Label { " + ", ".join(labels) + " }\n"]
    sentence = "Write about the customer's situation in plain words, with one concrete detail. "
    i = 0
    while sum(map(len, parts)) < size:
        body = "\n".join("    " + sentence * 4 for _ in range(200))
        parts.append(f'schema P{i} {{ label: Label ~ uniform\n  text: str(10..400) }}\n'
                     f'generate P{i} {{\n  count 100\n  prompt """\n{body}\n    Label: {{{{ label }}}}\n  """\n}}\n')
        i += 1
    return "".join(parts)


def dense_spec(size: int = 2_000_000) -> str:
    """The parser's worst case: 2 MB of small declarations (thousands of schemas and blocks), far
    over the token budget: refused with E0005 after counting, before parsing."""
    n = 100
    while len(large_spec(n)) < size:
        n *= 2
    return large_spec(n)


def budget_spec() -> str:
    """The most checking work a spec may ask for: small declarations up to the token budget."""
    from synthlang.syntax.size import MAX_SPEC_TOKENS, count_tokens

    n = 100
    while count_tokens(large_spec(n + 10), MAX_SPEC_TOKENS)[1] is None:
        n += 10
    return large_spec(n)


def time_process(args: list[str], runs: int = 7, exit_code: int = 0) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != exit_code:
            raise SystemExit(f"failed: {' '.join(args)}\n{proc.stderr}")
    return statistics.median(times)


def main() -> None:
    synthc = [sys.executable, "-m", "synthlang.cli"]
    time_process(synthc + ["check", str(TYPICAL)], runs=1)  # warm the grammar cache
    typical = time_process(synthc + ["check", str(TYPICAL)])
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "large.synth"
        spec.write_text(large_spec())
        from synthlang.compiler import compile

        start = time.perf_counter()
        result = compile(spec)
        in_process = time.perf_counter() - start
        assert result.ok and result.plan is not None and len(result.plan.blocks) == 100
        large = time_process(synthc + ["compile", str(spec), "-o", str(Path(tmp) / "plan.json")], runs=3)
        hostile = {}
        for name, text, exit_code in (("quota over 1,000 values", quota_spec(), 0),
                                      ("2 MB spec, prose and a 20k enum", prose_spec(), 0),
                                      ("small blocks up to the token budget", budget_spec(), 0),
                                      ("2 MB spec, 4k small blocks (E0005)", dense_spec(), 1)):
            path = Path(tmp) / "hostile.synth"
            path.write_text(text)
            hostile[name] = (time_process(synthc + ["check", str(path)], runs=3, exit_code=exit_code), len(text))
    python_start = time_process([sys.executable, "-c", "pass"])
    print(f"python start-up (floor)              {python_start * 1000:7.1f} ms")
    print(f"synthc check, typical spec (process) {typical * 1000:7.1f} ms   target 300 ms   ratio {typical / 0.3:.2f}")
    print(f"compile 100 schemas+blocks (process) {large * 1000:7.1f} ms   target 1000 ms  ratio {large / 1.0:.2f}")
    print(f"compile 100 schemas+blocks (in-proc) {in_process * 1000:7.1f} ms")
    for name, (seconds, size) in hostile.items():
        print(f"synthc check, {name:<36} ({size / 1e6:.1f} MB) {seconds * 1000:8.1f} ms   target 2000 ms  "
              f"ratio {seconds / 2.0:.2f}")
    probe = subprocess.run(synthc[:1] + ["-c", "import sys, synthlang.compiler; "
                           "print([m for m in ('llama_cpp','vllm','torch') if m in sys.modules])"],
                           capture_output=True, text=True)
    print(f"engines imported by synthlang.compiler: {probe.stdout.strip()}")


if __name__ == "__main__":
    main()
