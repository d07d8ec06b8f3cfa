"""Diagnostics a new user can act on: for each mistake a careless or new user makes, the code
and place of the diagnostic and a message or help line that says the fix. Each case was a
diagnostic that said nothing useful (or a spec accepted that could never run) before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from synthlang.compiler import compile
from synthlang.diagnostics import Diagnostic, render_text
from synthlang.plan.model import Plan
from synthlang.plan.validate_plan import validate_plan

SCHEMA = ('enum Intent { billing, outage }\nschema T {\n  body: str(10..100)\n  n: int(1..5) ~ uniform\n'
          '  intent: Intent\n  score: float(0.0..1.0) ~ uniform\n}\n')


def diagnose(tmp_path: Path, text: str, files: dict[str, str] | None = None) -> list[Diagnostic]:
    for name, content in (files or {}).items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    spec = tmp_path / "s.synth"
    spec.write_text(text, encoding="utf-8")
    return compile(spec).diagnostics


def only(diags: list[Diagnostic], code: str) -> Diagnostic:
    found = [d for d in diags if d.code == code]
    assert len(found) == 1, [render_text(d) for d in diags]
    return found[0]


def at(d: Diagnostic) -> tuple[int, int]:
    assert d.span is not None
    return d.span.line, d.span.col


def synthc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "synthlang.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=60)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr[-2000:]
    return proc


# ---- 1. a block left open ------------------------------------------------------------------------

def test_an_unclosed_schema_has_a_note_at_its_opening_brace(tmp_path):
    d = only(diagnose(tmp_path, "enum Intent { billing, outage }\nschema S {\n  a: str(1..10)\n  b: int(1..5)\n"
                                "schema T {\n  c: str(1..5)\n}\n"), "E0001")
    assert at(d) == (5, 8)
    [note] = d.notes
    assert (note.span.line, note.span.col) == (2, 10) and "never closed" in note.message
    assert d.help == "close `schema S` (line 2) with `}` before line 5"
    assert "s.synth:2:10: this `{` of `schema S` is never closed" in render_text(d)


def test_a_block_open_at_the_end_of_the_file_has_a_note(tmp_path):
    d = only(diagnose(tmp_path, "schema T {\n  a: str(1..10)\n}\ngenerate T {\n  count 3\n"), "E0001")
    [note] = d.notes
    assert (note.span.line, note.span.col) == (4, 12) and d.help == "close `generate T` (line 4) with `}`"


def test_an_error_inside_a_closed_block_has_no_brace_note(tmp_path):
    d = only(diagnose(tmp_path, "schema Ticket {\n  subject: str(8..80)\n  body: str(40..600\n}\n"), "E0001")
    assert d.notes == () and d.help == "expected `)`, `,` or `..`"


# ---- 2. quotas over ints ---------------------------------------------------------------------------

def test_a_quota_on_a_bounded_int_is_planned_with_int_cells(tmp_path):
    result = compile(_spec(tmp_path, "schema T {\n  n: int(1..2)\n  body: str(10..100)\n}\n"
                                     "generate T { count 4 quota n { 1: 50%, 2: 50% } }\n"))
    assert result.ok, [render_text(d) for d in result.diagnostics]
    assert result.plan is not None
    [block] = result.plan.blocks
    assert [(c.key, c.count) for c in block.cells] == [({"n": 1}, 2), ({"n": 2}, 2)]
    assert validate_plan(Plan.from_json(result.plan.to_json())) == []


def test_a_quota_on_an_int_must_cover_its_values(tmp_path):
    d = only(diagnose(tmp_path, SCHEMA.replace("n: int(1..5) ~ uniform", "n: int(1..5)")
                      + "generate T { count 4 quota n { 1: 50%, 2: 50% } }\n"), "E0402")
    assert d.message == "the quota on `n` does not cover 3, 4, 5"


@pytest.mark.parametrize("field, why", [
    ("int", "int has no finite set of values; give it both bounds, e.g. `int(1..5)`"),
    ("int(1..)", "int(1..) has no finite set of values; give it both bounds"),
    ("int(1..5000)", "int(1..5000) has 5,000 values; a quota lists at most 1,000"),
])
def test_an_int_quota_without_a_small_range_says_why(tmp_path, field, why):
    d = only(diagnose(tmp_path, f"schema T {{\n  n: {field}\n  body: str(10..100)\n}}\n"
                                "generate T { count 4 quota n { 1: 100% } }\n"), "E0401")
    assert why in d.message and at(d) == (5, 28)


def test_a_bool_quota_takes_true_and_false_not_numbers(tmp_path):
    diags = diagnose(tmp_path, "schema T {\n  b: bool\n  body: str(10..100)\n}\n"
                               "generate T { count 4 quota b { 1: 50%, 0: 50% } }\n")
    assert [d.message for d in diags if d.code == "E0402"][-2:] == ["`1` is not a value of bool",
                                                                   "`0` is not a value of bool"]


# ---- 3. characters outside ASCII ---------------------------------------------------------------------

def test_a_cyrillic_letter_in_a_name_is_named_with_its_look_alike(tmp_path):
    d = only(diagnose(tmp_path, "schema T {\n  n\u0430me: str(1..5)\n}\n"), "E0002")
    assert at(d) == (2, 4)
    assert d.message == "unexpected character `\u0430` (U+0430 CYRILLIC SMALL LETTER A)"
    assert d.help is not None and "looks like the ASCII letter `a`" in d.help


@pytest.mark.parametrize("char, named", [
    ("\u200b", "U+200B ZERO WIDTH SPACE"),
    ("\u00a0", "U+00A0 NO-BREAK SPACE"),
    ("\u201c", "U+201C LEFT DOUBLE QUOTATION MARK"),
    ("\uff41", "U+FF41 FULLWIDTH LATIN SMALL LETTER A"),
    ("\u2192", "U+2192 RIGHTWARDS ARROW"),
])
def test_every_character_outside_ascii_is_named(tmp_path, char, named):
    d = only(diagnose(tmp_path, f"schema T {{\n  a{char}: str(1..5)\n}}\n"), "E0002")
    assert named in d.message


# ---- 4. fmt and a byte order mark ---------------------------------------------------------------------

def test_fmt_accepts_a_spec_with_a_bom_and_writes_it_without(tmp_path):
    spec = tmp_path / "s.synth"
    spec.write_bytes(b"\xef\xbb\xbfschema T {\n  name: str(1..5)\n}\n")
    assert synthc("check", "s.synth", cwd=tmp_path).returncode == 0
    proc = synthc("fmt", "s.synth", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert spec.read_bytes() == b"schema T {\n  name: str(1..5)\n}\n"
    assert synthc("fmt", "--check", "s.synth", cwd=tmp_path).returncode == 0


# ---- 5. specs that can never make a record ------------------------------------------------------------

def test_a_check_no_value_within_the_bounds_can_pass_is_an_error(tmp_path):
    d = only(diagnose(tmp_path, "schema T {\n  text: str(5..50)\n}\ngenerate T { count 3 check len(text) > 100 }\n"),
             "E0404")
    assert at(d) == (4, 22)
    assert d.message == "`check len(text) > 100` can never pass: `len(text)` is between 5 and 50"
    assert d.help is not None and "`text: str(5..50)`" in d.help


@pytest.mark.parametrize("check", ["len(body) >= 10", "n * 2 >= 10 or score > 0.5", "not (len(body) > 100)",
                                   "n + score >= 6", "len(body) < 11"])
def test_a_check_some_record_can_pass_is_accepted(tmp_path, check):
    diags = diagnose(tmp_path, SCHEMA + f"generate T {{ count 3 check {check} }}\n")
    assert not [d for d in diags if d.code == "E0404"], [render_text(d) for d in diags]


def test_more_examples_than_seed_rows_is_an_error(tmp_path):
    rows = json.dumps({"body": "a real ticket text", "n": 2, "intent": "billing", "score": 0.5}) + "\n"
    d = only(diagnose(tmp_path, SCHEMA + 'seeds real from "rows.jsonl" as T\ngenerate T { count 3 '
                      'examples 5 from real }\n', {"rows.jsonl": rows}), "E0405")
    assert at(d) == (9, 31) and d.message == "`examples 5` asks for 5 different rows, but seed set `real` has 1 row"


def test_literal_options_equal_under_unicode_normalisation_are_duplicates(tmp_path):
    d = only(diagnose(tmp_path, 'schema T {\n  k: "a\u0301" | "\u00e1" | "b"\n}\n'), "E0102")
    assert at(d) == (2, 13)
    assert d.message == 'option "\\u00e1" looks the same as "a\\u0301"'


# ---- 6. the fix, said -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, where, keyword", [
    ("generate T { count 3 qouta intent { billing: 50%, outage: 50% } }", (9, 22), "quota"),
    ("generate T { coutn 3 }", (9, 14), "count"),
    ("genrate T { count 3 }", (9, 1), "generate"),
    ("generate T { count 3 dedup body nera 0.8 }", (9, 33), "near"),
])
def test_a_misspelt_keyword_gets_did_you_mean(tmp_path, text, where, keyword):
    d = only(diagnose(tmp_path, SCHEMA + "\n" + text + "\n"), "E0001")
    assert at(d) == where and d.help == f"did you mean `{keyword}`?"


@pytest.mark.parametrize("item, code, where, fix", [
    ("check n > 1 && n < 4", "E0002", (8, 34), "write `and` for `&&`"),
    ("check n > 1 || n < 4", "E0001", (8, 34), "write `or` for `||`"),
    ("check n = 3", "E0001", (8, 30), "compare with `==`"),
    ("check intent == billing", "E0101", (8, 38), 'values are written in quotes: `"billing"`'),
    ("dedup body near 85%", "E0001", (8, 40), "write `near 0.85`"),
])
def test_an_operator_or_value_from_habit_gets_the_fix(tmp_path, item, code, where, fix):
    diags = diagnose(tmp_path, SCHEMA + f"generate T {{ count 3 {item} }}\n")
    d = only(diags, code)
    assert at(d) == where and d.help is not None and fix in d.help, render_text(d)


def test_mentioning_a_float_says_what_to_mention_instead(tmp_path):
    d = only(diagnose(tmp_path, SCHEMA.replace("~ uniform\n}", "~ uniform\n  note: str(10..80) mentions score\n}")
                      + "generate T { count 3 }\n"), "E0208")
    assert d.message == "`score` cannot be mentioned: it is float(0.0..1.0)"
    assert d.help is not None and "mention an int" in d.help


def test_a_when_on_a_field_line_points_at_the_step(tmp_path):
    d = only(diagnose(tmp_path, "schema T {\n  n: int(1..5) ~ uniform\n  x: str(1..5) when n > 2\n}\n"), "E0001")
    assert at(d) == (3, 16) and d.message == "`when` cannot follow a field's type"
    assert d.help is not None and '`step x when n > 2 """..."""`' in d.help and "`x: ...?`" in d.help


def test_a_regex_count_of_100000_digits_is_out_of_range_not_a_python_message(tmp_path):
    d = only(diagnose(tmp_path, "schema T {\n  a: str(/a{" + "9" * 100_000 + "}/)\n}\n"), "E0004")
    assert at(d) == (2, 13) and d.message.startswith("repetition count `999")
    assert "set_int_max_str_digits" not in d.message + (d.help or "")


def test_derived_fields_that_need_each_other_are_an_error(tmp_path):
    diags = diagnose(tmp_path, "schema T {\n  a: int = b + 1\n  b: int = a + 1\n  c: int = c\n  body: str(1..50)\n}\n"
                               "generate T { count 3 }\n")
    cycle = [d for d in diags if d.code == "E0209"]
    assert [(at(d), d.message) for d in cycle] == [((2, 10), "derived fields depend on each other: a -> b -> a"),
                                                   ((4, 10), "`c` is derived from itself")]


# ---- 7. what `run` refuses is refused at check ------------------------------------------------------------

@pytest.mark.parametrize("field", ["str(0..9223372036854775807)", "str(1..100000000)", "list[str(1..100)](0..20000)",
                                   "str(/x{4294967294}/)"])
def test_bounds_past_the_plan_token_limit_are_refused_at_check(tmp_path, field):
    d = only(diagnose(tmp_path, f"schema T {{\n  a: {field}\n}}\ngenerate T {{ count 2 }}\n"), "E0202")
    assert at(d) == (2, 6) and "a request asks for at most 1,000,000 tokens" in d.message


def test_a_record_whose_fields_together_pass_the_limit_is_refused_at_its_block(tmp_path):
    d = only(diagnose(tmp_path, "schema T {\n  a: str(1..600000)\n  b: str(1..600000)\n}\ngenerate T { count 2 }\n"),
             "E0202")
    assert at(d) == (5, 10) and d.message.startswith("a record of generate T may be written as 1,200,")


def _chain(n: int) -> str:
    return "schema R0 { x: str(1..3) }\n" + "".join(f"schema R{i} {{ r: R{i - 1} }}\n" for i in range(1, n)) \
        + f"generate R{n - 1} {{ count 2 }}\n"


def test_records_nested_past_100_levels_are_refused_at_check(tmp_path):
    d = only(diagnose(tmp_path, _chain(101)), "E0210")
    assert at(d) == (101, 18) and "101 levels deep; at most 100" in d.message
    # thousands of levels: one diagnostic, not a crash
    assert [x.code for x in diagnose(tmp_path, _chain(3000))] == ["E0210"]


def test_lists_nested_past_100_levels_are_refused_at_check(tmp_path):
    d = only(diagnose(tmp_path, "schema T {\n  a: " + "list[" * 100 + "str(1..3)" + "](1..1)" * 100
                      + "\n}\ngenerate T { count 2 }\n"), "E0210")
    assert at(d) == (2, 6) and "101 levels deep" in d.message


def test_100_levels_compile_to_a_plan_run_accepts(tmp_path):
    result = compile(_spec(tmp_path, _chain(100)))
    assert result.ok and result.plan is not None
    assert validate_plan(Plan.from_json(result.plan.to_json())) == []


def _spec(tmp_path: Path, text: str) -> Path:
    spec = tmp_path / "s.synth"
    spec.write_text(text, encoding="utf-8")
    return spec
