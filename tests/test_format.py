"""synthc fmt: golden layouts, and properties over every spec in the repository and over specs
the grammar generates: formatting is idempotent, keeps every token and comment in order (so the
spec means the same), and leaves the plan's hash as it was."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

from synthlang.compiler import compile
from synthlang.diagnostics import DiagnosticSink
from synthlang.source import SourceFile
from synthlang.syntax.format import _parser, format_text
from synthlang.syntax.parser import _keyword_as_name, grammar_path, parse_source

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = sorted((ROOT / "tests/format").glob("*.in.synth"))
REPO_SPECS = sorted({*ROOT.glob("specs/*/*.synth"), *ROOT.glob("tests/runtime_specs/*.synth"),
                     *ROOT.glob("tests/golden/*/*.synth"), ROOT / "tests/contract/spec.synth"})
_GRAMMAR = Lark(grammar_path().read_text(), parser="lalr", lexer="basic")


def parses(text: str) -> bool:
    return parse_source(SourceFile("spec.synth", text), DiagnosticSink()) is not None


def tokens_and_comments(text: str) -> tuple[list[str], list[str]]:
    """Every token as written, and every comment, in order: what a spec means, and what its
    author wrote besides. A comma before a closing bracket is optional and left out (the
    layout drops it in `{ a, b }` and writes it after each member of an enum on several lines)."""
    lark, found = _parser()
    found.clear()
    tree = lark.parse(text, on_error=_keyword_as_name)
    comments = [str(c).rstrip() for c in found]
    found.clear()
    tokens = [str(t) for t in tree.scan_values(lambda v: True)]
    return [t for t, nxt in zip(tokens, tokens[1:] + [""]) if not (t == "," and nxt in ("}", "]"))], comments


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name)
def test_golden_layout(path):
    expected = path.with_name(path.name.replace(".in.", ".out."))
    out = format_text(path.read_text())
    assert out == expected.read_text()
    assert format_text(out) == out


@pytest.mark.parametrize("path", [p for p in REPO_SPECS if parses(p.read_text())], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_spec_in_the_repo_keeps_its_meaning_and_plan(tmp_path, path):
    text = path.read_text()
    out = format_text(text)
    assert format_text(out) == out
    assert tokens_and_comments(out) == tokens_and_comments(text)
    before = compile(path)
    if before.plan is None:
        return
    copy = tmp_path / path.parent.name
    shutil.copytree(path.parent, copy)
    (copy / path.name).write_text(out)
    after = compile(copy / path.name)
    assert after.plan is not None and after.plan.hash == before.plan.hash


def test_the_example_specs_are_formatted():
    proc = subprocess.run([sys.executable, "-m", "synthlang.cli", "fmt", "--check", "specs", "tests/runtime_specs"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=from_lark(_GRAMMAR, start="start"))
def test_generated_specs_format_to_the_same_tokens(text):
    if not parses(text):
        return
    out = format_text(text)
    assert parses(out)
    assert format_text(out) == out
    assert tokens_and_comments(out) == tokens_and_comments(text)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_comments_anywhere_survive(data):
    spec = data.draw(st.sampled_from([p for p in REPO_SPECS if "golden" not in str(p) and parses(p.read_text())]))
    lines = spec.read_text().split("\n")
    inside_string = _lines_inside_long_strings(lines)
    for i in sorted(data.draw(st.sets(st.integers(0, len(lines) - 1), max_size=6)), reverse=True):
        if i in inside_string:
            continue
        if data.draw(st.booleans()):
            lines[i] = lines[i] + "  # trailing " + str(i)
        else:
            lines.insert(i, "# own line " + str(i))
    text = "\n".join(lines)
    if not parses(text):  # a comment after a `"""` opening line belongs to the string
        return
    out = format_text(text)
    assert format_text(out) == out
    assert tokens_and_comments(out) == tokens_and_comments(text)


def _lines_inside_long_strings(lines: list[str]) -> set[int]:
    inside, out = False, set()
    for i, line in enumerate(lines):
        if inside or line.count('"""') % 2:
            out.add(i)
        if line.count('"""') % 2:
            inside = not inside
    return out


def synthc(*args, cwd):
    return subprocess.run([sys.executable, "-m", "synthlang.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True)


def test_fmt_check_diff_and_write(tmp_path):
    (tmp_path / "specs/.hidden").mkdir(parents=True)
    (tmp_path / "specs/out").mkdir()
    messy = (ROOT / "tests/format/layout.in.synth").read_text()
    (tmp_path / "specs/a.synth").write_text(messy)
    (tmp_path / "specs/b.synth").write_text((ROOT / "tests/format/layout.out.synth").read_text())
    (tmp_path / "specs/.hidden/c.synth").write_text(messy)   # hidden and output folders are not searched
    (tmp_path / "specs/out/d.synth").write_text(messy)
    check = synthc("fmt", "--check", "specs", cwd=tmp_path)
    assert check.returncode == 1 and "would reformat specs/a.synth" in check.stderr and "b.synth" not in check.stderr
    diff = synthc("fmt", "--diff", "specs/a.synth", cwd=tmp_path)
    assert diff.returncode == 1 and "+dataset demo {" in diff.stdout
    assert (tmp_path / "specs/a.synth").read_text() == messy          # --check and --diff change nothing
    write = synthc("fmt", "specs", cwd=tmp_path)
    assert write.returncode == 0 and "2 files, 1 reformatted" in write.stderr
    assert (tmp_path / "specs/a.synth").read_text() == (tmp_path / "specs/b.synth").read_text()
    assert (tmp_path / "specs/.hidden/c.synth").read_text() == messy
    assert synthc("fmt", "--check", "specs", cwd=tmp_path).returncode == 0


def test_fmt_leaves_a_file_with_a_syntax_error_alone(tmp_path):
    bad = tmp_path / "bad.synth"
    bad.write_text("schema T {\n  a: str(1..\n")
    proc = synthc("fmt", bad, cwd=tmp_path)
    assert proc.returncode == 1 and "bad.synth:2:11: error[E0001]" in proc.stderr
    assert bad.read_text() == "schema T {\n  a: str(1..\n"
    assert synthc("fmt", tmp_path / "missing.synth", cwd=tmp_path).returncode == 2


def test_pre_commit_hooks_run_as_pre_commit_runs_them(tmp_path):
    # pre-commit calls a hook's entry with the staged files that match `files`
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    hooks = dict(re.findall(r"- id: (\S+)[\s\S]*?entry: (.+)", text))
    assert set(hooks) == {"synthc-fmt", "synthc-check"}
    assert re.findall(r"files: (.+)", text) == [r"\.synth$", r"\.synth$"]
    shutil.copytree(ROOT / "specs/support_tickets", tmp_path / "t")
    (tmp_path / "t/messy.synth").write_text((ROOT / "tests/format/layout.in.synth").read_text())
    files = ["t/tickets.synth", "t/common.synth", "t/messy.synth"]

    def hook(name):
        program, *args = hooks[name].split()
        assert program == "synthc"
        return synthc(*args, *files, cwd=tmp_path)

    formatted = hook("synthc-fmt")
    assert formatted.returncode == 0 and "reformatted t/messy.synth" in formatted.stderr
    assert (tmp_path / "t/messy.synth").read_text() == (ROOT / "tests/format/layout.out.synth").read_text()
    assert hook("synthc-check").returncode == 1           # messy.synth imports a file that is not there
    (tmp_path / "t/messy.synth").unlink()
    files.pop()
    checked = hook("synthc-check")
    assert checked.returncode == 0 and "t/tickets.synth: ok" in checked.stderr and "t/common.synth: ok" in checked.stderr

