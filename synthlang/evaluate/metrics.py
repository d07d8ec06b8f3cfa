"""Scores with bootstrap confidence intervals over the test rows (seeded, percentile)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

N_BOOT = 1000


def f1_per_class(y_true: Sequence, y_pred: Sequence, classes: Sequence) -> dict:
    tp: dict = {}
    fp: dict = {}
    fn: dict = {}
    for t, p in zip(y_true, y_pred):
        if t == p:
            tp[t] = tp.get(t, 0) + 1
        else:
            fp[p] = fp.get(p, 0) + 1
            fn[t] = fn.get(t, 0) + 1
    out = {}
    for c in classes:
        k = tp.get(c, 0)
        out[c] = 0.0 if k == 0 else 2 * k / (2 * k + fp.get(c, 0) + fn.get(c, 0))
    return out


def accuracy(y_true, y_pred) -> float:
    return sum(1 for t, p in zip(y_true, y_pred) if t == p) / len(y_true) if y_true else 0.0


def macro_f1(y_true, y_pred, classes) -> float:
    per = f1_per_class(y_true, y_pred, classes)
    return sum(per.values()) / len(per) if per else 0.0


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return 0.0
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def bootstrap(n: int, stat: Callable[[list[int]], float], seed: int, n_boot: int = N_BOOT) -> tuple[float, float]:
    """95% percentile interval of stat over resamples of the indices 0..n-1."""
    rng = random.Random(seed)
    stats = [stat([rng.randrange(n) for _ in range(n)]) for _ in range(n_boot)]
    return round(_percentile(stats, 0.025), 4), round(_percentile(stats, 0.975), 4)


def scored(value: float, ci: tuple[float, float]) -> dict:
    return {"value": round(value, 4), "ci95": list(ci)}


def format_scored(s: dict) -> str:
    """A scored value as text: `0.812 [0.770, 0.851]`."""
    return f"{s['value']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]"


def classification_scores(y_true: list, y_pred: list, classes: list, seed: int) -> dict:
    n = len(y_true)

    def pick(idx, fn):
        return fn([y_true[i] for i in idx], [y_pred[i] for i in idx])

    out = {
        "accuracy": scored(accuracy(y_true, y_pred), bootstrap(n, lambda idx: pick(idx, accuracy), seed)),
        "macro_f1": scored(macro_f1(y_true, y_pred, classes),
                           bootstrap(n, lambda idx: pick(idx, lambda t, p: macro_f1(t, p, classes)), seed)),
        "per_class_f1": {},
    }
    def class_f1(c) -> Callable[[list[int]], float]:
        return lambda idx: pick(idx, lambda t, p: f1_per_class(t, p, [c])[c])

    per = f1_per_class(y_true, y_pred, classes)
    for c in classes:
        out["per_class_f1"][c] = scored(per[c], bootstrap(n, class_f1(c), seed))
    return out


def paired_delta(y_true: list, pred_a: list, pred_b: list, classes: list, seed: int) -> dict:
    """macro-F1(b) - macro-F1(a) with a paired bootstrap interval."""
    n = len(y_true)

    def delta(idx):
        t = [y_true[i] for i in idx]
        return macro_f1(t, [pred_b[i] for i in idx], classes) - macro_f1(t, [pred_a[i] for i in idx], classes)

    value = macro_f1(y_true, pred_b, classes) - macro_f1(y_true, pred_a, classes)
    return scored(value, bootstrap(n, delta, seed))


def verdict(name: str, delta: dict, metric: str = "macro-F1") -> str:
    lo, hi = delta["ci95"]
    v = delta["value"]
    if lo > 0:
        return f"{name} beat the real-only baseline: {metric} {v:+.3f} (95% CI {lo:+.3f} to {hi:+.3f})."
    if hi < 0:
        return f"{name} made it worse than real-only: {metric} {v:+.3f} (95% CI {lo:+.3f} to {hi:+.3f})."
    return (f"{name} made no clear difference against real-only: {metric} {v:+.3f} "
            f"(95% CI {lo:+.3f} to {hi:+.3f} includes 0).")
