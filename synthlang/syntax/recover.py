"""parse_recovering: a file with syntax errors, parsed as far as it can be.

An editor checks a file while it is being typed, so it is seldom whole. The syntax error is
reported as `synthc check` reports it; then the top-level declaration that holds it is blanked
out (spaces, newlines kept, so every offset stays where it was) and the rest is parsed again,
up to a few times. What remains is checked as usual, so one half-typed `generate` block does
not hide the problems of the others."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from ..diagnostics import Diagnostic, DiagnosticSink, Severity
from ..nodes import Record
from ..source import SourceFile, Span
from . import ast
from .parser import parse_source

MAX_ROUNDS = 8

# a top-level declaration starts a line with its keyword (the formatter puts it there)
_DECL_START = re.compile(r"^(?:import|dataset|model|enum|schema|seeds|generate|output|evaluate)\b", re.M)
_DECL_HEAD = re.compile(r"(?:dataset|model|enum|schema|generate|evaluate)\s+[A-Za-z_]\w*(?:\s+as\s+[A-Za-z_]\w*)?\s*\{")


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]


def _enclosing_decl(text: str, offset: int) -> tuple[int, int]:
    """The [start, end) of the top-level declaration around an offset: from the last
    declaration keyword at a line start before it to the next one after it."""
    start = 0
    for m in _DECL_START.finditer(text, 0, offset + 1):
        start = m.start()
    nxt = _DECL_START.search(text, offset + 1)
    return start, nxt.start() if nxt else len(text)


def parse_recovering(source: SourceFile, sink: DiagnosticSink) -> tuple[ast.Module | None, list[Span]]:
    """The module, with the declarations that hold syntax errors emptied, and the spans
    emptied. A declaration whose header parses keeps it (`generate Ticket {}`), so the rest of
    the file still finds the names it declares; what the checker then says inside an emptied
    span is about the emptying, not about the user's text, and the caller drops it."""
    text = source.text
    skipped: list[Span] = []
    for _ in range(MAX_ROUNDS):
        trial = DiagnosticSink()
        module = parse_source(source if text is source.text else SourceFile(source.path, text), trial)
        errors = [d for d in trial.items if d.severity is Severity.ERROR]
        if not errors:
            sink.items.extend(trial.items)
            # spans must point into the text the user has, not into the blanked copy
            return (_rehome(module, source) if module is not None else None), skipped
        first = errors[0]
        where = first.span.start if first.span is not None else 0
        sink.items.append(first if text is source.text else _moved(first, source))
        start, end = _enclosing_decl(text, min(where, max(len(text) - 1, 0)))
        if any(s.start <= start < s.end for s in skipped) or end <= start:
            break
        text = _emptied(text, start, end, where)
        skipped.append(source.span(start, end))
    return None, skipped


def _emptied(text: str, start: int, end: int, error_at: int) -> str:
    """The declaration at [start, end) blanked; one whose header `keyword Name {` comes
    before the error keeps its header and is closed at once."""
    head = _DECL_HEAD.match(text, start)
    if head is None or head.end() > error_at:
        return _blank(text, start, end)
    out = _blank(text, head.end(), end)
    close = out.find(" ", head.end(), end)  # the first blanked column (newlines stay)
    return out if close < 0 else out[:close] + "}" + out[close + 1:]


def _moved(diag: Diagnostic, source: SourceFile) -> Diagnostic:
    """A diagnostic found in the blanked copy, pointed at the user's own text."""
    if diag.span is None:
        return diag
    return replace(diag, span=source.span(diag.span.start, diag.span.end))


def _rehome(module: ast.Module, source: SourceFile) -> ast.Module:
    """The module parsed from the blanked copy, its spans pointing at the user's text. The
    copy has the same length and line breaks, so offsets carry over unchanged; only the source
    object (and so what a hover or a diagnostic shows of the line) is swapped."""
    if module.source is source:
        return module
    rehomed: ast.Module = _Rehomer(module.source, source).node(module)
    return rehomed


class _Rehomer:
    def __init__(self, old: SourceFile, new: SourceFile):
        self.old, self.new = old, new

    def node(self, value: Any) -> Any:
        if isinstance(value, Span):
            return Span(self.new, value.start, value.end) if value.source is self.old else value
        if isinstance(value, SourceFile):
            return self.new if value is self.old else value
        if isinstance(value, tuple):
            return tuple(self.node(v) for v in value)
        if isinstance(value, Record):
            return value.copy(**{name: self.node(getattr(value, name)) for name in value._fields})
        return value
