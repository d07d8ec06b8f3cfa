"""Parsing past syntax errors (syntax/recover.py), as the language server does for a file
being typed: each syntax error is reported, the declaration holding it is emptied, and the
rest of the file is parsed and checked as usual."""

from __future__ import annotations

import shutil
from pathlib import Path

from synthlang import compiler
from synthlang.diagnostics import DiagnosticSink
from synthlang.source import SourceFile
from synthlang.syntax import ast
from synthlang.syntax.recover import parse_recovering

ROOT = Path(__file__).resolve().parents[1]
SPEC = '''enum Intent { billing, outage }

schema Ticket {
  subject: str(8..80)
  intent:  Intent
}

generate Ticket {
  count 10
  prompt """Write a {{ intent }} ticket."""
}
'''


def parse(text: str) -> tuple[ast.Module | None, list, DiagnosticSink]:
    sink = DiagnosticSink()
    module, skipped = parse_recovering(SourceFile("x.synth", text), sink)
    return module, skipped, sink


def test_a_clean_file_parses_as_before():
    module, skipped, sink = parse(SPEC)
    assert module is not None and skipped == [] and sink.items == []
    assert [type(d).__name__ for d in module.decls] == ["EnumDecl", "SchemaDecl", "GenerateDecl"]


def test_the_broken_declaration_keeps_its_header_and_the_others_parse():
    text = SPEC.replace("  subject: str(8..80)\n", "  subject: str(8..\n")
    module, skipped, sink = parse(text)
    assert [d.code for d in sink.items] == ["E0001"]
    assert module is not None and [type(d).__name__ for d in module.decls] == ["EnumDecl", "SchemaDecl",
                                                                               "GenerateDecl"]
    schema = module.decls[1]
    assert isinstance(schema, ast.SchemaDecl) and schema.name.value == "Ticket" and schema.fields == ()
    assert len(skipped) == 1 and skipped[0].line == 3
    # spans point into the text as written, not into the emptied copy
    assert module.source.text == text and module.decls[2].span.source.text == text


def test_each_broken_declaration_reports_its_own_error():
    text = SPEC.replace("billing, outage }", "billing outage }").replace("count 10", "count 10 20")
    module, skipped, sink = parse(text)
    assert [(d.code, d.span.line) for d in sink.items] == [("E0001", 1), ("E0001", 9)]
    assert module is not None and len(skipped) == 2


def test_an_unterminated_prompt_is_reported_once():
    text = SPEC.replace('ticket."""', 'ticket.')
    module, skipped, sink = parse(text)
    assert [d.code for d in sink.items] == ["E0002"]
    assert module is not None and [type(d).__name__ for d in module.decls][:2] == ["EnumDecl", "SchemaDecl"]


def test_the_rest_of_a_spec_is_checked_past_a_syntax_error(tmp_path):
    folder = tmp_path / "t"
    shutil.copytree(ROOT / "specs" / "support_tickets", folder)
    spec = folder / "tickets.synth"
    text = spec.read_text().replace("  count 40\n", "  count 40\n  quota {\n").replace("Intent\n", "Intnet\n")
    result = compiler.compile(spec, overlay={spec.resolve(): text}, recover=True)
    codes = [d.code for d in result.diagnostics]
    assert "E0001" in codes and any(d.code == "E0101" and "Intnet" in d.message for d in result.diagnostics)
    assert [d.code for d in compiler.compile(spec, overlay={spec.resolve(): text}).diagnostics] == ["E0001"]
