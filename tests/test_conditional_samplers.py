"""Conditional samplers (`pick by FIELD { ... }`, `weights by FIELD { ... }`): a field drawn with
the case of another field's value, the condition drawn first (or the quota cell's) whatever the
declaration order, on the fake engine; fmt, diff and a plan read from disk know them."""

import json
import random
from collections import Counter

from synthlang.compiler import compile
from synthlang.engines.fake import FakeEngine
from synthlang.plan.diff import diff_plans
from synthlang.plan.model import Plan
from synthlang.plan.validate_plan import validate_plan
from synthlang.runtime.driver import run_plan
from synthlang.runtime.options import RunOptions
from synthlang.runtime.sampling import draw_fields
from synthlang.syntax.format import format_text

SPEC = '''
enum Intent { billing, outage, login }
schema T {
  product: str ~ pick by intent { billing: ("web dashboard", "API"), login: ("mobile app"), else: ("desktop") }
  channel: "email" | "chat" ~ weights by country { "fr": (0, 1), else: (1, 0) }
  country: "fr" | "de" ~ uniform
  intent:  Intent
  body:    str(10..100)
}
generate T { count 30  quota intent { billing: 10, outage: 10, login: 10 }  allow junk, repetition, hollow, echo }
'''


def compiled(tmp_path, text=SPEC, name="spec.synth") -> Plan:
    spec = tmp_path / name
    spec.write_text(text)
    result = compile(spec)
    assert result.ok, [d.message for d in result.diagnostics]
    return result.plan


def test_the_condition_is_drawn_before_the_field_it_decides(tmp_path):
    block = compiled(tmp_path).blocks[0]
    assert [s.path[0] for s in block.sampled] == ["product", "country", "channel"]   # channel waits for country
    for seed in range(100):
        for cell in block.cells:
            values = draw_fields(block, random.Random(seed), lambda name: None, cell.key)
            assert values["channel"] == ("chat" if values["country"] == "fr" else "email")
            want = {"billing": {"web dashboard", "API"}, "login": {"mobile app"}, "outage": {"desktop"}}
            assert values["product"] in want[cell.key["intent"]]


def test_every_record_holds_a_value_of_its_condition_s_case(tmp_path):
    plan = compiled(tmp_path)
    run_plan(plan, RunOptions(out_dir=tmp_path / "out", engine_factory=lambda m: FakeEngine(), progress=False))
    rows = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert Counter(r["intent"] for r in rows) == {"billing": 10, "outage": 10, "login": 10}
    assert {r["product"] for r in rows if r["intent"] == "login"} == {"mobile app"}
    assert {r["product"] for r in rows if r["intent"] == "outage"} == {"desktop"}
    assert {r["product"] for r in rows if r["intent"] == "billing"} == {"web dashboard", "API"}
    assert all(r["channel"] == ("chat" if r["country"] == "fr" else "email") for r in rows)


def test_fmt_keeps_the_plan_and_diff_names_the_sampler(tmp_path):
    formatted = format_text(SPEC)
    assert format_text(formatted) == formatted
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert compiled(tmp_path / "a").hash == compiled(tmp_path / "b", formatted).hash
    other = compiled(tmp_path, SPEC.replace('login: ("mobile app")', 'login: ("mobile app", "API")'), "c.synth")
    changes = [(c.where, c.what) for c in diff_plans(compiled(tmp_path / "a"), other).changes]
    assert ("block T", "sampled fields: ~product") in changes


def test_a_hand_edited_plan_with_a_case_without_weights_is_refused(tmp_path):
    plan = compiled(tmp_path)
    data = json.loads(plan.to_json())
    channel = next(s for s in data["blocks"][0]["sampled"] if s["path"] == ["channel"])
    channel["sampler"]["default"]["weights"] = [1.0]
    problems = validate_plan(Plan.load(data).with_hash())
    assert any("a case of `weights by` has no weight per option" in p for p in problems)
    assert validate_plan(plan) == []


def test_hover_shows_the_condition_and_its_cases(tmp_path):
    from synthlang.lsp.analysis import analyse
    from synthlang.lsp.hover import hover_text

    spec = (tmp_path / "h.synth").resolve()
    spec.write_text(SPEC)
    text = hover_text(analyse(spec, {}), spec, SPEC.index("product:"))
    assert text is not None and "pick by intent { billing, login, else }" in text
