"""Source files and spans: every AST node, IR node and diagnostic points into one."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SourceFile:
    """A file's text with a line index for offset -> (line, column) lookups."""

    path: str  # as shown to the user (relative where possible)
    text: str
    _line_starts: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        starts = [0]
        for i, ch in enumerate(self.text):
            if ch == "\n":
                starts.append(i + 1)
        object.__setattr__(self, "_line_starts", tuple(starts))

    @classmethod
    def read(cls, path: Path, shown: str | None = None) -> SourceFile:
        data = path.read_bytes()
        text = data.decode("utf-8", errors="replace")
        return cls(shown if shown is not None else str(path), text)

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    def line_text(self, line: int) -> str:
        if line < 1 or line > len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start : end if end >= 0 else len(self.text)].rstrip("\r")

    def offset_of(self, line: int, col: int) -> int:
        line = max(1, min(line, len(self._line_starts)))
        return min(self._line_starts[line - 1] + col - 1, len(self.text))

    def span(self, start: int, end: int) -> Span:
        return Span(self, start, max(start, end))


@dataclass(frozen=True)
class Span:
    """A half-open character range [start, end) in a source file."""

    source: SourceFile
    start: int
    end: int

    @property
    def path(self) -> str:
        return self.source.path

    @property
    def line(self) -> int:
        return self.source.line_col(self.start)[0]

    @property
    def col(self) -> int:
        return self.source.line_col(self.start)[1]

    @property
    def end_line_col(self) -> tuple[int, int]:
        return self.source.line_col(self.end)

    def to_json(self) -> dict[str, Any]:
        end_line, end_col = self.end_line_col
        return {"path": self.path, "line": self.line, "col": self.col,
                "end_line": end_line, "end_col": end_col}

    def __repr__(self) -> str:  # keeps IR reprs short
        return f"Span({self.path}:{self.line}:{self.col})"
