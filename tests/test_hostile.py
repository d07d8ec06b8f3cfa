"""Hostile specs, seeds and plans, tried as an attacker and as a careless user would: each case
asserts its exact outcome (a diagnostic code at a line, or a refusal with exit code and reason),
that nothing changed outside a temporary tree (the whole tree is compared before and after,
symlink targets included), and that every command finishes within a time limit."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthlang.plan.model import Plan

TIMEOUT = 60
MINIMAL = 'schema T { b: str(1..10) }\ngenerate T { count 2 }\n'


def synthc(*args, cwd=None, timeout=TIMEOUT, env=None):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "synthlang.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env={**os.environ, **(env or {})})
    proc.seconds = time.perf_counter() - start
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr[-2000:]
    return proc


def snapshot(root: Path) -> dict:
    """Every entry under root: file digests, folders, and symlinks with their targets."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
    return out


@pytest.fixture
def tree(tmp_path):
    """A spec folder beside a victim folder that nothing may touch."""
    spec_dir, victim = tmp_path / "spec", tmp_path / "victim"
    spec_dir.mkdir()
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    return spec_dir, victim


@pytest.mark.parametrize("template", [
    '{% set a = "x" * 100000 %}{% set b = a ~ a %}{% set c = b ~ b %}{{ c|length }}',
    '{% set a = "x" * 100000 %}{{ a|replace("x", "yyyyyyyyyy")|length }}',
    '{% set a = "x" * 100000 %}{{ a.replace("x", "yyyyyyyyyy")|length }}',
    '{% set a = ["x" * 50000] * 50 %}{{ a|join("")|length }}',
    '{{ "a".ljust(10 ** 9)|length }}',
    '{{ ("%s" * 1000) % (("x" * 1000,) * 1000) }}',
    '{% set a = "\n" * 100000 %}{{ a|indent(10000)|length }}',
    '{% set s = "x" * 100000 %}{{ (("%(a)s" * 20000) % {"a": s})|length }}',
    '{% set s = "x" * 100000 %}{{ (("%(a)s" * 300)|format(a=s))|length }}',
    '{% set s = "x" * 100000 %}{{ (s|join(s))|length }}',
    '{% set s = "x" * 100000 %}{{ s.join(s)|length }}',
    '{% set s = "x " * 50000 %}{{ (s|wordwrap(1, wrapstring="x" * 1000))|length }}',
    '{% set s = "x" * 100000 %}{{ [s] * 100000 }}',
    '{% set s = "x" * 1000 %}{{ ([s] * 150)|string|upper|length }}{{ ([s] * 150) ~ ([s] * 150) }}',
])
def test_strings_a_template_builds_are_sized_before_they_are_built(tree, template):
    spec_dir, _ = tree
    spec = spec_dir / "j.synth"
    spec.write_text(MINIMAL.replace("count 2", f"count 2\n prompt \"\"\"{template}\"\"\""))
    proc = synthc("run", spec, "--fake-engine", "--max-attempts", "2", timeout=60)
    assert proc.returncode == 1 and "would build a string of over 200,000 characters" in proc.stderr, \
        proc.stderr[-1500:]
    assert proc.seconds < 30


@pytest.mark.parametrize("template, reason", [
    ("{{ " + "(" * 80 + "1" + ")" * 80 + " }}", "brackets nest more than 30 deep"),
    ("{% for a in [1] %}" * 300 + "x" + "{% endfor %}" * 300, "blocks (`for`, `if`, `macro`, ...) nest more than 16"),
    ("{% for a in [1] %}" * 120 + "x" + "{% endfor %}" * 120, "blocks (`for`, `if`, `macro`, ...) nest more than 16"),
    ("{% if true %}" * 400 + "x" + "{% endif %}" * 400, "nest more than 16"),
    ("{{ " + "-" * 5000 + "1 }}", "more than 100 operators"),
    ("{{ " + " + ".join(["1"] * 20000) + " }}", "more than 100 operators"),
    ("{% include 'other.txt' %}", "`include` reads another template"),
    ("{% import 'm.txt' as m %}", "`import` reads another template"),
    ("{% from 'm.txt' import x %}", "`from` reads another template"),
])
def test_template_nesting_and_file_tags_are_located_at_check(tree, template, reason):
    spec_dir, _ = tree
    spec = spec_dir / "j.synth"
    spec.write_text(MINIMAL.replace("count 2", f'count 2\n prompt """\nhello\n{template}"""'))
    proc = check_json(spec)
    assert proc.returncode == 1 and codes_at(proc) == [("E0501", 5)], proc.stdout[-800:]
    assert reason in json.loads(proc.stdout)[0]["message"]


def test_filters_that_take_the_environment_work_in_the_sandbox(tree):
    spec_dir, _ = tree
    spec = spec_dir / "j.synth"
    spec.write_text('schema T { label: "billing" | "shipping"  b: str(1..10) }\n'
                    'generate T { count 2\n quota label { "billing": 50%, "shipping": 50% }\n'
                    ' prompt """{{ label|truncate(3) }} {{ label|wordwrap(3) }} {{ label|center(12) }}""" }\n')
    proc = synthc("run", spec, "--fake-engine", timeout=60)
    assert proc.returncode == 0, proc.stderr[-1500:]
    manifest = json.loads((spec_dir / "out/j/manifest.json").read_text())
    assert manifest["complete"] and manifest["blocks"]["T"]["accepted"] == 2, manifest


def codes_at(proc) -> list[tuple[str, int]]:
    return [(d["code"], d.get("line")) for d in json.loads(proc.stdout)]


def check_json(spec: Path):
    return synthc("check", "--format", "json", spec)


# ---- nothing is written outside the spec's folder tree ---------------------------------------

def test_symlinked_default_output_folder_is_refused(tree):
    spec_dir, victim = tree
    (spec_dir / "t.synth").write_text(MINIMAL)
    (spec_dir / "out").symlink_to(victim)
    before = snapshot(victim.parent)
    proc = synthc("run", spec_dir / "t.synth", "--fake-engine")
    assert proc.returncode == 1
    assert "leaves the spec's folder tree" in proc.stderr
    assert snapshot(victim.parent) == before


def test_spec_whose_stem_is_dotdot_writes_below_out(tree):
    spec_dir, victim = tree
    (spec_dir / "...synth").write_text(MINIMAL)
    (spec_dir / "other.txt").write_text("mine")
    proc = synthc("run", spec_dir / "...synth", "--fake-engine")
    assert proc.returncode == 0, proc.stderr
    assert (spec_dir / "out" / "dataset" / "train.jsonl").is_file()
    assert sorted(p.name for p in spec_dir.iterdir()) == ["...synth", "other.txt", "out"]


@pytest.mark.parametrize("planted", ["train.jsonl", ".synth", "manifest.json", "README.md", "report.html",
                                     ".synth/journal.jsonl", ".train.jsonl.tmp"])
def test_symlinks_planted_in_the_output_folder_are_never_followed(tree, planted):
    spec_dir, victim = tree
    (spec_dir / "t.synth").write_text(MINIMAL)
    out = spec_dir / "out" / "t"
    target = victim if planted == ".synth" else victim / "keep.txt"
    link = out / planted
    link.parent.mkdir(parents=True)
    link.symlink_to(target)
    before = snapshot(victim)
    proc = synthc("run", spec_dir / "t.synth", "--fake-engine")
    assert snapshot(victim) == before
    if planted == ".synth":
        assert proc.returncode == 1 and "leads out of" in proc.stderr
    elif planted == ".synth/journal.jsonl":
        assert proc.returncode == 1  # O_NOFOLLOW refuses the journal; nothing outside is read or written
    else:
        assert proc.returncode == 0, proc.stderr
        assert not (out / planted).is_symlink()


def test_output_folder_holding_a_seed_file_is_refused(tree):
    spec_dir, _ = tree
    (spec_dir / "seeds").mkdir()
    (spec_dir / "seeds" / "train.jsonl").write_text('{"b": "hello"}\n')
    spec = spec_dir / "s.synth"
    spec.write_text('seeds s from "seeds/train.jsonl" as T\n' + MINIMAL + 'output "seeds" { format jsonl }\n')
    before = snapshot(spec_dir)
    assert codes_at(check_json(spec)) == [("E0901", 4)]
    assert synthc("run", spec, "--fake-engine").returncode == 1
    assert snapshot(spec_dir) == before


def test_output_over_the_spec_folder_or_a_file_is_refused(tree):
    spec_dir, _ = tree
    (spec_dir / "data.txt").write_text("x")
    for out in (".", "data.txt", "../victim", "/tmp"):
        spec = spec_dir / "o.synth"
        spec.write_text(MINIMAL + f'output "{out}" {{ format jsonl }}\n')
        assert codes_at(check_json(spec)) == [("E0901", 3)], out


def test_out_pointing_at_a_file_is_a_clear_error(tree):
    spec_dir, _ = tree
    (spec_dir / "t.synth").write_text(MINIMAL)
    (spec_dir / "file").write_text("x")
    proc = synthc("run", spec_dir / "t.synth", "--fake-engine", "--out", spec_dir / "file")
    assert proc.returncode == 1 and "not a folder" in proc.stderr
    assert (spec_dir / "file").read_text() == "x"


def test_a_damaged_journal_names_fresh(tree):
    spec_dir, _ = tree
    (spec_dir / "t.synth").write_text(MINIMAL)
    assert synthc("run", spec_dir / "t.synth", "--fake-engine").returncode == 0
    journal = spec_dir / "out" / "t" / ".synth" / "journal.jsonl"
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:1] + ['{"b": "T", "c": 99, "a": 0, "ok": false, "why": "x"}'] + lines[1:]) + "\n")
    proc = synthc("run", spec_dir / "t.synth", "--fake-engine")
    assert proc.returncode == 1 and "--fresh" in proc.stderr
    journal.write_text("garbage\n")
    proc = synthc("run", spec_dir / "t.synth", "--fake-engine")
    assert proc.returncode == 1 and "damaged" in proc.stderr and "--fresh" in proc.stderr
    assert synthc("run", spec_dir / "t.synth", "--fake-engine", "--fresh").returncode == 0


# ---- no secret leaves, no file is probed --------------------------------------------------------

@pytest.mark.parametrize("endpoint, key, line", [
    ("file:///etc/passwd", None, 2),
    ("http://user:pw@example.com/v1", None, 2),
    ("https://example.com/v1", "AWS_SECRET_ACCESS_KEY", 3),
    ("https://example.com/v1", "HOME", 3),
    ("http://example.com/v1", "OPENAI_API_KEY", 3),
])
def test_endpoints_and_key_variables(tree, endpoint, key, line):
    spec_dir, _ = tree
    key_line = f'  api_key_env "{key}"\n' if key else "  concurrency 1\n"
    spec = spec_dir / "m.synth"
    spec.write_text(f'model m {{ engine openai name "x"\n  endpoint "{endpoint}"\n{key_line}}}\n'
                    + MINIMAL.replace("count 2", "count 2 using m"))
    assert codes_at(check_json(spec)) == [("E0107", line)]
    text = synthc("check", spec)
    assert f"network: model `m` sends requests to {endpoint}" in text.stderr


def test_loopback_http_with_a_key_is_allowed_and_listed(tree):
    spec_dir, _ = tree
    spec = spec_dir / "m.synth"
    spec.write_text('model m { engine openai name "x"\n endpoint "http://127.0.0.1:9/v1"\n api_key_env "LOCAL_TOKEN" }\n'
                    + MINIMAL.replace("count 2", "count 2 using m"))
    proc = synthc("check", spec)
    assert proc.returncode == 0, proc.stderr
    assert "network: model `m` sends requests to http://127.0.0.1:9/v1, with the key in $LOCAL_TOKEN" in proc.stderr


# ---- check finishes fast on any input -----------------------------------------------------------

def test_constant_folding_in_a_template_does_not_run_at_check(tree):
    spec_dir, _ = tree
    spec = spec_dir / "j.synth"
    spec.write_text(MINIMAL.replace("count 2", 'count 2\n prompt "{{ [1] * 500000000 }}"'))
    proc = synthc("check", spec, timeout=20)
    assert proc.returncode == 0 and proc.seconds < 10


@pytest.mark.parametrize("template, reason", [
    ("{{ [1] * 500000000 }}", "would build a sequence"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "loops more than"),
    ('{{ "x"|center(1000000000) }}', "over the limit"),
    ('{{ "%0999999999d"|format(1) }}', "format width"),
    ('{{ "{:>999999999}".format(1) }}', "format width"),
    ('{{ "%999999999s" % "x" }}', "format width"),
    ('{{ "{:>{}}".format("x", 10 ** 9) }}', "format width taken from an argument"),
    ("{{ ''.__class__.__mro__ }}", "unsafe"),
])
def test_templates_are_bounded_at_run_time(tree, template, reason):
    spec_dir, _ = tree
    spec = spec_dir / "j.synth"
    spec.write_text(MINIMAL.replace("count 2", f'count 2\n prompt """{template}"""'))
    proc = synthc("run", spec, "--fake-engine", "--max-attempts", "2", timeout=60)
    assert proc.returncode == 1 and reason in proc.stderr, proc.stderr[-1500:]
    assert proc.seconds < 30


@pytest.mark.parametrize("where", ["pick", "check", "seed"])
def test_backtracking_regexes_finish(tree, where):
    spec_dir, _ = tree
    evil = "a" * 60 + "!"
    (spec_dir / "seeds.jsonl").write_text(json.dumps({"k": evil, "b": "hello"}) + "\n")
    field = f'k: str(/(a+)+$/) ~ pick("{evil}")' if where == "pick" else "k: str(1..80) ~ faker(\"word\")"
    if where == "seed":
        field = "k: str(/(a|aa)+/)?"
    check = '\n check k matches /(a|a)*b/' if where == "check" else ""
    seeds = 'seeds s from "seeds.jsonl" as T\n' if where == "seed" else ""
    spec = spec_dir / "r.synth"
    spec.write_text(f"{seeds}schema T {{ {field}\n b: str(1..10) }}\ngenerate T {{ count 2{check} }}\n")
    proc = check_json(spec)
    assert proc.seconds < 15
    if where == "check":
        assert proc.returncode == 0
    else:
        assert [c for c, _ in codes_at(proc)] == ["E0207" if where == "pick" else "E0302"]


def test_a_thousand_value_quota_and_a_huge_joint_table(tree):
    spec_dir, _ = tree
    vals = [f"v{i}" for i in range(1000)]
    enum = "enum E { " + ", ".join(vals) + " }\n"
    spec = spec_dir / "q.synth"
    spec.write_text(enum + "schema T { e: E\n f: bool\n b: str(1..10) }\ngenerate T { count 100000\n quota e { "
                    + ", ".join(f"{v}: 0.1%" for v in vals) + " }\n quota f { true: 50%, false: 50% } }\n")
    proc = synthc("check", spec)
    assert proc.returncode == 0 and proc.seconds < 15, proc.stderr[-500:]
    big = [f"w{i}" for i in range(3000)]
    spec.write_text("enum E { " + ", ".join(big) + " }\nenum F { " + ", ".join(big) + " }\n"
                    "schema T { e: E\n f: F\n b: str(1..10) }\ngenerate T { count 3000\n quota e { "
                    + ", ".join(f"{v}: 1" for v in big) + " }\n quota f { " + ", ".join(f"{v}: 1" for v in big) + " } }\n")
    proc = check_json(spec)
    assert codes_at(proc) == [("E0403", 8)] and proc.seconds < 20


def _dense(blocks: int) -> str:
    """Small declarations back to back: the most tokens (and checking work) per byte."""
    return "enum L { a, b }\n" + "".join(
        f"schema S{i} {{ l: L\n n: int(1..9) ~ uniform\n b: str(5..80) }}\n"
        f"generate S{i} {{ count 10\n quota l {{ a: 50%, b: 50% }}\n check len(b) > n }}\n" for i in range(blocks))


def test_token_budget_refuses_dense_specs_fast_and_counts_imports(tree):
    from synthlang.syntax.size import MAX_SPEC_TOKENS, count_tokens
    spec_dir, _ = tree
    spec = spec_dir / "dense.synth"
    spec.write_text(_dense(20_000))  # 2.3 MB, about 12 times the budget
    proc = check_json(spec)
    [(code, line)] = codes_at(proc)
    assert code == "E0005" and proc.returncode == 1 and proc.seconds < 10
    # the line holds the first token past the budget
    lines = spec.read_text().split("\n")
    assert count_tokens("\n".join(lines[:line - 1]), 10**9)[0] <= MAX_SPEC_TOKENS
    assert count_tokens("\n".join(lines[:line]), 10**9)[0] > MAX_SPEC_TOKENS
    # just under the budget checks clean; the same text spread over imports shares one budget
    per_block = count_tokens(_dense(2), 10**9)[0] - count_tokens(_dense(1), 10**9)[0]
    fits = (MAX_SPEC_TOKENS - 10) // per_block
    spec.write_text(_dense(fits))
    assert count_tokens(spec.read_text(), 10**9)[0] <= MAX_SPEC_TOKENS
    assert synthc("check", spec).returncode == 0
    text = _dense(fits).replace("enum L", "enum M").replace(" L\n", " M\n").replace("S", "U")
    (spec_dir / "more.synth").write_text(text)
    spec.write_text('import "more.synth"\n' + _dense(fits))
    proc = check_json(spec)
    [diag] = json.loads(proc.stdout)  # the entry fits; the import it reads next crosses the budget
    assert (diag["code"], Path(diag["path"]).name) == ("E0005", "more.synth")
    assert "the spec and its imports have more than 50,000 tokens" in diag["message"]


def test_examples_matching_many_cells_and_rows_is_indexed(tree):
    spec_dir, _ = tree
    vals = [f"v{i}" for i in range(500)]
    rows = "".join(json.dumps({"e": vals[i % 500], "b": f"row {i}"}) + "\n" for i in range(100_000))
    (spec_dir / "seeds.jsonl").write_text(rows)
    spec = spec_dir / "x.synth"
    spec.write_text("enum E { " + ", ".join(vals) + " }\nseeds s from \"seeds.jsonl\" as T\n"
                    "schema T { e: E\n b: str(1..10) }\ngenerate T { count 500\n quota e { "
                    + ", ".join(f"{v}: 1" for v in vals) + " }\n examples 2 from s matching e }\n")
    proc = synthc("check", spec, timeout=120)
    assert proc.returncode == 0 and proc.seconds < 60, proc.stderr[-500:]


def test_fifo_seed_file_is_refused(tree):
    spec_dir, _ = tree
    os.mkfifo(spec_dir / "seeds.jsonl")
    spec = spec_dir / "f.synth"
    spec.write_text('seeds s from "seeds.jsonl" as T\n' + MINIMAL)
    proc = check_json(spec)
    assert codes_at(proc) == [("E0301", 1)] and "not a regular file" in proc.stdout


def test_oversized_spec_is_refused_with_a_diagnostic(tree):
    spec_dir, _ = tree
    spec = spec_dir / "big.synth"
    spec.write_text("# " + "x" * (9 * 2**20) + "\n" + MINIMAL)
    proc = check_json(spec)
    assert [c for c, _ in codes_at(proc)] == ["E0003"] and "larger than the limit" in proc.stdout


# ---- every bad input is a located diagnostic ------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("schema A { b: B\n x: str(1..5) }\nschema B { a: A }\ngenerate A { count 3 }\n", [("E0210", 1)]),
    ("enum E { }\nschema T { e: E }\ngenerate T { count 3 }\n", [("E0202", 1)]),
    ("schema T { a: int(1..5) }\ngenerate T { count " + "9" * 5000 + " }\n", [("E0004", 2)]),
    ('schema T { q: "a" | "b"\n b: str(1..10) }\ngenerate T { count 10\n quota q { a: 50%, b: 50% }\n'
     " check round(1e300 * 1e300) > 0 }\n", []),
    ('schema T { a: str ~ faker("image")\n b: str(1..10) }\ngenerate T { count 3 }\n', [("E0205", 1)]),
    ('schema T { a: str ~ faker("profile")\n b: str(1..10) }\ngenerate T { count 3 }\n', [("E0205", 1)]),
    ('seeds s from "' + "a" * 300 + '.jsonl" as T\n' + MINIMAL, [("E0301", 1)]),
    ('import "' + "b" * 300 + '.synth"\n' + MINIMAL, [("E0104", 1)]),
    (MINIMAL + 'output "out/' + "c" * 300 + '" { format jsonl }\n', [("E0901", 3)]),
    ('schema T { q: "a" | "b"\n b: str(1..10) }\ngenerate T { count 2 }\nevaluate q { text b\n test "'
     + "d" * 300 + '.jsonl" }\n', [("E1001", 5)]),
    ("schema T { a: int(1..5) ~ uniform\n b: str(1..10) }\ngenerate T { count 10\n check "
     + " + ".join(["a"] * 200) + " > 0 }\n", []),
    ("schema T { a: int(1..5) ~ uniform\n b: str(1..10) }\ngenerate T { count 10\n check "
     + " or ".join(["a == 1"] * 200) + " }\n", []),
    ("schema T { a: int(1..5) ~ uniform\n b: str(1..10) }\ngenerate T { count 10\n check "
     + " + ".join(["a"] * 1000) + " > 0 }\n", [("E0001", 4)]),
])
def test_bad_input_is_a_located_diagnostic(tree, text, expected):
    spec_dir, _ = tree
    spec = spec_dir / "s.synth"
    spec.write_text(text)
    proc = check_json(spec)
    assert [d for d in codes_at(proc) if not d[0].startswith("W")] == expected, proc.stdout[-1500:]
    assert proc.returncode == (1 if expected else 0)


KEYWORDS = ["text", "count", "using", "prompt", "quota", "examples", "noise", "check", "dedup", "judge",
            "format", "split", "mix", "test", "compare", "seeds", "schema", "model", "output", "uniform"]


@pytest.mark.parametrize("before", ['c: "a" | "b"', "c: int = 5", 'c: str = "x"', "c: date = 2024-01-01",
                                    "c: float = 25%"])
def test_block_keywords_are_field_names_after_any_field(tree, before):
    spec_dir, _ = tree
    fields = "\n  ".join(f"{k}: str(1..10)" for k in KEYWORDS)
    spec = spec_dir / "k.synth"
    spec.write_text(f"schema T {{\n  {before}\n  {fields}\n}}\ngenerate T {{ count 2 }}\n")
    proc = check_json(spec)
    assert proc.returncode == 0, proc.stdout[-1000:]


@pytest.mark.parametrize("row", [
    '{"b": "' + "[" * 5000 + '"}',
    "[" * 100000,
    '{"b": "\\ud800"}',
    '{"b": NaN}',
    '{"b": ' + "1" * 5000 + "}",
])
def test_hostile_seed_rows_are_located(tree, row):
    spec_dir, _ = tree
    (spec_dir / "seeds.jsonl").write_text('{"b": "fine"}\n' + row + "\n")
    spec = spec_dir / "s.synth"
    spec.write_text('seeds s from "seeds.jsonl" as T\n' + MINIMAL)
    proc = check_json(spec)
    if row.startswith('{"b": "['):  # brackets inside a string are text, not nesting
        assert codes_at(proc) == [("E0302", 2)]  # too long for str(1..10)
    else:
        assert codes_at(proc) == [("E0302", 2)], proc.stdout[-800:]


@pytest.mark.parametrize("csv_text, line, words", [
    ("n,b,b\n1,one,two\n", 1, "the header names column `b` 2 times"),
    ("n,b\n\u0663,x\n", 2, "`\u0663` is not an integer"),
    ("n,b\n1_0,x\n", 2, "`1_0` is not an integer"),
    ("n,b\n99999999999999999999,x\n", 2, "out of range for an integer"),
    ("n,b\n9223372036854775808,x\n", 2, "out of range for an integer"),
])
def test_csv_seed_cells_python_reads_loosely_are_located(tree, csv_text, line, words):
    spec_dir, _ = tree
    (spec_dir / "seeds.csv").write_text(csv_text)
    spec = spec_dir / "s.synth"
    spec.write_text('seeds s from "seeds.csv" as T\nschema T { n: int  b: str(1..10) }\ngenerate T { count 2 }\n')
    proc = check_json(spec)
    assert codes_at(proc) == [("E0302", line)], proc.stdout[-800:]
    assert words in json.loads(proc.stdout)[0]["message"]


def test_a_jsonl_seed_row_naming_a_key_twice_is_located(tree):
    spec_dir, _ = tree
    (spec_dir / "seeds.jsonl").write_text('{"b": "fine"}\n{"b": "' + "x" * 50 + '", "b": "hello"}\n')
    spec = spec_dir / "s.synth"
    spec.write_text('seeds s from "seeds.jsonl" as T\n' + MINIMAL)
    proc = check_json(spec)
    assert codes_at(proc) == [("E0302", 2)] and "names `b` twice" in proc.stdout, proc.stdout


def test_integer_arithmetic_past_64_bits_is_an_evaluation_error(tree):
    spec_dir, _ = tree
    spec = spec_dir / "s.synth"
    for fmt in ("parquet", "jsonl"):
        spec.write_text("schema T { b: str(1..10)  v: int = 9223372036854775807 * 9223372036854775807 }\n"
                        f"generate T {{ count 2 }}\noutput \"out/p\" {{ format {fmt} }}\n")
        proc = synthc("run", spec, "--fake-engine", "--max-attempts", "3", "--fresh")
        assert proc.returncode == 1 and "top rejection reasons: derived: v (3)" in proc.stderr, proc.stderr[-800:]
        assert "more attempts would fail the same way" in proc.stderr and "--max-attempts" not in proc.stderr
    from synthlang.expr import EvalError, evaluate
    from synthlang.ir import Expr
    big = Expr(op="lit", value=9223372036854775807)
    with pytest.raises(EvalError, match="does not fit in a 64-bit integer"):
        evaluate(Expr(op="*", args=(big, big)), {})


def test_nested_json_and_surrogates_in_a_test_file_are_clear_errors(tree):
    spec_dir, _ = tree
    (spec_dir / "seeds.jsonl").write_text("".join(json.dumps({"q": q, "b": "hello"}) + "\n" for q in "ab" * 5))
    (spec_dir / "test.jsonl").write_text('{"q": "a", "b": "hi"}\n' + "[" * 50000 + "\n")
    spec = spec_dir / "e.synth"
    spec.write_text('seeds s from "seeds.jsonl" as T\nschema T { q: "a" | "b"\n b: str(1..10) }\n'
                    "generate T { count 4\n quota q { a: 50%, b: 50% } }\n"
                    'evaluate q { text b\n test "test.jsonl" }\n')
    assert synthc("run", spec, "--fake-engine").returncode == 0
    proc = synthc("eval", spec)
    assert proc.returncode == 1 and "test.jsonl:2" in proc.stderr


def test_a_test_row_whose_label_is_not_a_value_is_a_clear_error(tree):
    spec_dir, _ = tree
    (spec_dir / "seeds.jsonl").write_text("".join(json.dumps({"q": q, "b": "hello"}) + "\n" for q in "ab" * 5))
    (spec_dir / "test.jsonl").write_text('{"q": "a", "b": "hi"}\n{"q": "zzz", "b": "ho"}\n')
    spec = spec_dir / "e.synth"
    spec.write_text('seeds s from "seeds.jsonl" as T\nschema T { q: "a" | "b"\n b: str(1..10) }\n'
                    "generate T { count 4\n quota q { a: 50%, b: 50% } }\n"
                    'evaluate q { text b\n test "test.jsonl" }\n')
    assert synthc("run", spec, "--fake-engine").returncode == 0
    proc = synthc("eval", spec)
    assert proc.returncode == 1 and "test.jsonl: row 2 has q 'zzz', which is not a value of `q` (a, b)" in proc.stderr


# ---- plans are checked before they run ------------------------------------------------------------

@pytest.fixture
def plan_file(tree):
    spec_dir, _ = tree
    (spec_dir / "t.synth").write_text(MINIMAL)
    assert synthc("compile", spec_dir / "t.synth", "-o", spec_dir / "plan.json").returncode == 0
    return spec_dir / "plan.json"


def _rewrite(plan_file: Path, change) -> Path:
    data = json.loads(plan_file.read_text())
    data = copy.deepcopy(data)
    change(data)
    data["hash"] = Plan.content_hash(data)  # a hash anyone can recompute proves nothing
    plan_file.write_text(json.dumps(data))
    return plan_file


@pytest.mark.parametrize("change, reason", [
    (lambda d: d.update(schema_version=99), "plan format version 99"),
    (lambda d: d["output"].update(path="../../victim"), "without `..`"),
    (lambda d: d["output"].update(path="/tmp/x"), "relative path"),
    (lambda d: d["output"]["splits"][0].update(name="../x"), "is not a name"),
    (lambda d: d["blocks"][0].update(id="../../x"), "is not a name"),
    (lambda d: d["schemas"]["T"]["fields"][0]["type"].update(pattern="(?=a)b"), "invalid regex"),
    (lambda d: d["blocks"][0].update(prompt="{% for %}"), "not a valid template"),
    (lambda d: d["blocks"][0].update(prompt="{% for a in [1] %}" * 120 + "{% endfor %}" * 120),
     "nest more than 16 deep"),
    (lambda d: d["blocks"][0].update(prompt="{% include 'x' %}"), "`include` reads another template"),
    (lambda d: d["blocks"][0]["cells"][0].update(count=5), "do not add up"),
    (lambda d: d["models"]["embedded"].update(engine="openai", endpoint="http://evil.example.com/v1",
                                              api_key_env="AWS_SECRET_ACCESS_KEY"), "API key variable"),
])
def test_tampered_plans_are_refused(tree, plan_file, change, reason):
    _, victim = tree
    tampered = _rewrite(plan_file, change)
    before = snapshot(victim.parent)
    proc = synthc("run", tampered, "--fake-engine")
    assert proc.returncode == 1 and reason in proc.stderr, proc.stderr[-800:]
    assert snapshot(victim.parent) == before


@pytest.fixture
def rich_plan(tree):
    """The ticket example's plan (seeds, weights, a sampled int, noise, near dedup, mix), in the tree."""
    spec_dir, _ = tree
    example = Path(__file__).resolve().parents[1] / "specs/support_tickets"
    for item in example.rglob("*"):
        if item.is_file() and "out" not in item.relative_to(example).parts:
            (spec_dir / item.relative_to(example)).parent.mkdir(parents=True, exist_ok=True)
            (spec_dir / item.relative_to(example)).write_bytes(item.read_bytes())
    assert synthc("compile", spec_dir / "tickets.synth", "-o", spec_dir / "plan.json").returncode == 0
    return spec_dir / "plan.json"


def _field(d: dict, name: str) -> dict:
    return next(f for f in d["schemas"]["Ticket"]["fields"] if f["name"] == name)


def _sampled(d: dict, name: str) -> dict:
    return next(f for f in d["blocks"][0]["sampled"] if f["path"] == [name])


@pytest.mark.parametrize("change, reason", [
    (lambda d: d["output"]["mix"].update(share=float("nan")), "not a valid plan"),
    (lambda d: d["output"]["mix"].update(share=1e308), "the `mix` share of real rows lies in 0%..99%"),
    (lambda d: d["output"]["mix"].update(share=100.0), "the `mix` share of real rows lies in 0%..99%"),
    (lambda d: d["models"]["writer"].update(temperature=float("nan")), "not a valid plan"),
    (lambda d: d["models"]["writer"].update(temperature=50.0), "temperature lies in 0..5"),
    (lambda d: d["blocks"][0]["noise"][0].update(rate=float("nan")), "not a valid plan"),
    (lambda d: d["blocks"][0]["noise"][0].update(rate=3.0), "a noise rate lies in 0..1"),
    (lambda d: d["blocks"][0]["dedup"][0].update(threshold=-5.0), "a similarity threshold lies in (0, 1]"),
    (lambda d: d["seeds"]["real_tickets"].update(path="/etc/passwd"), "must be a relative path"),
    (lambda d: d["seeds"]["real_tickets"]["rows"][0].update(intent="zzz"), "row 1: intent: \"zzz\" is not one of"),
    (lambda d: d["seeds"]["real_tickets"]["rows"][0].update(subject="x" * 500), "row 1: subject: length 500"),
    (lambda d: d["seeds"]["real_tickets"]["rows"][0].update(extra="x"), "row 1: `extra` is not a field"),
    (lambda d: _sampled(d, "priority")["type"].update(min=9, max=2), "its range 9..2 is empty"),
    (lambda d: _sampled(d, "channel")["sampler"].update(weights=[1.0, 2.0]), "2 weights for 3 values"),
    (lambda d: _sampled(d, "opened")["type"].update(min="2024-12-31", max="2023-01-01"), "is empty"),
    (lambda d: _sampled(d, "opened")["type"].update(min="yesterday"), "are not ISO dates"),
    (lambda d: d["blocks"][0].update(quota_fields=["intent", "channel"]), "names other fields than the block's quota"),
    (lambda d: d["blocks"][0].update(quota_fields=["intent", "nope"]), "quota fields are not distinct fields"),
    (lambda d: d["blocks"][0]["cells"][1]["key"].update(intent="billing"), "two quota cells have the same key"),
    (lambda d: d["blocks"][0]["cells"][0]["key"].update(other="x"), "names other fields than the block's quota"),
    (lambda d: d["blocks"][0]["cells"][0]["key"].update(intent="zzz"), "a quota cell's key does not fit"),
    (lambda d: d["seeds"]["real_tickets"].update(rows=[]), "`mix` needs"),
    (lambda d: d["blocks"][0]["noise"][0].update(field="priority"), "does not fit field `priority`"),
    (lambda d: d["blocks"][0]["dedup"][0].update(field="nope"), "dedup names no field `nope`"),
    (lambda d: d["blocks"][0].update(allow=["everything"]), "`allow everything` names no plausibility filter"),
    (lambda d: d["blocks"][0]["examples"].update(n=10**6), "its examples ask for 1 to 100 rows"),
    (lambda d: d["blocks"][0].update(cells=[{**d["blocks"][0]["cells"][0], "count": 0}] * 200_001),
     "200,001 quota cells"),
    (lambda d: d["models"]["writer"].update(top_p=1), "not written as synthc writes plans"),
])
def test_plans_that_passed_validation_and_then_crashed_are_refused(tree, rich_plan, change, reason):
    _, victim = tree
    tampered = _rewrite(rich_plan, change)
    before = snapshot(victim.parent)
    proc = synthc("run", tampered, "--fake-engine")
    assert proc.returncode == 1 and reason in proc.stderr, proc.stderr[-800:]
    assert snapshot(victim.parent) == before
    assert not (tampered.parent / "out").exists()


def test_a_hand_edited_journal_record_is_checked_like_a_generated_one(tree):
    spec_dir, _ = tree
    spec = spec_dir / "s.synth"
    spec.write_text('schema T { label: "a" | "b" ~ uniform  b: str(1..10) }\ngenerate T { count 3 }\n')
    assert synthc("run", spec, "--fake-engine").returncode == 0
    journal = spec_dir / "out/s/.synth/journal.jsonl"
    lines = journal.read_text().splitlines()
    for edit, reason in [(lambda r: r.update(label="zzz"), "does not fit T: label"),
                         (lambda r: r.update(b="x" * 500), "does not fit T: b: length 500"),
                         (lambda r: r.update(extra=1), "has a field `extra`")]:
        entries = [json.loads(line) for line in lines]
        first = next(e for e in entries if e.get("ok"))
        edit(first["rec"])
        journal.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
        proc = synthc("run", spec, "--fake-engine")
        assert proc.returncode != 0 and reason in proc.stderr and "--fresh" in proc.stderr, proc.stderr[-800:]
        assert "zzz" not in (spec_dir / "out/s/train.jsonl").read_text()


def _journal_edit(spec_dir: Path, change) -> subprocess.CompletedProcess:
    """The journal of a finished 2-record run, changed, then the run again."""
    spec = spec_dir / "s.synth"
    spec.write_text(MINIMAL)
    assert synthc("run", spec, "--fake-engine", "--fresh").returncode == 0
    journal = spec_dir / "out/s/.synth/journal.jsonl"
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(change(lines)) + "\n")
    return synthc("run", spec, "--fake-engine")


def _first_ok(lines):
    return next(i for i, line in enumerate(lines) if '"ok":true' in line)


def _edited(lines, edit):
    i = _first_ok(lines)
    entry = json.loads(lines[i])
    edit(entry)
    return lines[:i] + [json.dumps(entry)] + lines[i + 1:]


@pytest.mark.parametrize("change, reason", [
    (lambda ls: ls + [ls[_first_ok(ls)]], "journaled twice"),
    (lambda ls: _edited(ls, lambda e: e.update(a=-1)), "out of range"),
    (lambda ls: _edited(ls, lambda e: e.update(a=10**30)), "out of range"),
    (lambda ls: ls + [json.dumps({**json.loads(ls[_first_ok(ls)]), "a": 50})], "holds more records than its 2"),
    (lambda ls: _edited(ls, lambda e: e["rec"]["_meta"].update(id="T-9")), "`_meta.id` 'T-9'"),
    (lambda ls: _edited(ls, lambda e: e["rec"]["_meta"].update(source="real")), "`_meta.source` 'real'"),
    (lambda ls: _edited(ls, lambda e: e["rec"]["_meta"].update({"\x1b[2J": 1})), "a `_meta` key synthc does not write"),
])
def test_a_journal_cannot_duplicate_or_forge_records(tree, change, reason):
    spec_dir, _ = tree
    before = (spec_dir / "out/s/train.jsonl").read_text() if (spec_dir / "out/s/train.jsonl").exists() else None
    proc = _journal_edit(spec_dir, change)
    assert proc.returncode == 1 and reason in proc.stderr and "--fresh" in proc.stderr, proc.stderr[-800:]
    assert "\x1b" not in proc.stderr
    rows = (spec_dir / "out/s/train.jsonl").read_text().splitlines()
    assert len(rows) == 2 and len(set(rows)) == 2 and before in (None, "\n".join(rows) + "\n")


def test_deeply_nested_plan_json_is_refused(tree):
    spec_dir, _ = tree
    (spec_dir / "p.json").write_text("[" * 200_000)
    proc = synthc("run", spec_dir / "p.json")
    assert proc.returncode == 1 and "is not a valid plan" in proc.stderr


# ---- diagnostics are safe to print; CRLF is LF ------------------------------------------------------

def test_no_escape_sequence_reaches_the_terminal(tree):
    spec_dir, _ = tree
    spec = spec_dir / "e.synth"
    spec.write_text('schema T { b: str(1..10) }\ngenerate T { count 3\n prompt "\x1b]0;pwned\x07 {{ nope\x1b[2J }}" }\n'
                    "schema U { x\x1b[31m: int }\n")
    for fmt in ("text", "json"):
        proc = synthc("check", "--format", fmt, spec)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out


def test_crlf_spec_gives_the_plan_of_the_lf_spec(tree):
    spec_dir, _ = tree
    text = MINIMAL.replace("count 2", 'count 2\n prompt """\n  Line one.\n  Line two.\n """')
    (spec_dir / "lf").mkdir()
    (spec_dir / "crlf").mkdir()
    (spec_dir / "lf" / "t.synth").write_text(text)
    (spec_dir / "crlf" / "t.synth").write_bytes(text.replace("\n", "\r\n").encode())
    lf = synthc("compile", spec_dir / "lf" / "t.synth").stdout
    crlf = synthc("compile", spec_dir / "crlf" / "t.synth").stdout
    assert "\\r" not in crlf and json.loads(crlf)["blocks"][0]["prompt"] == "Line one.\nLine two."
    assert lf == crlf


# ---- data types survive the output format -------------------------------------------------------------

def test_parquet_keeps_lists_structs_dates_and_meta(tree):
    import pyarrow as pa
    import pyarrow.parquet as pq

    spec_dir, _ = tree
    spec = spec_dir / "p.synth"
    spec.write_text('schema Item { name: str(1..10)\n qty: int(1..5) }\n'
                    'schema T { q: "a" | "b"\n tags: list[str(2..8)](1..3)\n item: Item\n'
                    '  day: date(2024-01-01..2024-12-31) ~ uniform\n  when: date(2024-01-01..2024-12-31) ~ uniform\n'
                    '  note: str(5..40) }\n'
                    'generate T { count 6\n quota q { a: 50%, b: 50% }\n noise when { date_format ["%d/%m/%Y"] 100% } }\n'
                    'output "out/p" { format parquet }\n')
    assert synthc("run", spec, "--fake-engine").returncode == 0
    table = pq.read_table(spec_dir / "out/p/train.parquet")
    schema = table.schema
    assert schema.field("tags").type == pa.list_(pa.string())
    assert pa.types.is_struct(schema.field("item").type)
    assert schema.field("day").type == pa.date32()
    assert schema.field("when").type == pa.string()  # noise made it text; its value is in _meta.truth
    meta = schema.field("_meta").type
    assert pa.types.is_struct(meta)
    assert meta.field("cell").type == pa.struct([("q", pa.string())])
    assert meta.field("truth").type == pa.struct([("when", pa.date32())])
    row = table.slice(0, 1).to_pylist()[0]
    assert isinstance(row["tags"], list) and isinstance(row["item"], dict)
    assert row["_meta"]["cell"]["q"] in ("a", "b")


# ---- properties ---------------------------------------------------------------------------------------------

SAFE_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(rows=st.lists(st.dictionaries(st.sampled_from(["b", "n", "x"]),
                                     st.one_of(SAFE_TEXT, st.integers(), st.floats(allow_nan=False),
                                               st.none(), st.lists(st.integers(), max_size=3)),
                                     max_size=3), min_size=1, max_size=5),
       raw=st.lists(st.text(max_size=40), max_size=3))
def test_any_seed_rows_check_without_internal_error(tmp_path_factory, rows, raw):
    folder = tmp_path_factory.mktemp("seedprop")
    (folder / "s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "".join(r.replace("\n", " ") + "\n" for r in raw),
                                    encoding="utf-8", errors="replace")
    spec = folder / "s.synth"
    spec.write_text('seeds s from "s.jsonl" as T\nschema T { b: str(1..10)\n n: int(0..9)? }\ngenerate T { count 2 }\n')
    proc = check_json(spec)
    assert proc.returncode in (0, 1) and proc.seconds < 20


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(pattern=st.text(alphabet="ab()+*?|{}[]^$.\\0129,-", min_size=1, max_size=16),
       value=st.text(alphabet="ab!", max_size=40))
def test_any_regex_and_value_check_fast(tmp_path_factory, pattern, value):
    folder = tmp_path_factory.mktemp("reprop")
    escaped = pattern.replace("/", "\\/")
    spec = folder / "r.synth"
    spec.write_text(f'schema T {{ k: str(/{escaped}/) ~ pick({json.dumps(value)})\n b: str(1..10) }}\n'
                    f'generate T {{ count 2\n check b matches /{escaped}/ }}\n')
    proc = check_json(spec)
    assert proc.returncode in (0, 1) and proc.seconds < 20


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(number=st.one_of(st.integers(min_value=-10**30, max_value=10**30).map(str),
                        st.text(alphabet="0123456789", min_size=1, max_size=6000),
                        st.floats(allow_nan=False, allow_infinity=False).map(repr)))
def test_any_numeric_literal_checks(tmp_path_factory, number):
    folder = tmp_path_factory.mktemp("numprop")
    spec = folder / "n.synth"
    spec.write_text(f"schema T {{ a: int(1..5) ~ uniform\n b: str(1..10) }}\n"
                    f"generate T {{ count 2\n check a * {number} > round({number}) }}\n")
    proc = check_json(spec)
    assert proc.returncode in (0, 1)


def _git_repo(root: Path) -> Path:
    (root / "sub").mkdir()
    (root / "sub/s.synth").write_text(MINIMAL)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    for step in (["init", "-q"], ["add", "."], ["commit", "-qm", "spec"]):
        subprocess.run([*git, *step], check=True)
    return root


@pytest.mark.parametrize("revision", ["--output={victim}/keep.txt", "--output={victim}/new.txt", "-o{victim}/x",
                                      "--remote=/nonexistent", "HEAD --output={victim}/keep.txt"])
def test_diff_revisions_are_never_git_options(tree, revision):
    spec_dir, victim = tree
    repo = _git_repo(spec_dir)
    before = snapshot(victim.parent)
    proc = synthc("diff", "--", f"{revision.format(victim=victim)}:sub/s.synth", "sub/s.synth", cwd=repo)
    assert proc.returncode == 2 and "not a git revision" in proc.stderr, proc.stderr
    assert snapshot(victim.parent) == before


def test_diff_revision_paths_stay_in_the_repository(tree):
    spec_dir, victim = tree
    repo = _git_repo(spec_dir)
    (repo / "sub/s.synth").write_text(MINIMAL.replace("count 2", "count 3"))
    # an absolute path once read the working tree's file instead of the revision's
    absolute = synthc("diff", f"HEAD:{repo / 'sub/s.synth'}", "sub/s.synth", cwd=repo)
    assert absolute.returncode == 2 and "relative to the repository's root" in absolute.stderr
    outside = synthc("diff", "HEAD:../victim/keep.txt", "sub/s.synth", cwd=repo)
    assert outside.returncode == 2 and "without '..'" in outside.stderr
    changed = synthc("diff", "HEAD:sub/s.synth", "sub/s.synth", cwd=repo)
    assert changed.returncode == 1 and "records 2 -> 3" in changed.stdout, changed.stdout


@pytest.mark.parametrize("template, reason", [
    ("{{ 1 // 0 }}", "ZeroDivisionError"),
    ("{{ lipsum(1000000) }}", "lipsum() of over 100"),
    ("{{ (label ~ '')[99] }}", "UndefinedError"),
])
def test_a_block_failing_the_same_way_before_any_request_stops_early(tree, template, reason):
    spec_dir, _ = tree
    spec = spec_dir / "j.synth"
    spec.write_text('schema T { label: "a" | "b" ~ uniform  b: str(1..10) }\n'
                    f'generate T {{ count 20\n prompt """{template}""" }}\n')
    proc = synthc("run", spec, "--fake-engine", timeout=60)
    assert proc.returncode == 1 and "its first 5 attempts all failed before a request" in proc.stderr, \
        proc.stderr[-1500:]
    assert reason in proc.stderr
    manifest = json.loads((spec_dir / "out/j/manifest.json").read_text())
    assert not manifest["complete"] and manifest["blocks"]["T"]["attempts"] == 5


@pytest.mark.parametrize("out", [".", "data", "data/sub/.."])
def test_run_out_over_the_spec_folder_or_its_seeds_is_refused(tree, out):
    spec_dir, _ = tree
    (spec_dir / "data").mkdir()
    (spec_dir / "data/seeds.jsonl").write_text('{"b": "fine"}\n')
    (spec_dir / "README.md").write_text("the team's own notes")
    spec = spec_dir / "s.synth"
    spec.write_text('seeds s from "data/seeds.jsonl" as T\n' + MINIMAL)
    before = snapshot(spec_dir)
    proc = synthc("run", spec, "--fake-engine", "--out", out, cwd=spec_dir)
    assert proc.returncode == 1 and "cannot write the dataset" in proc.stderr, proc.stderr[-800:]
    assert snapshot(spec_dir) == before


@pytest.mark.parametrize("name", ["train.jsonl", "manifest.json", "plan.json", "report.html"])
def test_run_out_into_a_folder_of_the_users_keeps_its_files(tree, name):
    spec_dir, _ = tree
    (spec_dir / "data").mkdir()
    (spec_dir / "data" / name).write_text("the team's own file")
    (spec_dir / "s.synth").write_text(MINIMAL)
    proc = synthc("run", "s.synth", "--fake-engine", "--out", "data", cwd=spec_dir)
    assert proc.returncode == 1 and f"holds a {name} that synthc did not write" in proc.stderr, proc.stderr
    assert (spec_dir / "data" / name).read_text() == "the team's own file"


def test_an_earlier_run_s_folder_without_its_synth_folder_is_written_again(tree):
    spec_dir, _ = tree
    (spec_dir / "s.synth").write_text(MINIMAL)
    assert synthc("run", "s.synth", "--fake-engine", "--out", "made", cwd=spec_dir).returncode == 0
    import shutil

    shutil.rmtree(spec_dir / "made/.synth")  # git-ignored, or cleaned
    again = synthc("run", "s.synth", "--fake-engine", "--out", "made", cwd=spec_dir)
    assert again.returncode == 0, again.stderr


def test_run_out_into_a_folder_of_the_users_keeps_its_readme(tree):
    spec_dir, _ = tree
    (spec_dir / "docs").mkdir()
    (spec_dir / "docs/README.md").write_text("the team's own notes")
    (spec_dir / "s.synth").write_text(MINIMAL)
    proc = synthc("run", "s.synth", "--fake-engine", "--out", "docs", cwd=spec_dir)
    assert proc.returncode == 1 and "holds a README.md that synthc did not write" in proc.stderr
    assert (spec_dir / "docs/README.md").read_text() == "the team's own notes"
    # a folder synthc wrote before is written again, its card replaced
    assert synthc("run", "s.synth", "--fake-engine", "--out", "new", cwd=spec_dir).returncode == 0
    assert synthc("run", "s.synth", "--fake-engine", "--out", "new", cwd=spec_dir).returncode == 0


@pytest.mark.parametrize("name", ["out\x1b[2J", "out\nnetwork: fake", "out\u202etxt.exe"])
def test_output_names_that_would_drive_the_terminal_are_refused(tree, name):
    spec_dir, _ = tree
    (spec_dir / "s.synth").write_text(MINIMAL)
    before = snapshot(spec_dir)
    proc = synthc("run", "s.synth", "--fake-engine", "--out", name, cwd=spec_dir)
    assert proc.returncode == 1 and "cannot be shown as written" in proc.stderr, proc.stderr[-800:]
    compiled = synthc("compile", "s.synth", "-o", name + ".json", cwd=spec_dir)
    assert compiled.returncode == 2 and "cannot be shown as written" in compiled.stderr
    for raw in ("\x1b", "\n network", "\u202e"):
        assert raw not in proc.stderr and raw not in compiled.stderr
    assert snapshot(spec_dir) == before


def test_compile_never_overwrites_the_spec_or_a_special_file(tree):
    spec_dir, _ = tree
    spec = spec_dir / "s.synth"
    spec.write_text(MINIMAL)
    same = synthc("compile", spec, "-o", spec)
    assert same.returncode == 2 and "the spec reads this file" in same.stderr and spec.read_text() == MINIMAL
    os.mkfifo(spec_dir / "fifo")
    for target in ("/dev/full", "/dev/null", spec_dir / "fifo", spec_dir):
        proc = synthc("compile", spec, "-o", target)
        assert proc.returncode == 2 and "is not a regular file" in proc.stderr, (target, proc.stderr)
    assert Path("/dev/full").is_char_device() and (spec_dir / "fifo").is_fifo()
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "synthlang.cli", "compile", str(spec)], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=TIMEOUT)
    assert proc.returncode != 0 and "No space left" in proc.stderr and "Traceback" not in proc.stderr


def test_a_spec_output_name_that_would_drive_the_terminal_is_located(tree):
    spec_dir, _ = tree
    spec = spec_dir / "s.synth"
    spec.write_text(MINIMAL + 'output "out/\u202etxt.exe" { format jsonl }\n')
    proc = check_json(spec)
    assert codes_at(proc) == [("E0901", 3)] and "U+202E" in proc.stdout, proc.stdout


def test_a_nested_star_regex_sampler_draws_bounded_values_and_finishes(tree):
    spec_dir, _ = tree
    spec = spec_dir / "s.synth"
    spec.write_text("schema T { code: str(/((((((((((a*)*)*)*)*)*)*)*)*)*)/) ~ regex\n b: str(1..10) }\n"
                    'generate T { count 3\n prompt "{{ code }}" }\n')
    proc = synthc("run", spec, "--fake-engine", timeout=60)
    assert proc.returncode == 0 and proc.seconds < 30, proc.stderr[-800:]
    rows = [json.loads(line) for line in (spec_dir / "out/s/train.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(set(r["code"]) <= {"a"} and len(r["code"]) <= 10_000 for r in rows)


def test_mix_rows_missing_a_sampled_field_are_a_warning_at_check(tree):
    spec_dir, _ = tree
    (spec_dir / "seeds.jsonl").write_text('{"b": "fine", "p": 2}\n{"b": "also fine"}\n' * 5)
    spec = spec_dir / "s.synth"
    spec.write_text('seeds s from "seeds.jsonl" as T\nschema T { b: str(1..10)  p: int(1..5) ~ uniform }\n'
                    'generate T { count 20 }\noutput "out/x" { format jsonl  mix s 20% }\n')
    proc = check_json(spec)
    assert proc.returncode == 0 and codes_at(proc) == [("W0006", 4)], proc.stdout
    assert "5 of 10 rows of `seeds.jsonl` into the dataset without `p`" in json.loads(proc.stdout)[0]["message"]
    spec.write_text(spec.read_text().replace("int(1..5) ~", "int(1..5)? ~"))
    assert codes_at(check_json(spec)) == []


def test_date_format_noise_on_a_mentioned_date_rewrites_the_text_and_its_span(tree):
    spec_dir, _ = tree
    spec = spec_dir / "s.synth"
    spec.write_text('schema T { when: date(2024-01-01..2024-12-31) ~ uniform\n'
                    '  note: str(20..200) mentions when }\n'
                    'generate T { count 6\n noise when { date_format ["%d/%m/%Y"] 100% } }\n')
    proc = synthc("run", spec, "--fake-engine")
    assert proc.returncode == 0, proc.stderr[-800:]
    rows = [json.loads(line) for line in (spec_dir / "out/s/train.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    for r in rows:
        meta = json.loads(r["_meta"]) if isinstance(r["_meta"], str) else r["_meta"]
        (span,) = meta["spans"]["note"]
        assert r["note"][span["start"]:span["end"]] == r["when"], (r["note"], r["when"], span)
        assert "/" in r["when"] and meta["truth"]["when"] not in r["note"]


@pytest.mark.parametrize("args, word", [
    (["run", "--batch", "0"], "--batch"), (["run", "--threads", "-3"], "--threads"),
    (["run", "--max-attempts", "0"], "--max-attempts"), (["run", "--max-attempts", "\u0663"], "--max-attempts"),
    (["run", "--workers", "1_0"], "--workers"), (["run", "--cache-max-size", "1e999"], "--cache-max-size"),
    (["run", "--cache-max-size", "nan"], "--cache-max-size"), (["preview", "-n", "0"], "-n"),
    (["plan", "--max-attempts", "99999999999"], "--max-attempts"),
    (["cache", "prune", "--max-size", "1e999"], "--max-size"), (["cache", "prune", "--older-than", "inf"], "--older-than"),
])
def test_cli_numbers_outside_their_range_are_usage_errors(tree, args, word):
    spec_dir, _ = tree
    (spec_dir / "s.synth").write_text(MINIMAL)
    proc = synthc(*args, "s.synth", "--fake-engine" if args[0] == "run" else "--no-cache", cwd=spec_dir) \
        if args[0] != "cache" else synthc(*args, "s.synth", cwd=spec_dir)
    assert proc.returncode == 2 and f"argument {word}" in proc.stderr, proc.stderr[-500:]
    assert not (spec_dir / "out").exists()


@pytest.mark.parametrize("name, words", [
    ("../victim/evil.gguf", "lies outside the spec's folder tree"),
    ("/etc/passwd", "lies outside the spec's folder tree"),
    ("missing.gguf", "is missing, or not a regular file"),
    ("notes.txt", "is neither the embedded model nor a .gguf file"),
    ("fifo.gguf", "is missing, or not a regular file"),
])
def test_a_llamacpp_model_file_is_read_under_the_spec_rules(tree, name, words):
    spec_dir, victim = tree
    (victim / "evil.gguf").write_bytes(b"GGUF")
    (spec_dir / "notes.txt").write_text("x")
    os.mkfifo(spec_dir / "fifo.gguf")
    spec = spec_dir / "s.synth"
    spec.write_text(f'model m {{ engine llamacpp  name "{name}" }}\nschema T {{ b: str(1..10) }}\n'
                    "generate T { count 2  using m }\n")
    proc = check_json(spec)
    assert codes_at(proc) == [("E0107", 1)] and words in proc.stdout, proc.stdout
    # the user, not the spec, can let specs name model files elsewhere
    if name == "../victim/evil.gguf":
        allowed = synthc("check", spec, env={"SYNTHC_MODEL_PATH": str(victim)})
        assert allowed.returncode == 0, allowed.stderr


@pytest.mark.parametrize("threshold", ["0.97", "0.99", "1.0"])
def test_a_near_dedup_threshold_close_to_1_runs(tree, threshold):
    spec_dir, _ = tree
    spec = spec_dir / "s.synth"
    spec.write_text(MINIMAL.replace("count 2", f"count 2\n dedup b near {threshold}"))
    for command in (["run", spec, "--fake-engine"], ["plan", spec]):
        proc = synthc(*command)
        assert proc.returncode == 0, proc.stderr[-800:]


def test_diff_in_a_repository_with_links_and_odd_revisions(tree):
    spec_dir, victim = tree
    repo = spec_dir
    (repo / "sub").mkdir()
    (repo / "sub/s.synth").write_text(MINIMAL)
    os.symlink("/etc/hostname", repo / "sub/abs")                   # a link to an absolute path
    os.symlink(str(victim / "keep.txt"), repo / "sub/out.synth")     # a link out of the repository
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    for step in (["init", "-q"], ["add", "."], ["commit", "-qm", "spec"]):
        subprocess.run([*git, *step], check=True)
    before = snapshot(victim)
    assert synthc("diff", "HEAD:sub/s.synth", "sub/s.synth", cwd=repo).returncode == 0
    link = synthc("diff", "HEAD:sub/out.synth", "sub/s.synth", cwd=repo)
    assert link.returncode == 2 and "sub/out.synth is not in HEAD" in link.stderr
    unknown = synthc("diff", "nope:sub/s.synth", "sub/s.synth", cwd=repo)
    assert unknown.returncode == 2 and "no commit `nope` in this repository" in unknown.stderr
    long = synthc("diff", "a" * 100_000 + ":sub/s.synth", "sub/s.synth", cwd=repo)
    assert long.returncode == 2 and len(long.stderr) < 1000
    assert snapshot(victim) == before


@pytest.mark.parametrize("edit, reason", [
    (lambda r: r.update(b=None), "does not fit T: b: is null"),
    (lambda r: r["_meta"].update(truth={"b": "fine"}), "`_meta.truth` for `b`, which no date_format or drop rule"),
])
def test_a_journal_record_is_checked_as_strictly_as_a_generated_one(tree, edit, reason):
    spec_dir, _ = tree
    proc = _journal_edit(spec_dir, lambda ls: _edited(ls, lambda e: edit(e["rec"])))
    assert proc.returncode == 1 and reason in proc.stderr and "--fresh" in proc.stderr, proc.stderr[-800:]


def test_text_from_a_journal_a_file_name_or_a_value_never_drives_the_terminal(tree):
    spec_dir, _ = tree
    name = "a\x1b[2J.synth"
    spec = spec_dir / name
    spec.write_text('schema T { q: "abc\u202edef" | "b" ~ uniform  b: str(1..10) }\ngenerate T { count 2 }\n')
    outputs = [synthc("check", name, cwd=spec_dir), synthc("fmt", "--check", name, cwd=spec_dir),
               synthc("plan", name, cwd=spec_dir)]
    assert synthc("run", name, "--fake-engine", cwd=spec_dir).returncode == 0
    journal = next(spec_dir.glob("out/*/.synth/journal.jsonl"))
    with open(journal, "a") as fh:
        fh.write(json.dumps({"b": "T", "c": 0, "a": 7, "ok": False, "why": "\x1b]0;pwned\x07\x1b[2Jjunk"}) + "\n")
    outputs.append(synthc("run", name, "--fake-engine", cwd=spec_dir))
    for proc in outputs:
        for raw in ("\x1b", "\x07", "\u202e"):
            assert raw not in proc.stdout + proc.stderr, (proc.args, proc.stdout[-300:], proc.stderr[-300:])
    # a spec file name that is not UTF-8 compiles
    odd = spec_dir / os.fsdecode(b"caf\xe9.synth")
    odd.write_text(MINIMAL)
    assert synthc("check", odd).returncode == 0


@pytest.mark.parametrize("shares, shown", [("a: 33.33333%, b: 66.66666%", "99.99999%"), ("a: 50.0001%, b: 50%", "100.0001%")])
def test_a_quota_a_little_off_100_says_by_how_much(tree, shares, shown):
    spec_dir, _ = tree
    spec = spec_dir / "s.synth"
    spec.write_text(f'schema T {{ q: "a" | "b"  b: str(1..10) }}\ngenerate T {{ count 4\n quota q {{ {shares} }} }}\n')
    proc = check_json(spec)
    assert codes_at(proc) == [("E0403", 3)] and f"sums to {shown}, not 100%" in proc.stdout, proc.stdout


def test_a_preference_format_naming_one_field_twice_is_refused(tree):
    spec_dir, _ = tree
    spec = spec_dir / "s.synth"
    spec.write_text('schema P { c: str(5..80)  d: str(5..80) }\ngenerate P { count 2 }\n'
                    'output "out/p" { format preference from c, c, d }\n')
    proc = check_json(spec)
    assert codes_at(proc) == [("E0901", 3)] and "names `c` twice" in proc.stdout, proc.stdout
