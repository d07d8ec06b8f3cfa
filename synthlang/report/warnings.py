"""What looks wrong in a finished run, as short sentences the report opens with: a spike of
values at a length cap, copies of seed rows, near-duplicates, a plausibility filter or check
rejecting much of what the model wrote, a class whose acceptance is far below the others."""

from __future__ import annotations

from collections import Counter
from typing import Any

AT_CAP = 0.10          # share of a field's values at its maximum length
SEED_COPY = 0.10       # share of sampled values at least 0.8 similar to a seed row
NEAR_DUPLICATE = 0.10  # share of sampled values with a near-duplicate
REJECTED = 0.20        # share of attempts one kind of reason rejects
LOW_ACCEPTANCE = 0.5   # a class below this fraction of the other classes' acceptance
TRIMMED = 0.20         # share of records with a value cut back at its cap


def what_looks_wrong(blocks: list[dict[str, Any]], manifest: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for b in blocks:
        name = b["id"]
        for field, lens in b["lengths"].items():
            n, at_cap = lens.get("n", 0), lens.get("at_cap", 0)
            if n and at_cap / n >= AT_CAP:
                out.append(f"{name}: {at_cap / n:.0%} of the `{field}` values are at their {lens['cap']}-character "
                           "maximum; the model runs out of room (raise the bound or ask for shorter text)")
        for field, d in b["diversity"].items():
            copies = (d.get("seed_similarity") or {}).get("copies", 0)
            if d["sample"] and copies / d["sample"] >= SEED_COPY:
                out.append(f"{name}: {copies / d['sample']:.0%} of the `{field}` values nearly copy a seed row")
            if d["near_duplicate_rate"] >= NEAR_DUPLICATE:
                out.append(f"{name}: {d['near_duplicate_rate']:.0%} of the `{field}` values have a near-duplicate "
                           "(add `dedup` on it, or vary the prompt)")
        mb = manifest.get("blocks", {}).get(name, {})
        for kind, rate in b["rejection_rates"].items():
            if rate >= REJECTED:
                out.append(f"{name}: `{kind}` rejected {rate:.0%} of the attempts"
                           + (" (the model may be too weak for this spec)" if kind != "dedup" else ""))
        if b["trimmed"] and b["trimmed"] / max(b["accepted"] or 1, 1) >= TRIMMED:
            out.append(f"{name}: {b['trimmed']} records had a value cut back to a sentence or word end at its "
                       "maximum length")
        out += _low_classes(name, mb.get("cells", []))
    return out


def _low_classes(block: str, cells: list[dict[str, Any]]) -> list[str]:
    """Quota values whose acceptance is far below the acceptance of the block's other values."""
    out = []
    fields = sorted({k for c in cells for k in c.get("key", {})})
    for field in fields:
        accepted: Counter[str] = Counter()
        attempts: Counter[str] = Counter()
        for c in cells:
            value = str(c["key"].get(field))
            accepted[value] += c.get("accepted", 0)
            attempts[value] += c.get("attempts", 0)
        rates = {v: accepted[v] / attempts[v] for v in attempts if attempts[v]}
        for value, rate in rates.items():
            others = [r for v, r in rates.items() if v != value]
            if not others:
                continue
            typical = sorted(others)[len(others) // 2]
            if typical > 0 and rate < LOW_ACCEPTANCE * typical:
                out.append(f"{block}: {field} = {value} is accepted in {rate:.0%} of its attempts, against "
                           f"{typical:.0%} for the other values")
    return out

