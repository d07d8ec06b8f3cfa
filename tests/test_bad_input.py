"""Bad input of every kind gives diagnostics (or a clean pass), never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from synthlang.compiler import compile

CORPUS = Path(__file__).parent / "bad_input"
FILES = sorted(p.name for p in CORPUS.glob("*.synth"))
# files in the corpus that are valid specs (edge cases that must keep working)
VALID = {"empty.synth", "only_comments.synth", "bom.synth", "crlf.synth", "unicode_strings.synth",
         "keywords_as_names.synth", "long_line.synth"}


@pytest.mark.parametrize("name", FILES)
def test_corpus_file_gives_diagnostics_not_traceback(name):
    result = compile(CORPUS / name)
    if name in VALID:
        assert result.ok, [d.message for d in result.diagnostics]
    else:
        assert not result.ok
        assert all(d.code.startswith("E") and d.message for d in result.diagnostics if not d.code.startswith("W"))


@pytest.mark.parametrize("name", ["binary_garbage.synth", "deep_parens.synth", "unterminated_string.synth"])
def test_cli_on_bad_input_exits_1_without_traceback(name):
    proc = subprocess.run([sys.executable, "-m", "synthlang.cli", "check", str(CORPUS / name)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "error[E" in proc.stderr


def test_specific_messages():
    msgs = {name: [f"{d.code}: {d.message}" for d in compile(CORPUS / name).diagnostics] for name in
            ("unterminated_string.synth", "unterminated_regex.synth", "unterminated_long_string.synth",
             "huge_numbers.synth", "invalid_date.synth", "nul_bytes.synth", "latin1.synth", "bad_escape.synth")}
    assert msgs["unterminated_string.synth"] == ["E0002: unterminated string"]
    assert msgs["unterminated_regex.synth"] == ["E0002: unterminated regex"]
    assert msgs["unterminated_long_string.synth"] == ["E0002: unterminated multi-line string"]
    assert msgs["huge_numbers.synth"][0].startswith("E0004: integer")
    assert msgs["invalid_date.synth"] == ["E0002: `2024-02-30` is not a valid date"]
    assert msgs["nul_bytes.synth"][0].startswith("E0003")
    assert msgs["latin1.synth"] == ["E0003: file is not valid UTF-8 text"]
    assert msgs["bad_escape.synth"] == ["E0002: unknown escape `\\q` in string"]
