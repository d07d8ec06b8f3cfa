"""`synthc eval` for extraction: a CRF span tagger (sklearn-crfsuite) trained on the `mentions`
spans of real, synthetic and blended data, scored by exact span match (field, start, end) on
held-out real annotated text: precision, recall and F1 with bootstrap intervals."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from .. import ir
from ..plan.model import Plan
from ..values import find_in_order
from .data import EvalInputError, origins, read_rows, real_rows, synthetic_rows_of
from .metrics import bootstrap, scored

TOKEN = re.compile(r"\w+|[^\w\s]")


def tokens(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in TOKEN.finditer(text)]


def spans_by_search(row: dict, text_field: str, fields: tuple[str, ...]) -> list[tuple[str, int, int]] | None:
    """Spans of the mentioned values found in order in the text (real rows carry values, not spans)."""
    text = row.get(text_field)
    if not isinstance(text, str):
        return None
    present = [f for f in fields if row.get(f) is not None]
    found = find_in_order(text, [str(row[f]) for f in present])
    return None if found is None else [(f, s, e) for f, (s, e) in zip(present, found)]


def spans_of(row: dict, text_field: str, fields: tuple[str, ...]):
    meta = row.get("_meta") or {}
    if "spans" in row and isinstance(row["spans"], list):
        return [(s["field"], s["start"], s["end"]) for s in row["spans"]]
    recorded = (meta.get("spans") or {}).get(text_field)
    if recorded:
        return [(s["field"], s["start"], s["end"]) for s in recorded]
    return spans_by_search(row, text_field, fields)


def _features(toks, i):
    w = toks[i][0]
    f = {"bias": 1.0, "lower": w.lower(), "suffix3": w[-3:].lower(), "prefix2": w[:2].lower(),
         "is_title": w.istitle(), "is_upper": w.isupper(), "is_digit": w.isdigit(), "len": min(len(w), 8),
         "shape": re.sub(r"[A-Z]", "A", re.sub(r"[a-z]", "a", re.sub(r"[0-9]", "0", w)))[:6]}
    for off in (-2, -1, 1, 2):
        j = i + off
        if 0 <= j < len(toks):
            o = toks[j][0]
            f[f"{off}:lower"] = o.lower()
            f[f"{off}:is_title"] = o.istitle()
            f[f"{off}:is_digit"] = o.isdigit()
        else:
            f[f"{off}:edge"] = True
    return f


def bio(text: str, spans) -> tuple[list, list[str]]:
    toks = tokens(text)
    labels = ["O"] * len(toks)
    for field, start, end in spans:
        first = True
        for k, (_, s, e) in enumerate(toks):
            if s >= start and e <= end:
                labels[k] = ("B-" if first else "I-") + field
                first = False
    return toks, labels


def decode(toks, labels) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []
    cur: list | None = None
    for (_, s, e), lab in zip(toks, labels):
        if lab.startswith("B-") or (lab.startswith("I-") and (cur is None or cur[0] != lab[2:])):
            if cur:
                out.append(tuple(cur))
            cur = [lab[2:], s, e]
        elif lab.startswith("I-"):
            assert cur is not None  # an I- label continuing the open span of its field
            cur[2] = e
        else:
            if cur:
                out.append(tuple(cur))
            cur = None
    if cur:
        out.append(tuple(cur))
    return out


def train_predict(train: list[tuple[str, list]], test_texts: list[str]) -> list[list[tuple[str, int, int]]]:
    import sklearn_crfsuite

    if not train:
        return [[] for _ in test_texts]
    X, Y = [], []
    for text, spans in train:
        toks, labels = bio(text, spans)
        X.append([_features(toks, i) for i in range(len(toks))])
        Y.append(labels)
    crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=0.1, c2=0.1, max_iterations=100)
    crf.fit(X, Y)
    out = []
    for text in test_texts:
        toks = tokens(text)
        pred = crf.predict_single([_features(toks, i) for i in range(len(toks))]) if toks else []
        out.append(decode(toks, pred))
    return out


def prf(gold: list[set], pred: list[set], idx=None) -> tuple[float, float, float]:
    idx = range(len(gold)) if idx is None else idx
    tp = sum(len(gold[i] & pred[i]) for i in idx)
    n_pred = sum(len(pred[i]) for i in idx)
    n_gold = sum(len(gold[i]) for i in idx)
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def evaluate_spans(plan: Plan, ev: ir.Evaluate, spec_dir: Path, out_dir: Path) -> dict:
    block = next((b for b in plan.blocks for m in b.mentions if ".".join(m.path) == ev.label), None)
    if block is None:
        raise EvalInputError(f"no generate block has a `mentions` field `{ev.label}`")
    fields = next(m.values for m in block.mentions if ".".join(m.path) == ev.label)
    test_rows = read_rows(spec_dir / ev.test)
    test = [(r[ev.label], spans_of(r, ev.label, fields)) for r in test_rows]
    test = [(t, s) for t, s in test if s is not None]
    if not test:
        raise EvalInputError(f"{ev.test} has no rows with `{ev.label}` and its mentioned values in order")
    real = [(r[ev.label], s) for r in real_rows(plan, block.schema_name)
            if (s := spans_of(r, ev.label, fields)) is not None]
    rows = synthetic_rows_of(plan, out_dir, [b.id for b in plan.blocks if b.schema_name == block.schema_name
                                             and any(".".join(m.path) == ev.label for m in b.mentions)])
    synthetic = [(r[ev.label], s) for r in rows if (s := spans_of(r, ev.label, fields)) is not None]
    sets = {"real": real, "synthetic": synthetic, "blend": real + synthetic}
    gold = [set(s) for _, s in test]
    seed = plan.dataset.seed
    results = {}
    preds = {}

    def score_of(pred: list[set], k: int) -> Callable[[list[int]], float]:
        return lambda idx: prf(gold, pred, idx)[k]

    def f1_gain(base: list[set], other: list[set]) -> Callable[[list[int]], float]:
        return lambda idx: prf(gold, other, idx)[2] - prf(gold, base, idx)[2]

    for name in ev.compare:
        pred = [set(p) for p in train_predict(sets[name], [t for t, _ in test])]
        preds[name] = pred
        p, r, f = prf(gold, pred)
        n = len(gold)
        results[name] = {
            "n_train": len(sets[name]),
            "precision": scored(p, bootstrap(n, score_of(pred, 0), seed)),
            "recall": scored(r, bootstrap(n, score_of(pred, 1), seed)),
            "f1": scored(f, bootstrap(n, score_of(pred, 2), seed)),
            "predictions": [sorted(list(x) for x in p) for p in pred],
        }
    verdicts = {}
    if "real" in preds:
        from .metrics import verdict
        for name in ("synthetic", "blend"):
            if name in preds:
                base, other = preds["real"], preds[name]
                value = prf(gold, other)[2] - prf(gold, base)[2]
                ci = bootstrap(len(gold), f1_gain(base, other), seed)
                delta = scored(value, ci)
                verdicts[name] = {"delta_f1": delta, "says": verdict(name.capitalize() + " data", delta, "span F1")}
    return {"kind": "spans", "label": ev.label, "fields": list(fields), "test": ev.test, "n_test": len(test),
            "tagger": "CRF (sklearn-crfsuite), BIO over word tokens", "match": "exact (field, start, end)",
            "bootstrap": {"resamples": 1000, "seed": seed}, "sets": results, "verdicts": verdicts,
            "synthetic_origins": origins(rows)}
