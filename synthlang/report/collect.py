"""What a generated dataset holds, read back from its files, manifest and plan in one streaming
pass (memory stays flat with the dataset's size): the numbers the card and the page show."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import ir
from ..evaluate.data import EvalInputError, iter_rows
from ..plan.layout import output_files
from ..plan.model import Plan
from .diversity import NEAR, distinct_n, histogram, near_duplicate_rate, nearest_seed_similarity, summary
from .inputs import read_evaluation, read_manifest, read_plan
from .warnings import what_looks_wrong


@dataclass(frozen=True)
class ReportData:
    """What the card and the page show: the plan, the run's manifest, per-block statistics
    (JSON-ready dicts) and the evaluation results when `synthc eval` has run."""

    plan: Plan
    manifest: dict[str, Any]
    blocks: list[dict[str, Any]]
    evaluation: dict[str, Any] | None
    looks_wrong: list[str]              # short sentences the report opens with


SAMPLE = 2000  # texts per field kept for the diversity measures (a seeded reservoir sample)


class _Reservoir:
    def __init__(self, k: int, seed: str):
        import random

        self.k, self.n, self.rng = k, 0, random.Random(seed)
        self.items: list[str] = []

    def add(self, item) -> None:
        self.n += 1
        if len(self.items) < self.k:
            self.items.append(item)
        else:
            j = self.rng.randrange(self.n)
            if j < self.k:
                self.items[j] = item


def collect(out_dir: Path) -> ReportData:
    """Statistics of a finished run, streaming the output once: counts and lengths over every
    record, diversity measures over a seeded sample of at most SAMPLE texts per field."""
    from array import array

    plan_path, manifest_path = out_dir / "plan.json", out_dir / "manifest.json"
    if not plan_path.exists() or not manifest_path.exists():
        raise EvalInputError(f"{out_dir} holds no finished run (plan.json and manifest.json are written by "
                             "`synthc run`)")
    plan = read_plan(plan_path)
    manifest = read_manifest(manifest_path)
    eval_path = out_dir / "eval.json"
    evaluation = read_evaluation(eval_path) if eval_path.exists() else None
    blocks = []
    for block in plan.blocks:
        schema = plan.schemas[block.schema_name]
        text_fields = [f.name for f in schema.fields if isinstance(f.type, ir.StrType)]
        model_text = [f.name for f in schema.fields if isinstance(f.type, ir.StrType) and f.source == "model"]
        actual: dict[str, Counter[str]] = {qf: Counter() for qf in block.quota_fields}
        lens = {name: array("l") for name in text_fields}
        samples = {name: _Reservoir(SAMPLE, f"{plan.hash}|{block.id}|{name}") for name in model_text}
        noise: Counter[str] = Counter()
        n_synth = n_real = 0
        split_rows = {}
        for split, path in output_files(plan, out_dir, block.id).items():
            split_rows[split] = 0
            if not path.is_file():
                continue
            for r in iter_rows(path):
                split_rows[split] += 1
                if (r.get("_meta") or {}).get("source") != "synthetic":
                    n_real += 1
                    continue
                n_synth += 1
                for qf in block.quota_fields:
                    actual[qf][str(r.get(qf))] += 1
                for name in text_fields:
                    if isinstance(r.get(name), str):
                        lens[name].append(len(r[name]))
                        if name in samples:
                            samples[name].add(r[name])
                for n in r["_meta"].get("noise", []):
                    noise[f"{n['field']}: {n['rule']}"] += 1
        mb = manifest["blocks"].get(block.id, {})
        balance = []
        for qf in block.quota_fields:
            target: Counter[str] = Counter()
            for c in block.cells:
                target[str(c.key[qf])] += c.count
            balance.append({"field": qf, "values": [{"value": v, "target": target[v], "actual": actual[qf].get(v, 0)}
                                                    for v in target]})
        seeds = plan.seed_rows(block.schema_name)
        lengths, diversity = {}, {}
        caps = {f.name: f.type.max_len for f in schema.fields if isinstance(f.type, ir.StrType)}
        for name in text_fields:
            values = list(lens[name])
            lengths[name] = {**summary(values), "histogram": histogram(values)}
            cap = caps[name]
            if cap is not None and name in model_text:  # noise can shorten a value by a character
                lengths[name].update(cap=cap, at_cap=sum(v >= cap - 1 for v in values))
        for name, res in samples.items():
            texts = res.items
            if not texts:
                continue
            seed_texts = [r[name] for r in seeds if isinstance(r.get(name), str)]
            nn = nearest_seed_similarity(texts, seed_texts[:SAMPLE]) if seed_texts else []
            diversity[name] = {"sample": len(texts), "distinct_1": distinct_n(texts, 1),
                               "distinct_2": distinct_n(texts, 2), "near_duplicate_rate": near_duplicate_rate(texts),
                               "seed_similarity": {**summary(nn), "histogram": histogram(nn),
                                                   "copies": sum(x >= NEAR for x in nn)} if nn else None}
        blocks.append({
            "id": block.id, "schema": block.schema_name, "count": block.count,
            "rows": {"synthetic": n_synth, "real": n_real}, "splits": split_rows,
            "attempts": mb.get("attempts"), "accepted": mb.get("accepted"),
            "acceptance_rate": mb.get("acceptance_rate"), "rejections": mb.get("rejections", {}),
            "rejection_rates": mb.get("rejection_rates", {}), "trimmed": mb.get("trimmed", 0),
            "requests_sent": mb.get("requests_sent", 0), "requests_reused": mb.get("requests_reused", 0),
            "balance": balance, "lengths": lengths, "diversity": diversity, "noise": dict(noise.most_common()),
            "origins": mb.get("origins", {}), "label_check": mb.get("label_check", {}),
        })
    return ReportData(plan=plan, manifest=manifest, blocks=blocks, evaluation=evaluation,
                      looks_wrong=what_looks_wrong(blocks, manifest))
