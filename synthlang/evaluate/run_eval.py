"""run_eval: every `evaluate` block of a plan against its generated output -> one result."""

from __future__ import annotations

from pathlib import Path

from ..files import write_json_atomic
from ..plan.model import Plan
from .classify import evaluate_classification
from .metrics import format_scored
from .spans import evaluate_spans


def run_eval(plan: Plan, spec_dir: Path, out_dir: Path) -> dict:
    evaluations = []
    for ev in plan.evaluate:
        if ev.mode == "spans":
            evaluations.append(evaluate_spans(plan, ev, spec_dir, out_dir))
        else:
            evaluations.append(evaluate_classification(plan, ev, spec_dir, out_dir))
    result = {"kind": "eval", "plan": plan.hash, "dataset": plan.dataset.name, "evaluations": evaluations}
    write_json_atomic(out_dir / "eval.json", result)
    return result


def render_eval_text(result: dict) -> str:
    lines = []
    for ev in result["evaluations"]:
        if ev["kind"] == "classification":
            lines.append(f"evaluate {ev['label']} (text: {ev['text']}) on {ev['n_test']} held-out real rows "
                         f"from {ev['test']}; {ev['classifier']}; 95% bootstrap intervals")
            names = list(ev["sets"])
            width = max(12, *(len(c) + 4 for c in ev["classes"]))
            lines.append(f"{'':{width}}" + "".join(f"{n:>24}" for n in names))
            lines.append(f"{'train rows':{width}}" + "".join(f"{ev['sets'][n]['n_train']:>24}" for n in names))
            for metric in ("accuracy", "macro_f1"):
                lines.append(f"{metric:{width}}"
                             + "".join(f"{format_scored(ev['sets'][n][metric]):>24}" for n in names))
            for c in ev["classes"]:
                lines.append(f"{'F1 ' + c:{width}}" + "".join(
                    f"{format_scored(ev['sets'][n]['per_class_f1'][c]):>24}" for n in names))
            lines.append("real-share sweep (macro-F1): " + ", ".join(
                f"{s['real_share_target']}% -> {s['macro_f1']['value']:.3f} (n={s['n_train']})" for s in ev["sweep"]))
        else:
            lines.append(f"evaluate {ev['label']} (spans of {', '.join(ev['fields'])}) on {ev['n_test']} "
                         f"held-out real texts from {ev['test']}; {ev['tagger']}; {ev['match']} match")
            names = list(ev["sets"])
            lines.append(f"{'':12}" + "".join(f"{n:>24}" for n in names))
            lines.append(f"{'train rows':12}" + "".join(f"{ev['sets'][n]['n_train']:>24}" for n in names))
            for metric in ("precision", "recall", "f1"):
                lines.append(f"{metric:12}" + "".join(f"{format_scored(ev['sets'][n][metric]):>24}" for n in names))
        made = ev.get("synthetic_origins") or {}
        if set(made) - {"generated"}:
            lines.append("synthetic train rows: " + ", ".join(f"{n} {how}" for how, n in made.items())
                         + " (rewritten, resampled and copied rows grew from real rows)")
        for v in ev["verdicts"].values():
            lines.append(v["says"])
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
