"""`~ draw(...)`: fields drawn from the rows of a seed file, whole or one column, uniformly or by a
weight column, optionally matching a sibling field; the rows stay in their file, which the plan
pins by digest and row count."""

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from synthlang.compiler import compile
from synthlang.runtime.drawn_rows import DrawnFileError, DrawnRows, file_problems
from synthlang.runtime.sampling import draw_fields

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ("category,name,weight\n"
          "billing,invoice disputes,3\nbilling,refund delays,1\nbilling,never drawn,0\n"
          "login,password reset,2\nlogin,two-factor codes,2\n")
SPEC = '''seeds topics from "topics.csv" as Topic
schema Topic {
  category: "billing" | "login"
  name: str(1..40)
  weight: float
}
schema Q {
  category: "billing" | "login" ~ uniform
  topic: str ~ draw(topics.name matching category) weighted by topics.weight
  whole: Topic ~ draw(topics)
  text: str(10..100)
}
generate Q { count 4 }
'''


def project(tmp_path, spec=SPEC, topics=TOPICS):
    (tmp_path / "topics.csv").write_text(topics, encoding="utf-8")
    (tmp_path / "spec.synth").write_text(spec, encoding="utf-8")
    return tmp_path / "spec.synth"


def test_the_plan_holds_the_files_digest_and_row_count_not_its_rows(tmp_path):
    result = compile(project(tmp_path))
    assert result.ok, [d.message for d in result.diagnostics]
    seeds = result.plan.seeds["topics"]
    assert seeds.inline is False and seeds.rows == () and seeds.row_count == 5
    again = compile(project(tmp_path, topics=TOPICS.replace("refund delays", "refund delay")))
    assert again.plan.hash != result.plan.hash   # an edited file regenerates what it feeds


def test_draws_follow_the_matching_field_and_the_weights(tmp_path):
    plan = compile(project(tmp_path)).plan
    block, drawn = plan.blocks[0], DrawnRows(plan, tmp_path)
    names = {"billing": {"invoice disputes", "refund delays"}, "login": {"password reset", "two-factor codes"}}
    counts: Counter = Counter()
    for seed in range(3000):
        v = draw_fields(block, random.Random(seed), plan.schemas.get, None, drawn)
        assert v["topic"] in names[v["category"]]          # never a row of the other category
        assert v["topic"] != "never drawn"                 # weight 0
        assert set(v["whole"]) == {"category", "name", "weight"}
        counts[v["topic"]] += 1
    ratio = counts["invoice disputes"] / counts["refund delays"]
    assert 2.5 < ratio < 3.6, counts                     # weights 3 : 1
    again = [draw_fields(block, random.Random(s), plan.schemas.get, None, DrawnRows(plan, tmp_path)) for s in range(50)]
    assert again == [draw_fields(block, random.Random(s), plan.schemas.get, None, drawn) for s in range(50)]


def test_a_file_edited_after_the_plan_is_refused_with_one_clear_message(tmp_path):
    plan = compile(project(tmp_path)).plan
    (tmp_path / "topics.csv").write_text(TOPICS + "login,account locked,1\n", encoding="utf-8")
    assert file_problems(plan, tmp_path) == ["seed file `topics.csv` changed since the plan was made; compile the "
                                             "spec again"]
    with pytest.raises(DrawnFileError, match="changed since the plan was made"):
        DrawnRows(plan, tmp_path).rows("topics")


def test_a_run_writes_records_whose_drawn_values_come_from_the_file(tmp_path):
    spec = project(tmp_path)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "synthlang.cli", "run", str(spec), "--fake-engine", "--no-cache",
                           "--out", str(out), "--progress", "log"], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    table = {(r.split(",")[0], r.split(",")[1]) for r in TOPICS.splitlines()[1:]}
    for r in rows:
        assert (r["category"], r["topic"]) in table
        assert (r["whole"]["category"], r["whole"]["name"]) in table


BAD = [
    # (what the spec says, the file, the message's start)
    ("topic: str ~ draw(topics.nme)", TOPICS, "`topics` has no column `nme`"),
    ("topic: str ~ draw(topics.name) weighted by topics.category", TOPICS, "the weights `topics.category` are"),
    ("topic: str ~ draw(topics.name) weighted by topics.weight", TOPICS + "login,x,-1\n", "row 6 of `topics.csv` has"),
    ("topic: str(1..5) ~ draw(topics.name)", TOPICS, "row 1 of `topics.csv`: its `name` does not fit"),
    ("topic: int ~ draw(topics.name)", TOPICS, "`topics.name` is str"),
    ("topic: str ~ draw(topics)", TOPICS, "`topic` is str, but a row of `topics` is a Topic"),
    ("topic: str ~ draw(topics.name matching category)", TOPICS.replace("login,", "billing,"),
     "no row of `topics.csv` has category = login"),
    ("topic: str ~ draw(topics.name matching kind)", TOPICS, "`kind` is not another field of Q"),
    ("topic: str ~ draw(tpics.name)", TOPICS, "unknown seed set `tpics`"),
    ("topic: str ~ draw(topics.name) weighted by other.weight", TOPICS, "the weights of a draw from `topics`"),
]


@pytest.mark.parametrize("field,topics,message", BAD, ids=[m for _, _, m in BAD])
def test_a_draw_that_does_not_fit_its_file_is_located_and_explained(tmp_path, field, topics, message):
    spec = SPEC.replace("  topic: str ~ draw(topics.name matching category) weighted by topics.weight", "  " + field)
    result = compile(project(tmp_path, spec, topics))
    errors = [(d.code, d.span.line, d.message) for d in result.diagnostics if d.severity.name == "ERROR"]
    assert not result.ok
    assert any(m.startswith(message) and line == 9 for _, line, m in errors), errors
    assert {c for c, _, _ in errors} <= {"E0212", "E0101"}


def test_a_draw_matching_a_quota_field_needs_rows_for_every_cell(tmp_path):
    spec = SPEC.replace('  category: "billing" | "login" ~ uniform', '  category: "billing" | "login"').replace(
        "generate Q { count 4 }", "generate Q {\n  count 4\n  quota category { billing: 50%, login: 50% }\n}")
    assert compile(project(tmp_path, spec)).ok
    result = compile(project(tmp_path, spec, TOPICS.replace("login,", "billing,")))
    assert [d.message.split(",")[0] for d in result.diagnostics if d.code == "E0212"] == \
        ["no row of seed set `topics` has category = login"]


def test_a_file_outside_the_tree_is_refused(tmp_path):
    inner = tmp_path / "spec"
    inner.mkdir()
    (tmp_path / "topics.csv").write_text(TOPICS, encoding="utf-8")
    (inner / "spec.synth").write_text(SPEC.replace('"topics.csv"', '"../topics.csv"'), encoding="utf-8")
    result = compile(inner / "spec.synth")
    assert any(d.code == "E0301" and "leaves the spec's folder tree" in d.message for d in result.diagnostics)


def test_synthc_plan_shows_what_each_cell_draws(tmp_path):
    spec = SPEC.replace('  category: "billing" | "login" ~ uniform', '  category: "billing" | "login"\n'
                        '  channel: "email" | "chat" ~ weights by category { billing: (1, 3), login: (2, 1) }').replace(
        "generate Q { count 4 }", "generate Q {\n  count 4\n  quota category { billing: 50%, login: 50% }\n}")
    proc = subprocess.run([sys.executable, "-m", "synthlang.cli", "plan", str(project(tmp_path, spec))],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "    category=billing: channel ~ weights(email 1, chat 3); topic ~ one of 3 rows of topics, weighted by " \
           "weight\n" in proc.stdout
    assert "    category=login: channel ~ weights(email 2, chat 1); topic ~ one of 2 rows of topics" in proc.stdout
