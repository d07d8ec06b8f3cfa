"""Are the records a run emits plausible? Runs example specs on the embedded model with the
plausibility filters off and on, and reads every emitted synthetic record with a checker of its
own (written here, sharing no code with the runtime's filters), as a user reading the output
would. Prints per spec and mode the share of emitted records the checker finds degenerate (by
kind), values cut mid-word or mid-sentence (at the cap, or stopping on "the", "to", "I", ...), and the
acceptance rate. Target: under 2% degenerate emitted with the
filters on, and no value cut mid-word.

    python bench/bench_quality.py [--spec tickets|addresses|news|instructions ...] [--count N]
    python bench/bench_quality.py --notes [--count N]   # format-note variants, filters off

`--notes` runs the ticket spec once per way of describing the record to the model (the format
note in the system message) and prints the echo and cut rates each produces.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPECS = {"tickets": "specs/support_tickets/tickets.synth", "addresses": "specs/address_extraction/addresses.synth",
         "news": "specs/news_topics/news.synth", "instructions": "specs/self_instruct/instructions.synth"}


# the independent checker -------------------------------------------------------------------------
INSTRUCTION_WORDS = re.compile(r"characters|\bjson\b|\bkeys?\b\s*[:=]|\bitems?\s*\(|\bschema\b|\bplaceholder\b|"
                               r"\btrue or false\b|\bone of\b\s*\"", re.IGNORECASE)
PLACEHOLDER = {"text", "string", "title", "name", "value", "example", "n/a", "none", "null", "...", "tbd",
               "lorem ipsum", "sample", "item", "tag", "text2", "string1"}
NONPROSE = re.compile(r"[<>|\\^~]|\d{8,}|(?=\w*\d)(?=\w*[a-zA-Z])\w{12,}|(^|\s)[\[{][^\s\]}]*[\]}]|\{\s*['\"]?\w+['\"]?\s*:")


def unbalanced(text: str) -> bool:
    depth = {"[": 0, "{": 0}
    for ch in text:
        if ch in "[{":
            depth[ch] += 1
        elif ch in "]}":
            depth["[" if ch == "]" else "{"] -= 1
    return any(depth.values()) or text.count("`") % 2 == 1


def free_text(schema: dict, record: dict, path: str = "") -> list[tuple[str, str, int | None]]:
    """(field path, value, maxLength) of each model-written free-text string of a record."""
    out = []
    for name, sub in schema.get("properties", {}).items():
        if name not in record or record[name] is None:
            continue
        sub = next((s for s in sub.get("anyOf", []) if s.get("type") != "null"), sub)
        value = record[name]
        if sub.get("type") == "object" and isinstance(value, dict):
            out += free_text(sub, value, f"{path}{name}.")
        elif sub.get("type") == "array" and isinstance(value, list):
            items = sub.get("items", {})
            for v in value:
                if items.get("type") == "string" and isinstance(v, str) and "pattern" not in items and "enum" not in items:
                    out.append((f"{path}{name}[]", v, items.get("maxLength")))
                elif items.get("type") == "object" and isinstance(v, dict):
                    out += free_text(items, v, f"{path}{name}[].")
        elif sub.get("type") == "string" and isinstance(value, str) and "pattern" not in sub and "enum" not in sub:
            out.append((f"{path}{name}", value, sub.get("maxLength")))
    return out


def lists_of(schema: dict, record: dict) -> list[list]:
    out = []
    for name, sub in schema.get("properties", {}).items():
        if isinstance(record.get(name), list):
            out.append(record[name])
        elif sub.get("type") == "object" and isinstance(record.get(name), dict):
            out += lists_of(sub, record[name])
    return out


def cut_mid_word(value: str, cap: int | None) -> bool:
    """At (or one off) its cap and ending in a letter or digit: the cap cut it."""
    if cap is None or len(value) < cap - 1:
        return False
    tail = value.rstrip()
    return bool(tail) and tail[-1].isalnum() and len(value) >= cap - 1


DANGLING = {"the", "a", "an", "to", "of", "in", "on", "at", "for", "with", "and", "or", "but", "i", "my", "your",
            "is", "are", "was", "be", "that", "this", "from", "by", "as", "we", "our"}


def unfinished(value: str) -> bool:
    """Stops on a word no sentence ends with, or on a hyphen: cut, wherever the cut came from."""
    tail = value.rstrip()
    words = re.findall(r"[A-Za-z0-9']+|-$", tail)   # `Add-on 1` stops on "1", not on "on"
    return bool(words) and not tail.endswith((".", "!", "?", '"', "'", ")")) and (
        words[-1].lower() in DANGLING or tail.endswith("-"))


def degenerate(record: dict, schema: dict, field_names: set[str], seed_values: dict[str, set[str]],
               mentioned: list[str]) -> list[str]:
    """What looks wrong in one emitted record, as kinds; empty when it reads as plausible."""
    kinds = []
    for path, value, cap in free_text(schema, record):
        low = value.strip().lower()
        if cut_mid_word(value, cap) or unfinished(value):
            kinds.append("cut")
        if INSTRUCTION_WORDS.search(value) or re.search(r"(^|\s)(" + "|".join(map(re.escape, field_names)) +
                                                        r")\s*:", value, re.IGNORECASE):
            kinds.append("instructions")
        if low in PLACEHOLDER or low in field_names or not re.search(r"[a-zA-Z]{2}", value):
            kinds.append("placeholder")
        words = re.findall(r"[a-z0-9']+", low)
        four = Counter(zip(words, words[1:], words[2:], words[3:]))
        if four and four.most_common(1)[0][1] >= 3:
            kinds.append("loop")
        if len(value) >= 120 and len(zlib.compress(value.encode())) < 0.4 * len(value.encode()):
            kinds.append("loop")
        if NONPROSE.search(value) or unbalanced(value) or value.lstrip()[:1] in "[{":
            kinds.append("not prose")
        if " ".join(words) in seed_values.get(path, set()):
            kinds.append("seed copy")
    for items in lists_of(schema, record):
        norm = [json.dumps(i, sort_keys=True).lower() for i in items]
        if len(norm) != len(set(norm)):
            kinds.append("repeated items")
    for text in (v for _, v, _ in free_text(schema, record)):
        for m in mentioned:
            if m and text.count(m) > 1:
                kinds.append("mention repeated")
            i = text.find(m)
            if m and i >= 0 and ((i > 0 and text[i - 1].isalnum()) or
                                 (i + len(m) < len(text) and text[i + len(m)].isalnum())):
                kinds.append("mention glued")
    return sorted(set(kinds))


# running a spec ----------------------------------------------------------------------------------
def run_spec(spec_path: Path, count: int | None, filters: bool, out: Path) -> dict:
    from synthlang.compiler import compile
    from synthlang.ir import PLAUSIBILITY_FILTERS
    from synthlang.runtime.driver import run_plan
    from synthlang.runtime.options import RunOptions

    if count is not None:
        text = re.sub(r"count \d+", f"count {count}", spec_path.read_text())
        text = re.sub(r"\n\s*mix [^\n]*", "", text)  # only synthetic records are read; seeds may be too few to mix
        spec_path.write_text(text)
    plan = compile(spec_path).plan
    assert plan is not None, f"{spec_path} does not compile"
    if not filters:
        plan = plan.copy(blocks=tuple(b.copy(allow=PLAUSIBILITY_FILTERS) for b in plan.blocks))
    from synthlang.runtime.attempts import Attempts
    from synthlang.runtime.driver import CellFailed

    spent = [0.0]
    original = Attempts._plausible

    def timed(self, *args):  # what the filters cost, against the whole run
        t0 = time.perf_counter()
        try:
            return original(self, *args)
        finally:
            spent[0] += time.perf_counter() - t0

    Attempts._plausible = timed  # type: ignore[method-assign]
    start = time.perf_counter()
    try:
        run_plan(plan, RunOptions(out_dir=out, fresh=True, progress=False))
    except CellFailed as exc:
        print(f"   {spec_path.stem}: {exc}")
        return {"seconds": time.perf_counter() - start, "records": 0, "bad": 0, "kinds": Counter(), "cut": 0,
                "attempts": 1, "accepted": 0, "examples": [], "rejected": Counter(), "filter_seconds": spent[0]}
    finally:
        Attempts._plausible = original  # type: ignore[method-assign]
    seconds = time.perf_counter() - start
    manifest = json.loads((out / "manifest.json").read_text())
    result = {"seconds": seconds, "records": 0, "bad": 0, "kinds": Counter(), "cut": 0, "attempts": 0,
              "accepted": 0, "examples": [], "rejected": Counter(), "filter_seconds": spent[0]}
    for block in plan.blocks:
        st = manifest["blocks"][block.id]
        result["attempts"] += st["attempts"]
        result["accepted"] += st["accepted"]
        for why, n in st["rejections"].items():
            result["rejected"][why.split(":")[0]] += n
        fields = {f.name.lower() for f in plan.schemas[block.schema_name].fields}
        seeds: dict[str, set[str]] = {}
        for row in plan.seed_rows(block.schema_name):
            for path, value, _ in free_text(block.json_schema, row):
                seeds.setdefault(path, set()).add(" ".join(re.findall(r"[a-z0-9']+", value.lower())))
        for split in st["splits"].values():
            for line in (out / split["path"]).read_text().splitlines():
                rec = json.loads(line)
                if rec["_meta"].get("source") != "synthetic" or rec["_meta"].get("block") != block.id:
                    continue
                mentioned = [str(rec.get(v)) for mc in block.mentions for v in mc.values]
                kinds = degenerate(rec, block.json_schema, fields, seeds, mentioned)
                result["records"] += 1
                result["bad"] += bool(kinds)
                result["cut"] += "cut" in kinds
                result["kinds"].update(kinds)
                if kinds and len(result["examples"]) < 12:
                    result["examples"].append((kinds, {k: v for k, v in rec.items() if k != "_meta"}))
    return result


def spec_copy(tmp: Path, name: str) -> Path:
    src = ROOT / SPECS[name]
    dst = tmp / name
    shutil.copytree(src.parent, dst)
    return dst / src.name


def show(label: str, r: dict) -> None:
    share = r["bad"] / max(r["records"], 1)
    acc = r["accepted"] / max(r["attempts"], 1)
    kinds = ", ".join(f"{k} {n}" for k, n in r["kinds"].most_common()) or "-"
    print(f"{label:<28} records {r['records']:>3}  degenerate {share:6.1%}  cut mid-word {r['cut']:>2}  "
          f"acceptance {acc:6.1%}  {r['seconds']:6.1f} s  [{kinds}]", flush=True)
    if r["filter_seconds"] and "filters on" in label:
        print(" " * 29 + f"the filters took {r['filter_seconds']:.3f} s of {r['seconds']:.1f} s "
              f"({r['filter_seconds'] / r['seconds']:.2%})")
    if r["rejected"]:
        print(" " * 29 + "rejected: " + ", ".join(f"{k} {n / r['attempts']:.0%}" for k, n in r["rejected"].most_common()))


# format-note variants ----------------------------------------------------------------------------
def note_variants() -> dict:
    from synthlang.runtime import prompts

    def describe(v: dict) -> str:
        if "enum" in v:
            return "one of " + ", ".join(json.dumps(x) for x in v["enum"])
        kind = v.get("type")
        if kind == "string":
            return f"text, {v.get('minLength', 0)}-{v['maxLength']} characters" if v.get("maxLength") else "text"
        if kind == "array":
            return f"list of up to {v.get('maxItems')} items ({describe(v.get('items', {}))})"
        return {"integer": "integer", "number": "number", "boolean": "true or false"}.get(kind, "value")

    def keys_with_types(schema: dict) -> str:   # the note as it was: keys with type descriptions
        fields = "; ".join(f"{k}: {describe(v)}" for k, v in schema.get("properties", {}).items())
        return f"Reply with one JSON object with the keys {fields}."

    def words(v: dict) -> str:
        return prompts._words(v)


    def shape(schema: dict) -> str:             # a one-line example of the JSON shape
        def value(k: str, v: dict) -> object:
            kind = v.get("type")
            if kind == "string":
                return v["enum"][0] if "enum" in v else f"<{k.replace('_', ' ')}, {words(v)}>"
            if kind == "array":
                return [value(k, v.get("items", {}))]
            if kind == "object":
                return {kk: value(kk, vv) for kk, vv in v.get("properties", {}).items()}
            return {"integer": 3, "number": 1.5, "boolean": True}.get(kind)
        return "Reply with JSON like " + json.dumps({k: value(k, v) for k, v in schema.get("properties", {}).items()})

    return {"keys and types": keys_with_types, "none": lambda schema: "", "shape": shape,
            "budget in words (current)": prompts.format_note}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", nargs="*", default=list(SPECS), choices=list(SPECS))
    ap.add_argument("--count", type=int, default=None, help="records per spec (default: the spec's count)")
    ap.add_argument("--notes", action="store_true", help="compare format-note variants on the ticket spec")
    ap.add_argument("--show", action="store_true", help="print a few degenerate records per run")
    ap.add_argument("--filters", choices=["both", "on", "off"], default="both")
    ap.add_argument("--keep", type=Path, help="copy each run's output folder here, to read the records")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.notes:
            from synthlang.runtime import prompts

            original = prompts.format_note
            for label, note in note_variants().items():
                prompts.format_note = note
                r = run_spec(spec_copy(tmp / label.replace(" ", "_"), "tickets"), args.count, False, tmp / "out")
                show(f"note: {label}", r)
                prompts.format_note = original
            return
        for name in args.spec:
            for filters in {"both": (False, True), "on": (True,), "off": (False,)}[args.filters]:
                r = run_spec(spec_copy(tmp / f"{name}-{filters}", name), args.count, filters, tmp / "out")
                show(f"{name} filters {'on' if filters else 'off'}", r)
                if args.keep:
                    shutil.copytree(tmp / "out", args.keep / f"{name}-filters-{'on' if filters else 'off'}",
                                    dirs_exist_ok=True)
                if args.show:
                    for kinds, rec in r["examples"]:
                        print("   ", kinds, json.dumps(rec, ensure_ascii=False)[:300])


if __name__ == "__main__":
    main()
