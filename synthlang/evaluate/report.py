"""`synthc report OUTPUT_DIR`: what a generated dataset holds, as a dataset card (README.md with
Hugging Face metadata) and a self-contained HTML page with SVG plots. Written at the end of
every run, and again after `synthc eval`."""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from .. import ir
from ..plan.layout import output_files
from ..plan.model import Plan
from .data import EvalInputError, iter_rows

NEAR = 0.8


# ---- statistics -------------------------------------------------------------------------------
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


def _summary(values: Sequence[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "min": min(values), "mean": round(sum(values) / len(values), 2), "max": max(values)}


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


def collect(out_dir: Path) -> dict:
    """Statistics of a finished run, streaming the output once: counts and lengths over every
    record, diversity measures over a seeded sample of at most SAMPLE texts per field."""
    from array import array

    plan_path, manifest_path = out_dir / "plan.json", out_dir / "manifest.json"
    if not plan_path.is_file() or not manifest_path.is_file():
        raise EvalInputError(f"{out_dir} holds no finished run (plan.json and manifest.json are written by "
                             "`synthc run`)")
    plan = Plan.from_json(plan_path.read_text(encoding="utf-8"))
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    eval_path = out_dir / "eval.json"
    evaluation = json.loads(eval_path.read_text(encoding="utf-8")) if eval_path.is_file() else None
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
        for name in text_fields:
            values = list(lens[name])
            lengths[name] = {**_summary(values), "histogram": histogram(values)}
        for name, res in samples.items():
            texts = res.items
            if not texts:
                continue
            seed_texts = [r[name] for r in seeds if isinstance(r.get(name), str)]
            nn = nearest_seed_similarity(texts, seed_texts[:SAMPLE]) if seed_texts else []
            diversity[name] = {"sample": len(texts), "distinct_1": distinct_n(texts, 1),
                               "distinct_2": distinct_n(texts, 2), "near_duplicate_rate": near_duplicate_rate(texts),
                               "seed_similarity": {**_summary(nn), "histogram": histogram(nn)} if nn else None}
        blocks.append({
            "id": block.id, "schema": block.schema_name, "count": block.count,
            "rows": {"synthetic": n_synth, "real": n_real}, "splits": split_rows,
            "attempts": mb.get("attempts"), "accepted": mb.get("accepted"),
            "acceptance_rate": mb.get("acceptance_rate"), "rejections": mb.get("rejections", {}),
            "balance": balance, "lengths": lengths, "diversity": diversity, "noise": dict(noise.most_common()),
        })
    return {"plan": plan, "manifest": manifest, "blocks": blocks, "eval": evaluation}


# ---- SVG -----------------------------------------------------------------------------------------
def _esc(x) -> str:
    return html.escape(str(x))


def svg_bars(name: str, items: list[tuple[str, float]], targets: list[float] | None = None,
             fmt: str = "{:g}", errors: list[tuple[float, float]] | None = None) -> str:
    if not items:
        return ""
    top = max([v for _, v in items] + (targets or []) + ([e[1] for e in errors] if errors else []) + [1e-9])
    row, left, width = 22, 170, 360
    h = row * len(items) + 10
    parts = [f'<svg class="chart" data-plot="{_esc(name)}" xmlns="http://www.w3.org/2000/svg" '
             f'width="{left + width + 90}" height="{h}" role="img" aria-label="{_esc(name)}">']
    for i, (label, value) in enumerate(items):
        y = 5 + i * row
        w = max(1.0, width * value / top)
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{_esc(label[:28])}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" class="bar"/>')
        if targets:
            tx = left + width * targets[i] / top
            parts.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{y}" y2="{y + row - 2}" class="target"/>')
        if errors:
            lo, hi = errors[i]
            parts.append(f'<line x1="{left + width * lo / top:.1f}" x2="{left + width * hi / top:.1f}" '
                         f'y1="{y + row / 2:.1f}" y2="{y + row / 2:.1f}" class="err"/>')
        parts.append(f'<text x="{left + width + 6}" y="{y + 14}">{_esc(fmt.format(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_histogram(name: str, hist: dict) -> str:
    counts, edges = hist.get("counts") or [], hist.get("edges") or []
    if not counts:
        return ""
    w, h, pad = 420, 140, 24
    top = max(counts) or 1
    bw = (w - 2 * pad) / len(counts)
    parts = [f'<svg class="chart" data-plot="{_esc(name)}" xmlns="http://www.w3.org/2000/svg" width="{w}" '
             f'height="{h + 20}" role="img" aria-label="{_esc(name)}">']
    for i, c in enumerate(counts):
        bh = (h - pad) * c / top
        parts.append(f'<rect x="{pad + i * bw:.1f}" y="{h - bh:.1f}" width="{bw - 2:.1f}" height="{bh:.1f}" '
                     f'class="bar"><title>{edges[i]}-{edges[i + 1]}: {c}</title></rect>')
    parts.append(f'<text x="{pad}" y="{h + 14}">{edges[0]}</text>')
    parts.append(f'<text x="{w - pad}" y="{h + 14}" text-anchor="end">{edges[-1]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_line(name: str, points: list[tuple[float, float]], xlabel: str) -> str:
    if not points:
        return ""
    w, h, pad = 420, 160, 30
    xs = [p[0] for p in points]
    x0, x1 = min(xs), max(xs) or 1
    path = " ".join(f"{'M' if i == 0 else 'L'}{pad + (w - 2 * pad) * (x - x0) / ((x1 - x0) or 1):.1f},"
                    f"{h - pad - (h - 2 * pad) * y:.1f}" for i, (x, y) in enumerate(points))
    dots = "".join(f'<circle cx="{pad + (w - 2 * pad) * (x - x0) / ((x1 - x0) or 1):.1f}" '
                   f'cy="{h - pad - (h - 2 * pad) * y:.1f}" r="3"><title>{x}: {y:.3f}</title></circle>'
                   for x, y in points)
    return (f'<svg class="chart" data-plot="{_esc(name)}" xmlns="http://www.w3.org/2000/svg" width="{w}" '
            f'height="{h}" role="img" aria-label="{_esc(name)}"><path d="{path}" class="line"/>{dots}'
            f'<text x="4" y="{pad + 4}">1.0</text><text x="4" y="{h - pad + 4}">0.0</text>'
            f'<text x="{pad}" y="{h - 8}">{x0:g}</text><text x="{w - pad}" y="{h - 8}" text-anchor="end">'
            f'{x1:g}</text><text x="{w / 2}" y="{h - 8}" text-anchor="middle">{_esc(xlabel)}</text></svg>')


def _table(name: str, header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table data-table="{_esc(name)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _ci(s: dict) -> str:
    return f"{s['value']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]"


CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:980px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f4f4f4}.bar{fill:#4a78b5}.target{stroke:#d33;stroke-width:2}.err{stroke:#111;stroke-width:2}
.line{fill:none;stroke:#4a78b5;stroke-width:2}svg text{font-size:11px;fill:#333}figure{margin:.6em 0}
figcaption{color:#555;font-size:.9em}.verdict{background:#f6f8e8;padding:.5em .8em;border-left:4px solid #9a3}"""


def _figure(svg: str, caption: str) -> str:
    return f'<figure class="plot">{svg}<figcaption>{_esc(caption)}</figcaption></figure>' if svg else ""


def render_html(data: dict) -> str:
    plan: Plan = data["plan"]
    m = data["manifest"]
    out = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_esc(plan.dataset.name)} "
           f"- dataset report</title><style>{CSS}</style></head><body>",
           f"<h1>{_esc(plan.dataset.name)} {_esc(plan.dataset.version)}</h1>",
           f"<p>{_esc(plan.dataset.description)}</p>",
           _table("overview", ["plan", "complete", "format", "files", "wall seconds", "records/s"],
                  [[plan.hash[:19] + "…", m.get("complete"), m.get("format"), ", ".join(m.get("files", [])),
                    m.get("wall_seconds"), m.get("records_per_second")]])]
    for b in data["blocks"]:
        out.append(f"<h2>Block {_esc(b['id'])} ({_esc(b['schema'])})</h2>")
        out.append(_table(f"{b['id']}-counts", ["synthetic rows", "real rows", "attempts", "acceptance", "splits"],
                          [[b["rows"]["synthetic"], b["rows"]["real"], b["attempts"],
                            f"{(b['acceptance_rate'] or 0):.1%}",
                            ", ".join(f"{k} {v}" for k, v in b["splits"].items())]]))
        for bal in b["balance"]:
            items = [(v["value"], v["actual"]) for v in bal["values"]]
            out.append(_figure(svg_bars(f"{b['id']}-balance-{bal['field']}", items,
                                        targets=[v["target"] for v in bal["values"]]),
                               f"Class balance of {bal['field']}: bars are records, red marks the quota."))
        rej = sorted(b["rejections"].items(), key=lambda kv: -kv[1])
        out.append(_figure(svg_bars(f"{b['id']}-rejections", [(k, v) for k, v in rej[:12]]),
                           "Rejected attempts by reason.") if rej else "<p>No attempt was rejected.</p>")
        for name, lens in b["lengths"].items():
            out.append(_figure(svg_histogram(f"{b['id']}-length-{name}", lens["histogram"]),
                               f"Length of {name} in characters (min {lens.get('min')}, mean {lens.get('mean')}, "
                               f"max {lens.get('max')})."))
        if b["diversity"]:
            rows = []
            for name, d in b["diversity"].items():
                ss = d["seed_similarity"] or {}
                rows.append([name, d["sample"], d["distinct_1"], d["distinct_2"], d["near_duplicate_rate"],
                             ss.get("mean", "-"), ss.get("max", "-")])
            out.append(_table(f"{b['id']}-diversity", ["field", "sample", "distinct-1", "distinct-2",
                                                        f"near-duplicate rate (>= {NEAR})",
                                                        "mean similarity to nearest seed", "max"], rows))
            for name, d in b["diversity"].items():
                if d["seed_similarity"]:
                    out.append(_figure(svg_histogram(f"{b['id']}-seed-similarity-{name}",
                                                     d["seed_similarity"]["histogram"]),
                                       f"Similarity of each {name} to its nearest seed row (character 5-gram "
                                       "Jaccard); mass near 1 means seed leakage."))
        if b["noise"]:
            out.append(_figure(svg_bars(f"{b['id']}-noise", list(b["noise"].items())), "Noise rules applied."))
    ev = data["eval"]
    if ev:
        out.append("<h2>Contribution of the synthetic data</h2>")
        for e in ev["evaluations"]:
            names = list(e["sets"])
            metric = "macro_f1" if e["kind"] == "classification" else "f1"
            items = [(n, e["sets"][n][metric]["value"]) for n in names]
            errors = [tuple(e["sets"][n][metric]["ci95"]) for n in names]
            out.append(_figure(svg_bars(f"eval-{e['label']}", items, errors=errors, fmt="{:.3f}"),
                               f"{metric} on {e['n_test']} held-out real rows, with 95% bootstrap intervals."))
            if e["kind"] == "classification":
                header = ["train set", "rows", "accuracy", "macro-F1"] + [f"F1 {c}" for c in e["classes"]]
                rows = [[n, e["sets"][n]["n_train"], _ci(e["sets"][n]["accuracy"]), _ci(e["sets"][n]["macro_f1"])]
                        + [_ci(e["sets"][n]["per_class_f1"][c]) for c in e["classes"]] for n in names]
                out.append(_table(f"eval-{e['label']}", header, rows))
                out.append(_figure(svg_line(f"eval-{e['label']}-sweep",
                                            [(s["real_share_target"], s["macro_f1"]["value"]) for s in e["sweep"]],
                                            "real share of the training set (%)"),
                                   "Macro-F1 against the real share of the training set."))
            else:
                rows = [[n, e["sets"][n]["n_train"], _ci(e["sets"][n]["precision"]), _ci(e["sets"][n]["recall"]),
                         _ci(e["sets"][n]["f1"])] for n in names]
                out.append(_table(f"eval-{e['label']}", ["train set", "rows", "precision", "recall", "F1"], rows))
            for v in e["verdicts"].values():
                out.append(f'<p class="verdict">{_esc(v["says"])}</p>')
    out.append("</body></html>")
    return "\n".join(x for x in out if x)


def render_card(data: dict) -> str:
    plan: Plan = data["plan"]
    ev = data["eval"]
    tasks = sorted({"text-classification" if e["kind"] == "classification" else "token-classification"
                    for e in (ev or {}).get("evaluations", [])}) or ["other"]
    total = sum(b["rows"]["synthetic"] + b["rows"]["real"] for b in data["blocks"])
    size = "n<1K" if total < 1000 else "1K<n<10K" if total < 10_000 else "10K<n<100K" if total < 100_000 \
        else "100K<n<1M" if total < 1_000_000 else "n>1M"
    files = [{"split": split, "path": path.name}
             for b in plan.blocks for split, path in output_files(plan, Path("."), b.id).items()]
    front = ["---", f"pretty_name: {json.dumps(plan.dataset.name)}", "language:", "- en", "license: other",
             "task_categories:"] + [f"- {t}" for t in tasks] + [
        "size_categories:", f"- {size}", "tags:", "- synthetic", "- synthlang", "configs:",
        "- config_name: default", "  data_files:"] + [
        f"  - split: {f['split']}\n    path: {f['path']}" for f in files] + ["---", ""]
    lines = [f"# {plan.dataset.name} {plan.dataset.version}", "", plan.dataset.description or "", "",
             f"Generated by synthlang from `{plan.source}` (plan `{plan.hash}`). Every record carries `_meta`: "
             "its id, quota cell, seed, model, noise applied and, for extraction fields, the spans of every "
             "mentioned value. Rows with `_meta.source == \"real\"` are real seed rows mixed into train.", ""]
    for b in data["blocks"]:
        lines += [f"## {b['id']} ({b['schema']})", "",
                  f"- rows: {b['rows']['synthetic']} synthetic, {b['rows']['real']} real; splits: "
                  + ", ".join(f"{k} {v}" for k, v in b["splits"].items()),
                  f"- attempts: {b['attempts']}, acceptance rate {(b['acceptance_rate'] or 0):.1%}; rejections: "
                  + (", ".join(f"{k} ({v})" for k, v in b["rejections"].items()) or "none")]
        for bal in b["balance"]:
            lines.append(f"- class balance of `{bal['field']}` (records / quota): " + ", ".join(
                f"{v['value']} {v['actual']}/{v['target']}" for v in bal["values"]))
        for name, d in b["diversity"].items():
            ss = d["seed_similarity"] or {}
            lines.append(f"- `{name}`: distinct-1 {d['distinct_1']}, distinct-2 {d['distinct_2']}, near-duplicate "
                         f"rate {d['near_duplicate_rate']}, similarity to nearest seed mean {ss.get('mean', '-')} "
                         f"max {ss.get('max', '-')}")
        if b["noise"]:
            lines.append("- noise applied: " + ", ".join(f"{k} ({v})" for k, v in b["noise"].items()))
        lines.append("")
    if ev:
        lines += ["## Contribution of the synthetic data", ""]
        for e in ev["evaluations"]:
            metric = "macro_f1" if e["kind"] == "classification" else "f1"
            lines.append(f"Scored on {e['n_test']} held-out real rows (`{e['test']}`):")
            lines.append("")
            lines.append("| train set | rows | " + metric + " |")
            lines.append("| --- | --- | --- |")
            for n, s in e["sets"].items():
                lines.append(f"| {n} | {s['n_train']} | {_ci(s[metric])} |")
            lines.append("")
            lines += [v["says"] for v in e["verdicts"].values()] + [""]
    lines.append("See `report.html` beside this file for the plots.")
    return "\n".join(front + lines) + "\n"


def write_report(out_dir: Path) -> tuple[Path, Path]:
    from ..files import write_text_atomic

    data = collect(out_dir)
    card = write_text_atomic(out_dir / "README.md", render_card(data))
    page = write_text_atomic(out_dir / "report.html", render_html(data))
    return card, page
