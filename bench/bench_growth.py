"""Does synthetic data grown from a few real rows beat the real rows alone? Measured on public
labelled data nobody here wrote (bench/public_data.py), with learners written here that share no
code with synthlang.evaluate. Prints, for each task, real-only / synthetic-only / blend scored on
held-out real rows, with bootstrap 95% intervals, and the label check's rejections read by a
classifier fitted on the full real set.

    nice python bench/bench_growth.py [--quick] [--seed N] [--task address|headlines|both] [--no-scratch]
                                      [--noise] [--show N] [--keep DIR]

(a) Extraction, US addresses (usaddress training XML). A fixed seeded sample of real rows is
    the seed set; a few hundred other rows are held out. Tags: AddressNumber, Street
    (StreetName and a StreetNamePostType right after it, merged), PlaceName, StateName,
    ZipCode; every other token is plain text. A temporary spec grows records from the seeds
    with `resample` (mention replacement, no model call): one block per set of parts a seed
    row holds, since a block re-samples only what each of its rows mentions. `synthc run`
    makes them, once per sampler design (DESIGNS: Faker's street_name, or a last name and a
    common street type as two fields whose spans are merged into one Street span); `--noise`
    adds case noise to the grown texts. The span tagger is a CRF (sklearn-crfsuite) on features defined here; the
    score is span F1 over the tags, exact match of (start, end, tag), micro-averaged.

(b) Classification, BBC News headlines (5 topics). A few real seeds per topic, a few hundred
    held out. A spec grows headlines from the seeds with `rewrite text` on the embedded model
    (label check on, the default), and a from-scratch block with `examples` for comparison.
    The run's folder is kept under the bench cache (public_data.cache_dir()/growth/) by the
    hash of the spec and its seeds, with its result cache, so a rerun sends no request. The
    classifier is TF-IDF (word 1-2 grams and character 2-5 grams) + logistic regression,
    scored by macro-F1. The label check: the records it rejected (journal entries whose
    `why` starts with "off_label") and those accepted are read by the same classifier fitted
    on every real headline not held out; "truly off label" = it reads another topic than
    the intended one. The journal holds no text for a rejected record, so the texts are
    recovered by replaying the run in this process from its result cache (no request sent)
    and recording what the label check read; the replayed journal must equal the CLI's.

Nothing here tunes synthlang: the specs, features and learner settings are fixed up front.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import public_data  # noqa: E402

BOOT = 1000
TOPICS = public_data.BBC_TOPICS


def synthc() -> list[str]:
    exe = shutil.which("synthc")
    return [exe] if exe else [sys.executable, "-c", "import sys; from synthlang.cli import main; sys.exit(main())"]


def run_cmd(cmd: list[str]) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    return p.returncode, p.stdout + p.stderr, time.perf_counter() - t0


def show_cmd(cmd: list[str]) -> str:
    return " ".join(shlex.quote(str(c)) for c in cmd)


def read_records(out: Path) -> list[dict]:
    recs = []
    for f in sorted(out.glob("**/*.jsonl")):
        if ".synth" in f.parts:
            continue
        recs += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return recs


def bootstrap(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(BOOT, n))


def interval(samples: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return float(lo), float(hi)


# ==========================================================================================
# (a) extraction: addresses
# ==========================================================================================

TAGS = ("AddressNumber", "Street", "PlaceName", "StateName", "ZipCode")
# the spec's fields and the tag each is; `street_type` is part of the Street span right after a street
TAG_OF = {"number": "AddressNumber", "street": "Street", "street_type": "Street", "city": "PlaceName",
          "state": "StateName", "zip": "ZipCode"}
FIELD_OF = {"AddressNumber": "number", "Street": "street", "PlaceName": "city", "StateName": "state",
            "ZipCode": "zip"}
PART_OF = {"AddressNumber": "number", "StreetName": "street", "StreetNamePostType": "street_type",
           "PlaceName": "city", "StateName": "state", "ZipCode": "zip"}
# two ways to draw the parts anew, fixed before any score was seen: Faker's street_name (a last
# name and one of Faker's ~200 USPS suffixes, "Benjamin Views"), or a last name and a street type
# written the ways US addresses commonly write one (USPS abbreviations and the spelled-out words)
STREET_TYPES = ("St", "St.", "Street", "Ave", "Ave.", "Avenue", "Rd", "Rd.", "Road", "Dr", "Dr.", "Drive", "Blvd",
                "Boulevard", "Ln", "Lane", "Way", "Ct", "Court", "Pl", "Place", "Pkwy", "Hwy", "ST", "AVE", "RD",
                "DR", "BLVD")
DESIGNS = {
    "faker street_name": {"number": 'faker("building_number")', "street": 'faker("street_name")',
                          "city": 'faker("city")', "state": 'faker("state_abbr")', "zip": 'faker("zipcode")'},
    "name + street type": {"number": 'faker("building_number")', "street": 'faker("last_name")',
                           "street_type": "pick(" + ", ".join(json.dumps(t) for t in STREET_TYPES) + ")",
                           "city": 'faker("city")', "state": 'faker("state_abbr")', "zip": 'faker("zipcode")'},
}
_TOKEN = re.compile(r"[^\s,;]+")


def address_parts(row: dict) -> list[tuple[int, int, str]]:
    """The row's spans as the spec's fields, in text order: a StreetNamePostType counts only right
    after its StreetName (one space between); every other tag is plain text."""
    text, out = row["text"], []
    for s, e, t in sorted(row["spans"]):
        if t not in PART_OF:
            continue
        if t == "StreetNamePostType" and not (out and out[-1][2] == "street" and text[out[-1][1]:s].strip() == ""):
            continue
        out.append((s, e, PART_OF[t]))
    return out


def merged(text: str, parts: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Parts as the bench's tags: a street_type right after a street joins its Street span; one
    on its own is plain text."""
    out: list[tuple[int, int, str]] = []
    last: str | None = None
    for s, e, f in sorted(parts):
        if f == "street_type":
            if last == "street" and text[out[-1][1]:s].strip() == "":
                out[-1] = (out[-1][0], e, "Street")
        else:
            out.append((s, e, TAG_OF[f]))
        last = f
    return out


def address_spans(row: dict) -> list[tuple[int, int, str]]:
    return merged(row["text"], address_parts(row))


def address_split(rows: list[dict], n_seeds: int, n_test: int, seed: int) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    # a seed row holds each part at most once (a record has one value per field) and at least one
    eligible = [i for i in order if (parts := [f for _, _, f in address_parts(rows[i])])
                and len(parts) == len(set(parts))]
    chosen = set(eligible[:n_seeds])
    test = [i for i in order if i not in chosen][:n_test]
    return ([dict(rows[i], parts=address_parts(rows[i]), gold=address_spans(rows[i])) for i in eligible[:n_seeds]],
            [dict(rows[i], gold=address_spans(rows[i])) for i in test])


def address_spec(seeds: list[dict], count: int, seed: int, design: str, noise: bool
                 ) -> tuple[str, dict[str, str], dict[str, list[dict]]]:
    """The spec, its seed files, and the rows of each seed set: one seed set and block per set
    of parts the rows hold (a block re-samples exactly those)."""
    samplers = DESIGNS[design]
    groups: dict[tuple[str, ...], list[dict]] = {}
    for r in seeds:
        text = r["text"]
        if "street_type" in samplers:
            values = {f: text[s:e] for s, e, f in r["parts"]}
        else:  # the street is one value, its type included
            values = {FIELD_OF[tag]: text[s:e] for s, e, tag in r["gold"]}
        parts = tuple(f for f in samplers if f in values)
        groups.setdefault(parts, []).append({"text": text, **values})
    fields = "\n".join(f"  {f}: str ~ {sampler}" for f, sampler in samplers.items())
    spec = [f'dataset bench_addresses {{\n  version "1.0.0"\n  seed {seed}\n'
            '  description "US address strings grown from real rows by mention replacement."\n}\n\n',
            f"schema Address {{\n{fields}\n  text: str(1..400) mentions {', '.join(samplers)}\n}}\n\n"]
    files: dict[str, str] = {}
    sets: dict[str, list[dict]] = {}
    names = sorted(groups, key=lambda p: (-len(groups[p]), p))
    # records per block in proportion to its rows (largest remainder), so each row grows as often
    share = [count * len(groups[p]) / len(seeds) for p in names]
    counts = [int(x) for x in share]
    for k in sorted(range(len(names)), key=lambda k: counts[k] - share[k])[:count - sum(counts)]:
        counts[k] += 1
    for k, (parts, n) in enumerate(zip(names, counts)):
        fname = f"seeds_{k}.jsonl"
        files[fname] = "".join(json.dumps(r) + "\n" for r in groups[parts])
        sets[f"s{k}"] = groups[parts]
        spec.append(f'seeds s{k} from "{fname}" as Address\n')
        if n:
            spec.append(f"generate Address as g{k} from s{k} {{\n  count {n}\n  resample {', '.join(parts)}\n"
                        + ("  noise text { uppercase 15%, lowercase 5% }\n" if noise else "") + "}\n\n")
    spec.append('output "out" {\n  format jsonl\n  split train 100%\n}\n')
    return "".join(spec), files, sets


def synthetic_address_rows(records: list[dict]) -> list[dict]:
    rows = []
    for r in records:
        spans = [(s["start"], s["end"], s["field"]) for s in r["_meta"].get("spans", {}).get("text", [])]
        rows.append({"text": r["text"], "gold": merged(r["text"], spans)})
    return rows


# the span tagger: a linear-chain CRF on features of this file -------------------------------

def tokens(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _TOKEN.finditer(text)]


def shape(w: str) -> str:
    s = re.sub(r"[A-Z]", "X", w)
    s = re.sub(r"[a-z]", "x", s)
    s = re.sub(r"[0-9]", "d", s)
    return re.sub(r"(.)\1+", r"\1\1", s)


def token_features(text: str, toks: list[tuple[int, int]]) -> list[dict]:
    base = []
    for s, e in toks:
        w = text[s:e]
        low = w.lower()
        base.append({"w": low, "shape": shape(w), "len": str(min(len(w), 8)), "digit": w.isdigit(),
                     "upper": w.isupper(), "title": w.istitle(), "p2": low[:2], "s2": low[-2:], "s3": low[-3:],
                     "dot": w.endswith("."), "comma": text[e:e + 1] in (",", ";"),
                     "ndig": str(sum(c.isdigit() for c in w))})
    feats = []
    n = len(toks)
    for k in range(n):
        f: dict = {"bias": 1.0, "first": k == 0, "last": k == n - 1, "pos": str(min(k, 6)),
                   "rpos": str(min(n - 1 - k, 6))}
        f.update({f"0:{a}": b for a, b in base[k].items()})
        for d in (-2, -1, 1, 2):
            j = k + d
            if 0 <= j < n:
                f.update({f"{d}:{a}": base[j][a] for a in ("w", "shape", "digit", "upper", "title", "comma", "s3")})
            else:
                f[f"{d}:none"] = True
        feats.append(f)
    return feats


def bio(text: str, gold: list[tuple[int, int, str]]) -> tuple[list[tuple[int, int]], list[str]]:
    toks = tokens(text)
    labels = []
    for s, e in toks:
        tag = "O"
        for gs, ge, gt in gold:
            if gs <= s and e <= ge:
                tag = ("B-" if s == gs else "I-") + gt
                break
        labels.append(tag)
    return toks, labels


def decode(toks: list[tuple[int, int]], labels: list[str]) -> set[tuple[int, int, str]]:
    out: set[tuple[int, int, str]] = set()
    cur: tuple[int, int, str] | None = None
    for (s, e), lab in zip(toks, labels):
        if lab.startswith("I-") and cur and cur[2] == lab[2:]:
            cur = (cur[0], e, cur[2])
            continue
        if cur:
            out.add(cur)
        cur = (s, e, lab[2:]) if lab != "O" else None
    if cur:
        out.add(cur)
    return out


def train_tagger(rows: list[dict]):
    import sklearn_crfsuite

    X, y = [], []
    for r in rows:
        toks, labels = bio(r["text"], r["gold"])
        if toks:
            X.append(token_features(r["text"], toks))
            y.append(labels)
    crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=0.1, c2=0.1, max_iterations=200, all_possible_transitions=True)
    crf.fit(X, y)
    return crf


def span_counts(crf, test: list[dict]) -> np.ndarray:
    """(test rows, tags, 3): true positive, predicted and gold spans of each tag in each row."""
    tags = list(TAGS)
    out = np.zeros((len(test), len(tags), 3))
    for k, r in enumerate(test):
        toks = tokens(r["text"])
        pred = decode(toks, crf.predict_single(token_features(r["text"], toks))) if toks else set()
        gold = set(r["gold"])
        for t, tag in enumerate(tags):
            p = {x for x in pred if x[2] == tag}
            g = {x for x in gold if x[2] == tag}
            out[k, t] = (len(p & g), len(p), len(g))
    return out


def f1_of(c: np.ndarray) -> np.ndarray:
    """F1 from summed (tp, predicted, gold) counts on the last axis."""
    tp, pred, gold = c[..., 0], c[..., 1], c[..., 2]
    return np.where(pred + gold > 0, 2 * tp / np.maximum(pred + gold, 1), 0.0)


def grow_addresses(seeds: list[dict], count: int, seed: int, design: str, noise: bool, keep: Path | None) -> dict:
    """Run synthc on a temporary spec; the records, the manifest and what it took."""
    spec, files, sets = address_spec(seeds, count, seed, design, noise)
    with tempfile.TemporaryDirectory(prefix="bench_growth_") as tmp_name:
        tmp = Path(tmp_name)
        for name, text in files.items():
            (tmp / name).write_text(text)
        (tmp / "addresses.synth").write_text(spec)
        cmd = ["nice", *synthc(), "run", str(tmp / "addresses.synth"), "--out", str(tmp / "out"), "--no-cache"]
        rc, log, secs = run_cmd(cmd)
        if rc != 0:
            print(spec)
            print(log)
            raise SystemExit(f"synthc run failed (exit {rc}): {show_cmd(cmd)}")
        manifest = json.loads((tmp / "out" / "manifest.json").read_text())
        records = read_records(tmp / "out")
        if keep:
            shutil.copytree(tmp, keep / f"addresses-seed{seed}-{design.replace(' ', '_')}", dirs_exist_ok=True)
    return {"records": records, "manifest": manifest, "sets": sets, "seconds": secs, "cmd": cmd,
            "spec_blocks": spec.count("generate ")}


def run_addresses(args) -> dict:
    n_seeds, n_test, count = (12, 200, 150) if args.quick else (16, 400, 400)
    rows = public_data.addresses()
    seeds, test = address_split(rows, n_seeds, n_test, args.seed)
    print("\n(a) extraction: US addresses (usaddress 0.5.16 training XML), tags " + ", ".join(TAGS))
    print(f"    real seeds {len(seeds)} (sample seed {args.seed}), held out {len(test)} other rows; "
          f"record noise: {'case (uppercase 15%, lowercase 5%)' if args.noise else 'none'}")
    variants: dict[str, list[dict]] = {"real-only": seeds}
    runs = {}
    seed_texts = {r["text"].lower() for r in seeds}
    for design in DESIGNS:
        run = runs[design] = grow_addresses(seeds, count, args.seed, design, args.noise, args.keep)
        records = run["records"]
        blocks = run["manifest"]["blocks"].values()
        rejected: Counter = Counter()
        origins: Counter = Counter()
        for b in blocks:
            rejected.update(b["rejections"])
            origins.update(b.get("origins", {}))
        # the records against their own claims: each span holds its field's value (case aside: noise)
        bad = sum(1 for r in records for s in r["_meta"]["spans"].get("text", [])
                  if r["text"][s["start"]:s["end"]].lower() != str(r[s["field"]]).lower())
        copies = sum(r["text"].lower() in seed_texts for r in records)
        print(f"    synthc run, samplers \"{design}\": {len(records)} records {dict(origins)} from "
              f"{sum(b['attempts'] for b in blocks)} attempts in {run['spec_blocks']} blocks (one per set of parts a "
              f"seed row holds), {run['seconds']:.1f} s; rejected {dict(rejected) or 'none'}; spans not holding "
              f"their value {bad}; records equal to a seed row {copies}")
        print(f"      {show_cmd(run['cmd'])}")
        synth = synthetic_address_rows(records)
        variants[f"synthetic ({design})"] = synth
        variants[f"blend ({design})"] = seeds + synth
    idx = bootstrap(len(test), args.seed)
    counts, boots = {}, {}
    for name, train in variants.items():
        counts[name] = span_counts(train_tagger(train), test)
        boots[name] = f1_of(counts[name][idx].sum(axis=(1, 2)))
    print(f"    {'variant':<34}{'train rows':>11}{'span F1':>9}   {'95% interval':<17} per tag F1 ("
          + " ".join(TAGS) + ")")
    for name, train in variants.items():
        c = counts[name]
        lo, hi = interval(boots[name])
        per_tag = " ".join(f"{x:.2f}" for x in f1_of(c.sum(axis=0)))
        print(f"    {name:<34}{len(train):>11}{float(f1_of(c.sum(axis=(0, 1)))):>9.3f}   [{lo:.3f}, {hi:.3f}]   "
              f"{per_tag}")
    point = {n: float(f1_of(c.sum(axis=(0, 1)))) for n, c in counts.items()}
    verdicts = {design: compare("span F1", point, boots, blend=f"blend ({design})") for design in DESIGNS}
    for design, run in runs.items():
        print(f"    sample of grown records, samplers \"{design}\" (text; spans as tags; source row):")
        for r in random.Random(args.seed).sample(run["records"], min(args.show, len(run["records"]))):
            src = r["_meta"]["from"]
            spans = [(r["text"][s:e], t) for s, e, t in synthetic_address_rows([r])[0]["gold"]]
            print(f"      {json.dumps(r['text'])}; {spans}; {src['seeds']}[{src['row']}] "
                  f"{json.dumps(run['sets'][src['seeds']][src['row']]['text'])} ({src['how']})")
    return {"task": "address", "verdicts": verdicts}


def compare(metric: str, point: dict[str, float], boots: dict[str, np.ndarray], real: str = "real-only",
            blend: str = "blend") -> dict:
    diff = point[blend] - point[real]
    lo, hi = interval(boots[blend])
    half = (hi - lo) / 2
    rlo, rhi = interval(boots[real])
    dlo, dhi = interval(boots[blend] - boots[real])
    print(f"    {blend} - {real} = {diff:+.3f} {metric}; {blend}'s 95% half-width {half:.3f} "
          f"({real}'s {(rhi - rlo) / 2:.3f}): exceeds it: {'YES' if diff > half else 'no'}; "
          f"paired bootstrap 95% interval of the difference [{dlo:+.3f}, {dhi:+.3f}]")
    return {"metric": metric, "diff": diff, "half": half, "exceeds": diff > half, "paired": (dlo, dhi)}


# ==========================================================================================
# (b) classification: BBC News headlines
# ==========================================================================================

QUOTA = "quota topic { " + ", ".join(f"{t}: 20%" for t in TOPICS) + " }"


def headline_split(rows: list[dict], per_class: int, n_test: int, seed: int) -> tuple[list[dict], list[dict], list[dict]]:
    """(seeds, held out, the other real rows); the full real set is seeds + the other rows."""
    rng = random.Random(seed)
    order = list(rows)
    rng.shuffle(order)
    seeds = [r for t in TOPICS for r in [x for x in order if x["label"] == t][:per_class]]
    taken = {r["id"] for r in seeds}
    rest = [r for r in order if r["id"] not in taken]
    return seeds, rest[:n_test], rest[n_test:]


def headline_spec(count: int, scratch: int, seed: int) -> str:
    spec = f'''dataset bench_headlines {{
  version "1.0.0"
  seed {seed}
  description "BBC News style headlines in five topics, grown from a few real ones."
}}

enum Topic {{ {", ".join(TOPICS)} }}

schema Headline {{
  topic: Topic
  text:  str(10..80)
}}

seeds real from "seeds.jsonl" as Headline

generate Headline as grown from real {{
  count {count}
  {QUOTA}
  rewrite text
  prompt """
    Here is a BBC News headline about {{{{ topic }}}}: {{{{ seed.text }}}}
    Write the headline of a different {{{{ topic }}}} news story, short and in the same style.
  """
}}
'''
    if scratch:
        spec += f'''
generate Headline as scratch {{
  count {scratch}
  {QUOTA}
  examples 2 from real matching topic
  prompt """
    Write the headline of a BBC News story about {{{{ topic }}}}, short and in the style of these.
    {{% for ex in examples %}}
    Example: {{{{ ex.text }}}}
    {{% endfor %}}
  """
}}
'''
    return spec + '\noutput "out" {\n  format jsonl\n  split train 100%\n}\n'


class Classifier:
    """TF-IDF over word 1-2 grams and character 2-5 grams within words, then logistic regression."""

    def __init__(self, texts: list[str], labels: list[str]):
        from scipy.sparse import hstack
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self._hstack = hstack
        self.vecs = [TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True),
                     TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True)]
        X = hstack([v.fit_transform(texts) for v in self.vecs]).tocsr()
        self.model = LogisticRegression(C=10.0, max_iter=5000).fit(X, labels)

    def predict(self, texts: list[str]) -> list[str]:
        X = self._hstack([v.transform(texts) for v in self.vecs]).tocsr()
        return list(self.model.predict(X))


def macro_f1(gold: list[str], pred: list[str], idx: np.ndarray) -> tuple[float, np.ndarray]:
    """Macro-F1 over the topics, and its value on each bootstrap sample of the rows."""
    g = np.array([TOPICS.index(x) for x in gold])
    p = np.array([TOPICS.index(x) for x in pred])
    C = len(TOPICS)
    tp = np.zeros((len(g), C))
    tp[np.arange(len(g)), g] = (g == p)
    pr = np.eye(C)[p]
    go = np.eye(C)[g]

    def f1(tp_, pr_, go_):
        denom = pr_ + go_
        per = np.where(denom > 0, 2 * tp_ / np.maximum(denom, 1), 0.0)
        present = go_ > 0
        return (per * present).sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)

    point = float(f1(tp.sum(0), pr.sum(0), go.sum(0)))
    return point, f1(tp[idx].sum(1), pr[idx].sum(1), go[idx].sum(1))


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def journal_entries(path: Path) -> list[dict]:
    return [e for e in (json.loads(line) for line in path.read_text().splitlines() if line.strip())
            if e.get("kind") != "header"]


def replay_texts(folder: Path) -> dict:
    """What the label check read in the run, with the texts: the run replayed in this process from
    its result cache (no request sent), into a scratch folder, with LabelReader.read recorded."""
    from synthlang.compiler import compile as compile_spec
    from synthlang.runtime import label_check
    from synthlang.runtime.driver import run_plan
    from synthlang.runtime.options import RunOptions

    plan = compile_spec(folder / "spec" / "headlines.synth").plan
    assert plan is not None
    seen: list[dict] = []
    original = label_check.LabelReader.read

    def read(self, text, intended):
        reading = original(self, text, intended)
        if reading is not None:
            seen.append({"text": text, "want": intended, "read": reading.read, "margin": reading.margin,
                         "off": reading.off})
        return reading

    sent = [0]

    def no_engine(model):  # every request must come from the result cache
        from synthlang.engines.fake import FakeEngine

        class Refuse(FakeEngine):
            def generate(self, requests):
                sent[0] += len(requests)
                return super().generate(requests)
        return Refuse()

    replay = folder / "replay"
    shutil.rmtree(replay, ignore_errors=True)
    label_check.LabelReader.read = read  # type: ignore[method-assign]
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                run_plan(plan, RunOptions(out_dir=replay, spec_dir=folder / "spec", cache_dir=folder / "results",
                                      probe=False, progress=False, engine_factory=no_engine))
    finally:
        label_check.LabelReader.read = original  # type: ignore[method-assign]

    def key(e):
        return (e["b"], e["c"], e["a"], e["ok"], e.get("why"), json.dumps(e.get("lab"), sort_keys=True),
                json.dumps({k: v for k, v in (e.get("rec") or {}).items() if k != "_meta"}, sort_keys=True))
    same = [key(e) for e in journal_entries(folder / "out" / ".synth" / "journal.jsonl")] == \
        [key(e) for e in journal_entries(replay / ".synth" / "journal.jsonl")]
    shutil.rmtree(replay, ignore_errors=True)
    return {"reads": seen, "same_journal": same, "requests_missed": sent[0]}


def run_headlines(args) -> dict:
    per_class, n_test, count, scratch = (8, 200, 50, 0) if args.quick else (8, 400, 100, 100)
    rows = public_data.headlines()
    seeds, test, other = headline_split(rows, per_class, n_test, args.seed)
    spec = headline_spec(count, 0 if args.no_scratch else scratch, args.seed)
    seed_file = "".join(json.dumps({"topic": r["label"], "text": r["text"]}) + "\n" for r in seeds)
    digest = hashlib.sha256((spec + "\0" + seed_file).encode()).hexdigest()[:16]
    folder = public_data.cache_dir() / "growth" / f"headlines-{digest}"
    (folder / "spec").mkdir(parents=True, exist_ok=True)
    (folder / "spec" / "headlines.synth").write_text(spec)
    (folder / "spec" / "seeds.jsonl").write_text(seed_file)
    cmd = ["nice", *synthc(), "run", str(folder / "spec" / "headlines.synth"), "--out", str(folder / "out"),
           "--cache", str(folder / "results")]
    rc, log, secs = run_cmd(cmd)
    if rc != 0:
        print(log)
        raise SystemExit(f"synthc run failed (exit {rc}): {show_cmd(cmd)}")
    journal = folder / "out" / ".synth" / "journal.jsonl"
    cached = folder / "label_reads.json"
    reads = json.loads(cached.read_text()) if cached.is_file() else {}
    if reads.get("journal_sha") != file_sha(journal):
        reads = {**replay_texts(folder), "journal_sha": file_sha(journal)}
        cached.write_text(json.dumps(reads))
    manifest = json.loads((folder / "out" / "manifest.json").read_text())
    records = [r for r in read_records(folder / "out") if r["_meta"].get("source", "synthetic") == "synthetic"]
    entries = journal_entries(journal)

    print(f"\n(b) classification: BBC News headlines, topics {', '.join(TOPICS)}")
    print(f"    real seeds {len(seeds)} ({per_class} per topic, sample seed {args.seed}), held out {len(test)}, "
          f"full real set (not held out) {len(seeds) + len(other)}")
    print(f"    synthc run: {secs:.1f} s (a rerun of an unchanged spec sends no request); run folder {folder}")
    for bid, b in manifest["blocks"].items():
        rej = ", ".join(f"{k} {v}" for k, v in sorted(b["rejections"].items(), key=lambda kv: -kv[1]))
        print(f"      block {bid}: {b['accepted']} accepted of {b['attempts']} attempts "
              f"({b['accepted'] / max(b['attempts'], 1):.0%}); origins {b.get('origins')}; rejected: {rej or 'none'}")
    print(f"    {show_cmd(cmd)}")

    by_block: dict[str, list[dict]] = {}
    for r in records:
        by_block.setdefault(r["_meta"]["block"], []).append(r)
    idx = bootstrap(len(test), args.seed)
    gold = [r["label"] for r in test]
    tests = [r["text"] for r in test]
    variants = {"real-only": [(r["text"], r["label"]) for r in seeds]}
    for bid, recs in by_block.items():
        synth = [(r["text"], r["topic"]) for r in recs]
        variants[f"{bid}-only"] = synth
        variants[f"real + {bid}"] = variants["real-only"] + synth
    full = Classifier([r["text"] for r in seeds + other], [r["label"] for r in seeds + other])
    point, boots = {}, {}
    print(f"    {'variant':<22}{'train rows':>11}{'macro-F1':>10}   95% interval")
    for name, train in variants.items():
        clf = Classifier([t for t, _ in train], [y for _, y in train])
        point[name], boots[name] = macro_f1(gold, clf.predict(tests), idx)
    point["full real (reference)"], boots["full real (reference)"] = macro_f1(gold, full.predict(tests), idx)
    for name in point:
        lo, hi = interval(boots[name])
        n = len(variants[name]) if name in variants else len(seeds) + len(other)
        print(f"    {name:<22}{n:>11}{point[name]:>10.3f}   [{lo:.3f}, {hi:.3f}]")
    verdicts = {}
    for bid in by_block:
        verdicts[bid] = compare("macro-F1", point, boots, blend=f"real + {bid}")

    # the label check, against the classifier fitted on the full real set
    off = [e for e in entries if str(e.get("why", "")).startswith("off_label")]
    pool: dict[tuple, list[str]] = {}
    for x in reads["reads"]:
        if x["off"]:
            pool.setdefault((x["want"], x["read"], x["margin"]), []).append(x["text"])
    rejected: dict[str, list[tuple[str, str]]] = {}
    unmatched = 0
    for e in off:
        lab = e["lab"]["topic"]
        texts = pool.get((lab["want"], lab["read"], lab["margin"]))
        if texts:
            rejected.setdefault(e["b"], []).append((texts.pop(0), lab["want"]))
        else:
            unmatched += 1
    print(f"    label check: {len(off)} off_label rejections in the journal; texts recovered by replay for "
          f"{len(off) - unmatched} (replayed journal identical: {reads['same_journal']}, requests not in the "
          f"cache: {reads['requests_missed']})")
    base = sum(p != y for p, y in zip(full.predict(tests), gold))
    print(f"    truly off label = the full-real classifier reads another topic than the intended one (it does so for "
          f"{base} of the {len(test)} held-out real rows, {base / len(test):.0%}: its own error rate)")
    out = {"task": "headlines", "verdicts": verdicts}
    for bid in sorted(set(by_block) | set(rejected)):
        rej = rejected.get(bid, [])
        acc = [(r["text"], r["topic"]) for r in by_block.get(bid, [])]
        rj = sum(p != y for p, (_, y) in zip(full.predict([t for t, _ in rej]), rej)) if rej else 0
        ac = sum(p != y for p, (_, y) in zip(full.predict([t for t, _ in acc]), acc)) if acc else 0
        print(f"      block {bid}: rejected {len(rej)}, truly off {rj} ({rj / max(len(rej), 1):.0%}); "
              f"accepted {len(acc)}, truly off {ac} ({ac / max(len(acc), 1):.0%})")
        out[f"{bid}_rejected_off"] = (rj, len(rej))
        out[f"{bid}_accepted_off"] = (ac, len(acc))
    confusion = {b: m.get("label_check") for b, m in manifest["blocks"].items()}
    print(f"    manifest label_check (intended -> read): {json.dumps(confusion)}")
    seed_rows = [json.loads(line) for line in seed_file.splitlines()]
    rng = random.Random(args.seed)
    for bid, recs in by_block.items():
        print(f"    sample of {bid} records (topic: text  <- source row):")
        for r in rng.sample(recs, min(args.show, len(recs))):
            src = r["_meta"].get("from")
            origin = f"  <- {json.dumps(seed_rows[src['row']]['text'])}" if src else ""
            print(f"      {r['topic']}: {json.dumps(r['text'])}{origin}")
    for bid, rej in rejected.items():
        print(f"    sample of {bid} records the label check rejected (intended: text -> full-real reads):")
        for (t, y), p in zip(rej[:args.show], full.predict([t for t, _ in rej[:args.show]])):
            print(f"      {y}: {json.dumps(t)} -> {p}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer test rows and records")
    ap.add_argument("--seed", type=int, default=1, help="the sample of seed and held-out rows, and the dataset seed")
    ap.add_argument("--task", choices=("address", "headlines", "both"), default="both")
    ap.add_argument("--no-scratch", action="store_true", help="headlines: no from-scratch block")
    ap.add_argument("--show", type=int, default=5, help="records shown per block")
    ap.add_argument("--keep", type=Path, help="copy the address runs' folders here")
    ap.add_argument("--noise", action="store_true", help="addresses: case noise on the grown texts (synthlang "
                    "leaves mentioned values as they are, so only the words around them change case)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    print("command: " + show_cmd([Path(sys.executable).name, "bench/bench_growth.py", *sys.argv[1:]]))
    results = []
    if args.task in ("address", "both"):
        results.append(run_addresses(args))
    if args.task in ("headlines", "both"):
        results.append(run_headlines(args))
    print("\nsummary")
    for r in results:
        task = "extraction" if r["task"] == "address" else "classification"
        for what, v in r["verdicts"].items():
            beats = "beats" if v["exceeds"] else "does NOT beat"
            print(f"  {task} ({what}): blend - real-only {v['diff']:+.3f} {v['metric']}, blend's half-width "
                  f"{v['half']:.3f}: {beats} real-only by more than the half-width; paired 95% interval of the "
                  f"difference [{v['paired'][0]:+.3f}, {v['paired'][1]:+.3f}]")
        for k, v in r.items():
            if k.endswith("_off"):
                print(f"  label check, {k.replace('_off', '').replace('_', ' ')} truly off label: {v[0]}/{v[1]}")
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
