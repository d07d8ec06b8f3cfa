"""report.html: one self-contained page with tables and SVG plots."""

from __future__ import annotations

from ..evaluate.metrics import format_scored
from ..plan.model import Plan
from .collect import ReportData
from .diversity import NEAR
from .svg import esc, svg_bars, svg_histogram, svg_line


def _table(name: str, header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table data-table="{esc(name)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:980px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f4f4f4}.bar{fill:#4a78b5}.target{stroke:#d33;stroke-width:2}.err{stroke:#111;stroke-width:2}
.line{fill:none;stroke:#4a78b5;stroke-width:2}svg text{font-size:11px;fill:#333}figure{margin:.6em 0}
figcaption{color:#555;font-size:.9em}.verdict{background:#f6f8e8;padding:.5em .8em;border-left:4px solid #9a3}"""


def _figure(svg: str, caption: str) -> str:
    return f'<figure class="plot">{svg}<figcaption>{esc(caption)}</figcaption></figure>' if svg else ""


def render_html(data: ReportData) -> str:
    plan: Plan = data.plan
    m = data.manifest
    out = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(plan.dataset.name)} "
           f"- dataset report</title><style>{CSS}</style></head><body>",
           f"<h1>{esc(plan.dataset.name)} {esc(plan.dataset.version)}</h1>",
           f"<p>{esc(plan.dataset.description)}</p>",
           _table("overview", ["plan", "complete", "format", "files", "wall seconds", "records/s"],
                  [[plan.hash[:19] + "…", m.get("complete"), m.get("format"), ", ".join(m.get("files", [])),
                    m.get("wall_seconds"), m.get("records_per_second")]])]
    out.append("<h2>What looks wrong</h2>")
    out.append("<ul data-list='looks-wrong'>" + "".join(f"<li>{esc(w)}</li>" for w in data.looks_wrong) + "</ul>"
               if data.looks_wrong else "<p data-list='looks-wrong'>Nothing stands out: no length cap spike, seed "
               "copies, near-duplicates, high rejection rate or lagging class.</p>")
    for b in data.blocks:
        out.append(f"<h2>Block {esc(b['id'])} ({esc(b['schema'])})</h2>")
        out.append(_table(f"{b['id']}-counts", ["synthetic rows", "real rows", "attempts", "acceptance", "splits",
                                                "requests sent", "requests from the cache"],
                          [[b["rows"]["synthetic"], b["rows"]["real"], b["attempts"],
                            f"{(b['acceptance_rate'] or 0):.1%}",
                            ", ".join(f"{k} {v}" for k, v in b["splits"].items()),
                            b["requests_sent"], b["requests_reused"]]]))
        for bal in b["balance"]:
            items = [(v["value"], v["actual"]) for v in bal["values"]]
            out.append(_figure(svg_bars(f"{b['id']}-balance-{bal['field']}", items,
                                        targets=[v["target"] for v in bal["values"]]),
                               f"Class balance of {bal['field']}: bars are records, red marks the quota."))
        if set(b["origins"]) - {"generated"}:
            out.append(_table(f"{b['id']}-origins", ["made", "records"], [[k, v] for k, v in b["origins"].items()]))
        for name, table in b["label_check"].items():
            read_as = sorted({got for reads in table.values() for got in reads})
            out.append(_table(f"{b['id']}-label-check-{name}", [f"{name}: intended / read as", *read_as],
                              [[want, *(reads.get(got, 0) for got in read_as)] for want, reads in table.items()]))
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
    ev = data.evaluation
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
                rows = [[n, e["sets"][n]["n_train"], format_scored(e["sets"][n]["accuracy"]),
                         format_scored(e["sets"][n]["macro_f1"])]
                        + [format_scored(e["sets"][n]["per_class_f1"][c]) for c in e["classes"]] for n in names]
                out.append(_table(f"eval-{e['label']}", header, rows))
                out.append(_figure(svg_line(f"eval-{e['label']}-sweep",
                                            [(s["real_share_target"], s["macro_f1"]["value"]) for s in e["sweep"]],
                                            "real share of the training set (%)"),
                                   "Macro-F1 against the real share of the training set."))
            else:
                rows = [[n, e["sets"][n]["n_train"], format_scored(e["sets"][n]["precision"]),
                         format_scored(e["sets"][n]["recall"]), format_scored(e["sets"][n]["f1"])] for n in names]
                out.append(_table(f"eval-{e['label']}", ["train set", "rows", "precision", "recall", "F1"], rows))
            for v in e["verdicts"].values():
                out.append(f'<p class="verdict">{esc(v["says"])}</p>')
    out.append("</body></html>")
    return "\n".join(x for x in out if x)
