"""How fast the language server re-checks an open spec as it is edited. Starts `synthc lsp`,
opens an example spec, then per round edits it (a prompt word, alternately) and at once asks
for a hover, which makes the server check the new text on the spot (no debounce), and times
the answer; the server's own log line gives the check alone. Prints the median and the worst
of both after start-up (the first check, which loads the grammar, is shown apart). Target: a
re-check under 50 ms after start-up.

    python bench/bench_lsp.py [--spec specs/support_tickets/tickets.synth] [--rounds 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from lsp_client import LspClient  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", type=Path, default=ROOT / "specs/support_tickets/tickets.synth")
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args()
    spec = args.spec.resolve()
    text = spec.read_text()
    client = LspClient(spec.parent)
    started = time.perf_counter()
    client.initialize(spec.parent)
    client.open(spec, text)
    client.diagnostics(spec)
    first = time.perf_counter() - started
    line = text.count("\n", 0, text.index("prompt")) + 1
    answers, checks = [], []
    for i in range(args.rounds):
        edited = text.replace("realistic", "plausible" if i % 2 else "believable", 1)
        t0 = time.perf_counter()
        client.change(spec, edited, i + 2)
        client.request("textDocument/hover", {"textDocument": {"uri": spec.as_uri()},
                                              "position": {"line": line, "character": 6}})
        answers.append((time.perf_counter() - t0) * 1000)
    client.drain()
    for m in client.seen:
        if m.get("method") == "window/logMessage" and m["params"]["message"].startswith("checked "):
            checks.append(float(m["params"]["message"].split(" in ")[1].split()[0]))
    client.shutdown()
    print(f"{spec.name}: start-up to first diagnostics {first * 1000:.0f} ms "
          f"(first check {checks[0]:.1f} ms)")
    later = checks[1:]
    print(f"  edit -> hover answered, {len(answers)} rounds: median {statistics.median(answers):.1f} ms, "
          f"worst {max(answers):.1f} ms")
    print(f"  the re-check itself ({len(later)}): median {statistics.median(later):.1f} ms, "
          f"worst {max(later):.1f} ms (target: under 50 ms)")


if __name__ == "__main__":
    main()
