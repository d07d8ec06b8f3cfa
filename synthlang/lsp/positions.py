"""Spans (character offsets) to and from LSP positions, which count a line's code units in the
encoding the client and server agreed on (UTF-16 unless both said otherwise)."""

from __future__ import annotations

from lsprotocol import types

from ..source import SourceFile, Span


def _units(text: str, encoding: str) -> int:
    if encoding == types.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8"))
    if encoding == types.PositionEncodingKind.Utf32:
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def position(source: SourceFile, offset: int, encoding: str) -> types.Position:
    line, col = source.line_col(offset)
    text = source.line_text(line)
    return types.Position(line=line - 1, character=_units(text[: col - 1], encoding))


def to_range(span: Span, encoding: str) -> types.Range:
    return types.Range(start=position(span.source, span.start, encoding),
                       end=position(span.source, span.end, encoding))


def offset(source: SourceFile, pos: types.Position, encoding: str) -> int:
    """The character offset of a client position (clamped to the line and the file)."""
    text = source.line_text(pos.line + 1)
    col = 0
    while col < len(text) and _units(text[: col + 1], encoding) <= pos.character:
        col += 1
    return source.offset_of(pos.line + 1, col + 1)
