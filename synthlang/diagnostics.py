"""Diagnostics: registered codes, one sink shared by every pass, text and JSON rendering."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .source import Span


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


# Every code the compiler can emit, with a one-line summary (docs/diagnostics.md lists them).
CODES: dict[str, str] = {
    "E0001": "syntax error",
    "E0002": "malformed token (unterminated string or regex, stray character, named by its code point)",
    "E0003": "unreadable source file",
    "E0004": "number out of range (an integer past 64 bits, a regex repetition count past 4,294,967,294)",
    "E0005": "spec too large",
    "E0101": "unknown name",
    "E0102": "duplicate name",
    "E0103": "import cycle",
    "E0104": "import not found or outside the spec's folder tree",
    "E0105": "missing required declaration or setting",
    "E0106": "unknown setting",
    "E0107": "invalid setting value",
    "E0108": "a field needs a constraint its model's engine and backend do not enforce",
    "E0201": "constraint does not fit the field's type",
    "E0202": "empty or inverted range, or bounds past what a run allows",
    "E0203": "invalid regular expression",
    "E0204": "regex matches cannot meet the length bounds",
    "E0205": "sampler does not fit the field's type",
    "E0206": "weights do not match the options",
    "E0207": "picked value does not fit the field's type",
    "E0208": "invalid `mentions`",
    "E0209": "invalid derived field (a type mismatch, fields derived from each other)",
    "E0210": "recursive record type, or types nested more than 100 levels deep",
    "E0211": "conditional sampler does not fit its condition (an unknown field or value, values not covered, a cycle)",
    "E0212": "`draw` does not fit its seed set (an unknown column, a type it cannot fill, weights that are not "
             "numbers, a value no row matches)",
    "E0301": "seed file missing or unreadable",
    "E0302": "seed row breaks the schema",
    "E0401": "quota on a field that cannot carry one",
    "E0402": "quota values do not match the field's options",
    "E0403": "quota shares do not add up",
    "E0404": "a check or quota cell that no record can pass",
    "E0405": "few-shot examples impossible (no rows, fewer rows than asked, none for a cell)",
    "E0406": "invalid block grown from real rows (a seed set of another schema, a field that cannot be "
             "rewritten or re-sampled, a cell with no row, nothing changed)",
    "E0407": "label check impossible (no label field with a text, too few real rows to learn from)",
    "E0501": "prompt template syntax error",
    "E0502": "undefined name in prompt template",
    "E0503": "invalid step (a field written by no step or by two, a condition or template using a later step)",
    "E0504": "invalid dialogue (not a list of role/content records, a role that is not a value, rounds that do "
             "not fit the list)",
    "E0505": "invalid candidates (fields of different types, fewer than 2 candidates, an empty rubric)",
    "E0601": "type mismatch in expression",
    "E0602": "unknown function or wrong arguments",
    "E0701": "invalid noise rule",
    "E0702": "unknown plausibility filter in `allow`",
    "E0801": "invalid dedup",
    "E0802": "invalid judge",
    "E0901": "invalid output",
    "E1001": "invalid evaluate",
    "W0001": "model-written value has no upper bound",
    "W0002": "max_tokens below the worst case the bounds allow",
    "W0003": "quota overrides the field's sampler",
    "W0004": "seed column not in the schema",
    "W0005": "mention fit cannot be proven at compile time",
    "W0006": "mixed real rows lack a sampled field (written as null)",
}


@dataclass(frozen=True)
class Note:
    span: Span
    message: str


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    code: str
    message: str
    span: Span | None = None
    help: str | None = None
    notes: tuple[Note, ...] = ()

    def sort_key(self) -> tuple[Any, ...]:
        if self.span is None:
            return ("", 0, 0, self.code, self.message)
        return (self.span.path, self.span.line, self.span.col, self.code, self.message)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity.value, "code": self.code, "message": self.message}
        out.update(self.span.to_json() if self.span else {"path": None})
        out["help"] = self.help
        out["notes"] = [{"message": n.message, **n.span.to_json()} for n in self.notes]
        return out


@dataclass
class DiagnosticSink:
    """Collects diagnostics from every pass; passes never raise on the first problem."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, code: str, message: str, span: Span | None = None,
              help: str | None = None, notes: Iterable[Note] = ()) -> None:
        assert code in CODES, code
        self.items.append(Diagnostic(Severity.ERROR, code, message, span, help, tuple(notes)))

    def warning(self, code: str, message: str, span: Span | None = None,
                help: str | None = None, notes: Iterable[Note] = ()) -> None:
        assert code in CODES, code
        self.items.append(Diagnostic(Severity.WARNING, code, message, span, help, tuple(notes)))

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        seen: set[Any] = set()
        out = []
        for d in sorted(self.items, key=Diagnostic.sort_key):
            key = (d.sort_key(), d.severity)
            if key not in seen:
                seen.add(key)
                out.append(d)
        return out


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A help line naming the closest candidate, if any is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


# C0 and C1 control characters (ESC, CSI, BEL, ...) and the bidirectional controls that reorder
# what a terminal shows: text from a spec or a seed file must never reach a terminal as either
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# and lone surrogates: a file name that is not UTF-8 holds them, and no terminal can be sent one
_CONTROL = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{BIDI_CONTROLS}\\ud800-\\udfff]")
_C1 = re.compile(r"[\x7f-\x9f]")
SHOWN_LINE = 160  # characters of a source line shown around a caret


def printable(text: str) -> str:
    """Text safe for a terminal: control characters become visible escapes like \\x1b, and
    bidirectional controls like \\u202e."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
                        text)


def _caret_block(span: Span, label: str = "") -> list[str]:
    line_no = span.line
    text = span.source.line_text(line_no).expandtabs(1)
    end_line, end_col = span.end_line_col
    col = span.col
    width = (end_col - col) if end_line == line_no else len(text) - col + 1
    width = max(1, width)
    if len(text) > SHOWN_LINE:  # a window of a long line around the span
        start = max(0, min(col - 1 - SHOWN_LINE // 3, len(text) - SHOWN_LINE))
        shown = text[start:start + SHOWN_LINE]
        prefix, suffix = ("…" if start else ""), ("…" if start + SHOWN_LINE < len(text) else "")
        text = prefix + shown + suffix
        col = col - start + len(prefix)
        width = max(1, min(width, SHOWN_LINE - (col - 1 - len(prefix))))
    # each control character is shown as four characters (\xNN): move the caret with it
    before = printable(text[:col - 1])
    marked = printable(text[col - 1:col - 1 + width])
    gutter = " " * len(str(line_no))
    return [f"{gutter} |", f"{line_no} | {printable(text)}",
            f"{gutter} | {' ' * len(before)}{'^' * max(1, len(marked))}{(' ' + label) if label else ''}"]


def render_text(diag: Diagnostic) -> str:
    where = f"{printable(diag.span.path)}:{diag.span.line}:{diag.span.col}: " if diag.span else ""
    lines = [f"{where}{diag.severity.value}[{diag.code}]: {printable(diag.message)}"]
    if diag.span is not None:
        lines += _caret_block(diag.span)
    for note in diag.notes:
        lines.append(f"{' ' * (len(str(diag.span.line)) if diag.span else 1)} = note: "
                     f"{printable(note.span.path)}:{note.span.line}:{note.span.col}: {printable(note.message)}")
    if diag.help:
        pad = " " * (len(str(diag.span.line)) if diag.span else 1)
        lines.append(f"{pad} = help: {printable(diag.help)}")
    return "\n".join(lines)


def render_all_text(diags: list[Diagnostic]) -> str:
    errors = sum(d.severity is Severity.ERROR for d in diags)
    warnings = len(diags) - errors
    body = "\n\n".join(render_text(d) for d in diags)
    summary = f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
    return (body + "\n\n" if body else "") + summary


def render_all_json(diags: list[Diagnostic]) -> str:
    # JSON escapes C0 characters itself; C1 ones (a CSI is U+009B) are escaped here too
    text = json.dumps([d.to_json() for d in diags], indent=2, ensure_ascii=False)
    return _C1.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
