"""`synthc eval` for class labels: the same TF-IDF + logistic-regression classifier trained on
real-only, synthetic-only and blended data and on a sweep of real shares, scored on held-out
real rows."""

from __future__ import annotations

import random
from pathlib import Path

from .. import ir
from ..plan.model import Plan
from .data import EvalInputError, origins, read_rows, real_rows, synthetic_rows_of
from .metrics import classification_scores, paired_delta, verdict

SWEEP = (0, 25, 50, 75, 100)


def _label(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _pairs(rows: list[dict], text: str, label: str) -> tuple[list[str], list[str]]:
    keep = [r for r in rows if isinstance(r.get(text), str) and r.get(label) is not None]
    return [r[text] for r in keep], [_label(r[label]) for r in keep]


def train_predict(train_x: list[str], train_y: list[str], test_x: list[str]) -> list[str]:
    """Fit the evaluation classifier and predict; a one-class training set predicts that class."""
    if not train_x:
        return [""] * len(test_x)
    if len(set(train_y)) == 1:
        return [train_y[0]] * len(test_x)
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1),
                          LogisticRegression(max_iter=2000))
    model.fit(train_x, train_y)
    return list(model.predict(test_x))


def evaluate_classification(plan: Plan, ev: ir.Evaluate, spec_dir: Path, out_dir: Path) -> dict:
    block = next((b for b in plan.blocks if plan.schemas[b.schema_name].field(ev.label) is not None), None)
    if block is None:
        raise EvalInputError(f"no generate block makes records with a `{ev.label}` field")
    schema = plan.schemas[block.schema_name]
    classes = [_label(v) for v in ir.options_of(schema.require(ev.label).type) or ()]
    test_rows = read_rows(spec_dir / ev.test)
    for number, row in enumerate(test_rows, start=1):
        value = row.get(ev.label)
        if classes and value is not None and _label(value) not in classes:
            # scored, it would count as an error of every classifier, and no training row has it
            raise EvalInputError(f"{ev.test}: row {number} has {ev.label} {_label(value)!r}, which is not a value "
                                 f"of `{ev.label}` ({', '.join(classes)})")
    test_x, test_y = _pairs(test_rows, ev.text, ev.label)
    if not test_x:
        raise EvalInputError(f"{ev.test} has no rows with both `{ev.text}` and `{ev.label}`")
    real_x, real_y = _pairs(real_rows(plan, block.schema_name), ev.text, ev.label)
    synthetic = synthetic_rows_of(plan, out_dir, [b.id for b in plan.blocks if b.schema_name == block.schema_name])
    syn_x, syn_y = _pairs(synthetic, ev.text, ev.label)
    seed = plan.dataset.seed
    sets = {"real": (real_x, real_y), "synthetic": (syn_x, syn_y),
            "blend": (real_x + syn_x, real_y + syn_y)}
    results, predictions = {}, {}
    for name in ev.compare:
        x, y = sets[name]
        pred = train_predict(x, y, test_x)
        predictions[name] = pred
        results[name] = {"n_train": len(x), **classification_scores(test_y, pred, classes, seed),
                         "predictions": pred}
    sweep = []
    rng = random.Random(seed)
    shuffled = list(range(len(syn_x)))
    rng.shuffle(shuffled)
    for share in SWEEP:
        if share == 100:
            x, y = real_x, real_y
        elif share == 0:
            x, y = syn_x, syn_y
        else:
            n_syn = min(len(syn_x), round(len(real_x) * (100 - share) / share))
            idx = shuffled[:n_syn]
            x = real_x + [syn_x[i] for i in idx]
            y = real_y + [syn_y[i] for i in idx]
        pred = train_predict(x, y, test_x)
        scores = classification_scores(test_y, pred, classes, seed)
        sweep.append({"real_share_target": share,
                      "real_share": round(len(real_x) / len(x), 4) if x and share not in (0,) else 0.0,
                      "n_train": len(x), "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]})
    verdicts = {}
    if "real" in predictions:
        for name in ("synthetic", "blend"):
            if name in predictions:
                delta = paired_delta(test_y, predictions["real"], predictions[name], classes, seed)
                verdicts[name] = {"delta_macro_f1": delta, "says": verdict(name.capitalize() + " data", delta)}
    return {"kind": "classification", "label": ev.label, "text": ev.text, "test": ev.test,
            "n_test": len(test_x), "classes": classes, "classifier": "tfidf(1-2 grams) + logistic regression",
            "bootstrap": {"resamples": 1000, "seed": seed}, "sets": results, "sweep": sweep,
            "verdicts": verdicts, "synthetic_origins": origins(synthetic)}
