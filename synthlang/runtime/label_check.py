"""The label check: does a synthetic record's text read as its label?

A nearest-centroid classifier over TF-IDF features (word unigrams and bigrams, and the
character 3- to 5-grams of each word), fitted on the real rows of the record's schema. A record
leans to another label by its margin: the cosine similarity of its text to the nearest other
label's centroid minus that to its own label's. It is rejected (`off_label`) when the margin
exceeds what real rows show: the threshold is the 95th percentile of the margins of the real
rows themselves, each scored with its own label's centroid fitted without it (leave-one-out),
and never below MIN_MARGIN. So on data like the real rows, about 5% or fewer are rejected, and a
record is rejected only when it leans to another label more than 19 in 20 real rows do. It must
also be like that other label as much as 3 in 4 real rows are like their own (the 25th
percentile of their leave-one-out similarity): a text that says little about any label (a
greeting, a fragment) is not read as one.

Deterministic: the same rows give the same classifier, threshold and verdicts."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

QUANTILE = 0.95      # of the real rows' leave-one-out margins
MIN_MARGIN = 0.02    # the threshold's floor: a record is never rejected for a tie
LIKENESS = 0.25      # of the real rows' similarity to their own label (leave-one-out)
_WORD = re.compile(r"[^\W_]+|[?!$%#@]", re.UNICODE)

Vector = dict[str, float]


def label_text(value: Any) -> str:
    """A label as the check names it: true/false for a bool, the value's text otherwise."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _features(text: str) -> Counter[str]:
    words = [w.lower() for w in _WORD.findall(text)]
    out: Counter[str] = Counter()
    out.update("w:" + w for w in words)
    out.update("b:" + a + " " + b for a, b in pairwise(words))
    for w in words:
        padded = f" {w} "
        for n in (3, 4, 5):
            out.update("c:" + padded[i:i + n] for i in range(max(len(padded) - n + 1, 0)))
    return out


def _normalise(v: Vector) -> Vector:
    norm = math.sqrt(sum(x * x for x in v.values()))
    return {k: x / norm for k, x in v.items()} if norm > 0 else {}


def _dot(a: Vector, b: Vector) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(x * b.get(k, 0.0) for k, x in a.items())


@dataclass(frozen=True)
class Reading:
    read: str            # the label the text is closest to
    margin: float        # nearest other label's similarity minus the intended label's
    off: bool            # margin above the threshold: rejected


class LabelReader:
    def __init__(self, rows: list[tuple[str, str]]):
        """rows: (text, label) of the real rows."""
        rows = [(t, y) for t, y in rows if t.strip()]
        counted = [_features(t) for t, _ in rows]
        df: Counter[str] = Counter()
        for c in counted:
            df.update(c.keys())
        n = len(rows)
        self._idf = {k: math.log((1 + n) / (1 + d)) + 1.0 for k, d in df.items()}
        vectors = [self._weigh(c) for c in counted]
        sums: dict[str, Vector] = {}
        sizes: Counter[str] = Counter()
        for v, (_, y) in zip(vectors, rows):
            total = sums.setdefault(y, {})
            for k, x in v.items():
                total[k] = total.get(k, 0.0) + x
            sizes[y] += 1
        self.labels = sorted(sums)
        self._centroids = {y: _normalise(s) for y, s in sums.items()}
        margins, likeness = [], []
        for v, (_, y) in zip(vectors, rows):
            if sizes[y] < 2 or len(self.labels) < 2:
                continue
            own = _dot(v, _normalise({k: x - v.get(k, 0.0) for k, x in sums[y].items()}))
            other = max(_dot(v, self._centroids[c]) for c in self.labels if c != y)
            margins.append(other - own)
            likeness.append(own)
        self.threshold = max(_quantile(margins, QUANTILE), MIN_MARGIN) if margins else math.inf
        # how much a real row is like the rest of its label, at least, for 3 rows in 4: a text
        # less like any other label than that says too little to be read as that label
        self.likeness = _quantile(likeness, LIKENESS) if likeness else math.inf
        self.rows_scored = len(margins)

    def _weigh(self, counted: Counter[str]) -> Vector:
        return _normalise({k: (1.0 + math.log(c)) * self._idf[k] for k, c in counted.items() if k in self._idf})

    def read(self, text: str, intended: str) -> Reading | None:
        """How the text reads against its intended label; None when the check cannot tell (a
        label no real row has, or fewer than two labels)."""
        if intended not in self._centroids or len(self.labels) < 2:
            return None
        v = self._weigh(_features(text))
        scores = {y: _dot(v, c) for y, c in self._centroids.items()}
        best = max(self.labels, key=lambda y: (scores[y], y == intended))
        other = max(scores[y] for y in self.labels if y != intended)
        margin = other - scores[intended]
        return Reading(read=best, margin=round(margin, 4), off=margin > self.threshold and other >= self.likeness)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def record_text(record: dict[str, Any], fields: tuple[str, ...]) -> str:
    return "\n".join(str(record[f]) for f in fields if isinstance(record.get(f), str))


def reader_for(rows: list[dict[str, Any]], label: str, text: tuple[str, ...]) -> LabelReader:
    return LabelReader([(record_text(r, text), label_text(r[label])) for r in rows if r.get(label) is not None])


LABEL_SCHEMA_KEY = "label"


def label_schema(values: list[str]) -> dict[str, Any]:
    """The model's blind reading: one of the label's values."""
    return {"type": "object", "properties": {LABEL_SCHEMA_KEY: {"enum": values}},
            "required": [LABEL_SCHEMA_KEY], "additionalProperties": False}
