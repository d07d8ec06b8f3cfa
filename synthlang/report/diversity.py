"""Text statistics for the report: distinct n-grams, near-duplicate rate, similarity to the seed
examples, histograms and summaries."""

from __future__ import annotations

import re
from collections.abc import Sequence

NEAR = 0.8


def _shingles(text: str, k: int = 5) -> set[str]:
    t = re.sub(r"\s+", " ", text.lower()).strip()
    return {t[i:i + k] for i in range(max(1, len(t) - k + 1))}


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def distinct_n(texts: list[str], n: int) -> float:
    grams, total = set(), 0
    for t in texts:
        words = t.lower().split()
        for i in range(len(words) - n + 1):
            grams.add(tuple(words[i:i + n]))
            total += 1
    return round(len(grams) / total, 4) if total else 0.0


def near_duplicate_rate(texts: list[str], threshold: float = NEAR) -> float:
    """Share of texts with another text at least `threshold` similar (MinHash LSH candidates,
    confirmed on exact shingle Jaccard)."""
    from datasketch import MinHash, MinHashLSH

    if len(texts) < 2:
        return 0.0
    lsh = MinHashLSH(threshold=threshold, num_perm=64)
    sets = [_shingles(t) for t in texts]
    hashes = []
    for i, s in enumerate(sets):
        m = MinHash(num_perm=64, seed=1)
        m.update_batch([x.encode() for x in s])
        hashes.append(m)
        lsh.insert(str(i), m)
    dup = 0
    for i, m in enumerate(hashes):
        if any(int(j) != i and _jaccard(sets[i], sets[int(j)]) >= threshold for j in lsh.query(m)):
            dup += 1
    return round(dup / len(texts), 4)


def nearest_seed_similarity(texts: list[str], seeds: list[str]) -> list[float]:
    seed_sets = [_shingles(s) for s in seeds]
    out = []
    for t in texts:
        s = _shingles(t)
        out.append(round(max((_jaccard(s, x) for x in seed_sets), default=0.0), 4))
    return out


def histogram(values: Sequence[float], bins: int = 10) -> dict:
    if not values:
        return {"edges": [], "counts": []}
    lo, hi = min(values), max(values)
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    return {"edges": [round(lo + i * width, 3) for i in range(bins + 1)], "counts": counts}


def summary(values: Sequence[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "min": min(values), "mean": round(sum(values) / len(values), 2), "max": max(values)}
