"""`synthc eval` and `synthc report` on the shipped real data (BBC News subset, hand-written
address notes) with a small generated set, checked against independent computations; the
HTML report opened in headless Chromium."""

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def synthc(*args, cwd=ROOT, check=True):
    proc = subprocess.run([sys.executable, "-m", "synthlang.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def news(tmp_path_factory):
    folder = tmp_path_factory.mktemp("news") / "news_topics"
    shutil.copytree(ROOT / "specs/news_topics", folder)
    synthc("run", str(folder / "news.synth"), "--fake-engine", "--progress", "log")
    result = json.loads(synthc("eval", str(folder / "news.synth"), "--format", "json").stdout)
    return folder, folder / "out/news_topics", result


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def test_classification_numbers_match_an_independent_computation(news):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline

    folder, out, result = news
    ev = result["evaluations"][0]
    assert ev["kind"] == "classification" and ev["n_test"] == 100
    test = read_jsonl(folder / "data/held_out.jsonl")
    y_true = [r["topic"] for r in test]
    real = read_jsonl(folder / "seeds/articles.jsonl")
    synth = [r for r in read_jsonl(out / "train.jsonl") if r["_meta"]["source"] == "synthetic"]
    assert ev["sets"]["real"]["n_train"] == len(real) == 30
    assert ev["sets"]["synthetic"]["n_train"] == len(synth) == 50
    for name, rows in (("real", real), ("synthetic", synth), ("blend", real + synth)):
        model = make_pipeline(TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2)),
                              LogisticRegression(max_iter=2000))
        model.fit([r["body"] for r in rows], [r["topic"] for r in rows])
        pred = list(model.predict([r["body"] for r in test]))
        got = ev["sets"][name]
        assert got["predictions"] == pred
        assert got["accuracy"]["value"] == pytest.approx(accuracy_score(y_true, pred), abs=1e-4)
        assert got["macro_f1"]["value"] == pytest.approx(
            f1_score(y_true, pred, average="macro", labels=ev["classes"], zero_division=0), abs=1e-4)
        per = f1_score(y_true, pred, average=None, labels=ev["classes"], zero_division=0)
        for cls, value in zip(ev["classes"], per):
            assert got["per_class_f1"][cls]["value"] == pytest.approx(value, abs=1e-4)
        for metric in ("accuracy", "macro_f1"):
            lo, hi = got[metric]["ci95"]
            assert 0 <= lo <= hi <= 1
    delta = ev["verdicts"]["blend"]["delta_macro_f1"]["value"]
    assert delta == pytest.approx(ev["sets"]["blend"]["macro_f1"]["value"] - ev["sets"]["real"]["macro_f1"]["value"],
                                  abs=2e-4)
    assert [s["real_share_target"] for s in ev["sweep"]] == [0, 25, 50, 75, 100]
    assert ev["sweep"][-1]["macro_f1"]["value"] == ev["sets"]["real"]["macro_f1"]["value"]
    says = ev["verdicts"]["synthetic"]["says"]
    assert re.match(r"Synthetic data (beat|made it worse|made no clear difference)", says)


def test_text_output_says_plainly_who_won(news):
    folder, _, _ = news
    text = synthc("eval", str(folder / "news.synth")).stdout
    assert "macro_f1" in text and "F1 business" in text and "real-share sweep" in text
    assert re.search(r"Blend data (beat the real-only baseline|made it worse than real-only|made no clear "
                     r"difference against real-only): macro-F1 [+-]\d\.\d{3}", text)


def test_report_numbers_match_the_data(news):
    folder, out, result = news
    card = (out / "README.md").read_text()
    assert card.startswith("---\npretty_name: \"news_topics\"")
    assert "task_categories:\n- text-classification" in card and "path: train.jsonl" in card
    rows = read_jsonl(out / "train.jsonl")
    synth = [r for r in rows if r["_meta"]["source"] == "synthetic"]
    counts = Counter(r["topic"] for r in synth)
    line = next(l for l in card.splitlines() if l.startswith("- class balance of `topic`"))
    for topic, n in counts.items():
        assert f"{topic} {n}/10" in line
    manifest = json.loads((out / "manifest.json").read_text())
    assert f"attempts: {manifest['blocks']['Article']['attempts']}," in card
    real_f1 = result["evaluations"][0]["sets"]["real"]["macro_f1"]
    assert f"| real | 30 | {real_f1['value']:.3f} [" in card


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.plots, self.tables, self.shapes = [], [], Counter()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and "data-plot" in a:
            self.plots.append(a["data-plot"])
        if tag == "table" and "data-table" in a:
            self.tables.append(a["data-table"])
        if tag in ("rect", "path", "circle", "line"):
            self.shapes[tag] += 1


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is not on PATH; the README's test command (scripts/test.sh) installs Debian's `chromium`")


def test_html_report_renders_in_headless_chromium(news, tmp_path):
    folder, out, _ = news
    chromium = _chromium()
    page = (out / "report.html").resolve().as_uri()
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          page], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = _Collect()
    parsed.feed(dom.stdout)
    expected_plots = {"Article-balance-topic", "Article-length-body", "Article-length-headline",
                      "Article-seed-similarity-body", "eval-topic", "eval-topic-sweep"}
    assert expected_plots <= set(parsed.plots), parsed.plots
    assert {"overview", "Article-counts", "Article-diversity", "eval-topic"} <= set(parsed.tables)
    assert parsed.shapes["rect"] > 20 and parsed.shapes["path"] >= 1
    shot = tmp_path / "report.png"
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}",
                           "--window-size=1100,1600", f"--screenshot={shot}", page],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.is_file()
    from PIL import Image

    img = Image.open(shot).convert("L")
    colours = img.getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 20  # text, bars and tables, not a blank page


def test_span_eval_matches_an_independent_computation(tmp_path):
    folder = tmp_path / "address_extraction"
    shutil.copytree(ROOT / "specs/address_extraction", folder)
    synthc("run", str(folder / "addresses.synth"), "--fake-engine", "--progress", "log")
    result = json.loads(synthc("eval", str(folder / "addresses.synth"), "--format", "json").stdout)
    ev = result["evaluations"][0]
    assert ev["kind"] == "spans" and ev["n_test"] == 24
    test = read_jsonl(folder / "data/held_out.jsonl")
    gold = []
    for r in test:
        spans, pos = set(), 0
        for f in ("number", "street", "city", "zip"):
            at = r["letter"].index(r[f], pos)
            spans.add((f, at, at + len(r[f])))
            pos = at + len(r[f])
        gold.append(spans)
    for name in ("real", "synthetic", "blend"):
        got = ev["sets"][name]
        pred = [{tuple(s) for s in p} for p in got["predictions"]]
        tp = sum(len(g & p) for g, p in zip(gold, pred))
        n_pred, n_gold = sum(map(len, pred)), sum(map(len, gold))
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        assert got["precision"]["value"] == pytest.approx(precision, abs=1e-4)
        assert got["recall"]["value"] == pytest.approx(recall, abs=1e-4)
        assert got["f1"]["value"] == pytest.approx(f1, abs=1e-4)
    # real rows alone (5 annotated seed notes) already teach the tagger something
    assert ev["sets"]["real"]["f1"]["value"] > 0.3
    card = (folder / "out/address_letters/README.md").read_text()
    assert "token-classification" in card


def test_eval_before_run_is_a_clear_error(tmp_path):
    folder = tmp_path / "news_topics"
    shutil.copytree(ROOT / "specs/news_topics", folder)
    proc = synthc("eval", str(folder / "news.synth"), check=False)
    assert proc.returncode == 1
    assert "run `synthc run` on the spec first" in proc.stderr and "Traceback" not in proc.stderr
    proc = synthc("report", str(tmp_path), check=False)
    assert proc.returncode == 1 and "holds no finished run" in proc.stderr
