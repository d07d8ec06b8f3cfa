"""The VS Code extension (editors/vscode): its TextMate grammar against the example specs
(snapshot tests) and hand-written scope assertions, both run by vscode-tmgrammar-test; its
keyword lists against the language; and the extension packaged by vsce."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from synthlang.sema.check_settings import DATASET_KEYS, MODEL_KEYS
from synthlang.syntax.parser import grammar_path

EXT = Path(__file__).resolve().parents[1] / "editors" / "vscode"
BIN = EXT / "node_modules" / ".bin"


def npm_tool(name: str) -> str:
    tool = BIN / name
    if not tool.exists():
        pytest.fail(f"{tool} is missing: run `npm ci --prefix editors/vscode` (scripts/test.sh does)")
    return str(tool)


def run(args: list[str], cwd: Path = EXT) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_grammar_gives_the_scopes_its_unit_tests_assert():
    r = run([npm_tool("vscode-tmgrammar-test"), "tests/unit/*.synth"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "grammar.synth run successfuly" in r.stdout


def test_the_example_specs_highlight_as_their_snapshots_say():
    specs = sorted(p.name for p in (EXT / "tests" / "snap").glob("*.synth"))
    assert specs == sorted(p.name for p in (EXT.parents[1] / "specs").glob("*/*.synth"))  # every example
    r = run([npm_tool("vscode-tmgrammar-snap"), "tests/snap/*.synth"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("run successfully") == len(specs)


def test_a_changed_scope_fails_the_snapshot_test(tmp_path):
    copy = tmp_path / "vscode"
    shutil.copytree(EXT, copy, ignore=shutil.ignore_patterns("node_modules"), symlinks=False)
    snap = copy / "tests" / "snap" / "tickets.synth.snap"
    snap.write_text(snap.read_text().replace("keyword.other.declaration.synth", "keyword.other.synth", 1))
    r = run([npm_tool("vscode-tmgrammar-snap"), "tests/snap/*.synth"], cwd=copy)
    assert r.returncode != 0 and "tickets.synth" in r.stdout


def test_the_grammar_knows_every_keyword_of_the_language():
    grammar = json.loads((EXT / "syntaxes" / "synth.tmLanguage.json").read_text())
    text = json.dumps(grammar)
    lark = grammar_path().read_text()
    declarations = set(re.findall(r'^\w+_decl: "(\w+)"', lark, re.M))
    assert declarations and all(re.search(rf"\b{d}\b", grammar["repository"]["declaration"]["match"])
                                for d in declarations)
    words = set(re.findall(r'"([a-z_]+)"', lark)) - declarations
    missing = [w for w in words if not re.search(rf"(?<![\w-]){w}(?![\w-])", text)]
    assert missing == [], f"grammar/synth.lark keywords the TextMate grammar does not highlight: {missing}"
    settings = grammar["repository"]["setting"]["match"]
    assert all(re.search(rf"\b{k}\b", settings) for k in [*DATASET_KEYS, *MODEL_KEYS])
    assert all(re.search(rf"\b{t}\b", text) for t in ("str", "int", "float", "bool", "date", "list"))


def test_vsce_packages_the_extension(tmp_path):
    out = tmp_path / "synthlang.vsix"
    r = run([npm_tool("vsce"), "package", "--allow-missing-repository", "--skip-license", "--out", str(out)])
    assert r.returncode == 0, r.stdout + r.stderr
    names = zipfile.ZipFile(out).namelist()
    for part in ("extension/package.json", "extension/extension.js", "extension/syntaxes/synth.tmLanguage.json",
                 "extension/language-configuration.json",
                 "extension/node_modules/vscode-languageclient/package.json"):
        assert part in names
    assert not any("/tests/" in n for n in names)
