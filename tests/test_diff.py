"""synthc diff: what a change to a spec does to its dataset, with breaking changes flagged;
specs, plans and a spec at a git revision."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from synthlang.compiler import compile
from synthlang.plan.diff import diff_plans

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests/runtime_specs/two_blocks.synth"
EDITS = [("count 12", "count 20"),
         ("enum Stars { low, mid, high }", "enum Stars { low, high }"),
         ("quota stars { low: 3, mid: 3, high: 3 }", "quota stars { low: 3, high: 3 }"),
         ("count 9", "count 6"),
         ("Write one {{ stars }}", "Write a short {{ stars }}"),
         ("  title:   str(5..50)", "  title:   str(5..80)"),
         ("  body:     str(30..160)\n", ""),
         ("  product: str ~ pick", "  made:    int(1..9) ~ uniform\n  product: str ~ pick"),
         ("split train 70%, test 30%", "split train 80%, validation 20%"),
         ("  check len(body) > len(subject)\n", "  check len(subject) > 10\n"),
         ("  dedup body near 0.9\n", "  dedup subject near 0.9\n")]


def synthc(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "synthlang.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True)


def edited(tmp_path: Path) -> Path:
    text = SPEC.read_text()
    for old, new in EDITS:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "edited.synth"
    path.write_text(text)
    return path


def test_every_kind_of_change_is_shown_and_breaking_ones_flagged(tmp_path):
    old, new = compile(SPEC).plan, compile(edited(tmp_path)).plan
    assert old is not None and new is not None
    d = diff_plans(old, new)
    said = {(c.where, c.what) for c in d.changes}
    assert ("block Ticket", "records 12 -> 20; intent=billing: 6 -> 10; intent=outage: 3 -> 5; intent=login: 3 -> 5") \
        in said
    assert ("block Review", "records 9 -> 6; stars=mid: 3 -> 0") in said
    assert ("schema Review", "field title: str(5..50) (model-written) -> str(5..80) (model-written)") in said
    assert ("schema Review", "field made added: int(1..9) ~ uniform") in said
    assert ("block Review", "sampled fields: +made") in said
    assert ("block Ticket", "+ check (len(subject) > 10); - check (len(body) > len(subject))") in said
    assert ("output", "splits train 70%, test 30% -> train 80%, validation 20%") in said
    prompt = next(c for c in d.changes if c.what == "prompt changed")
    assert "-Write one {{ stars }}-rated review of a {{ product }}." in prompt.text_diff
    assert "+Write a short {{ stars }}-rated review of a {{ product }}." in prompt.text_diff
    breaking = {c.what: c.breaking for c in d.breaking}
    assert breaking == {"values removed: mid": "a label value the data had is gone",
                        "field body removed (was str(30..160) (model-written))": "a field the data had is gone",
                        "splits train 70%, test 30% -> train 80%, validation 20%": "split test is gone"}


def test_cli_exit_codes_text_and_json(tmp_path):
    same = synthc("diff", SPEC, SPEC)
    assert same.returncode == 0 and "no difference" in same.stdout
    changed = synthc("diff", SPEC, edited(tmp_path))
    assert changed.returncode == 1 and "~ block Review" in changed.stdout and "3 breaking" in changed.stdout
    as_json = json.loads(synthc("diff", SPEC, edited(tmp_path), "--format", "json").stdout)
    assert as_json["changed"] and as_json["breaking"] == 3
    # a compiled plan against its spec: the same dataset
    plan = tmp_path / "plan.json"
    assert synthc("compile", SPEC, "-o", plan).returncode == 0
    assert synthc("diff", plan, SPEC).returncode == 0
    missing = synthc("diff", SPEC, tmp_path / "nope.synth")
    assert missing.returncode == 2 and "no such spec file" in missing.stderr


def test_a_spec_against_its_git_revision(tmp_path):
    repo = tmp_path / "repo"
    (repo / "specs").mkdir(parents=True)
    shutil.copy(SPEC, repo / "specs/two.synth")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "spec"], check=True)
    assert synthc("diff", "HEAD:specs/two.synth", "specs/two.synth", cwd=repo).returncode == 0
    shutil.copy(edited(tmp_path), repo / "specs/two.synth")
    proc = synthc("diff", "HEAD:specs/two.synth", "specs/two.synth", cwd=repo)
    assert proc.returncode == 1 and "records 12 -> 20" in proc.stdout, proc.stderr
    bad = synthc("diff", "nosuchrev:specs/two.synth", "specs/two.synth", cwd=repo)
    assert bad.returncode == 2 and "cannot read nosuchrev:specs/two.synth from git" in bad.stderr
