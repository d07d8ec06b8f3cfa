"""Go to definition, find references and rename, over the spec and the files it imports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..files import read_bytes
from ..seed_files import MAX_SEED_BYTES
from ..source import SourceFile, Span
from .analysis import Analysis
from .index import Occurrence

# an enum's value is not renamed: seed rows and the strings of checks hold it as data
RENAMEABLE = frozenset({"field", "schema", "enum", "model", "seeds"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# words that start a declaration or an item where a name may stand: a field may be called
# `count`, but a schema called `schema` would read badly everywhere it is used
_RESERVED = frozenset({
    "import", "dataset", "model", "enum", "schema", "seeds", "generate", "output", "evaluate", "list",
    "true", "false", "null", "and", "or", "not", "in", "contains", "matches",
})


def occurrence_at(analysis: Analysis, path: Path, offset: int) -> Occurrence | None:
    source = analysis.source_of(path)
    return analysis.index.at(source.path, offset) if source else None


def definition(analysis: Analysis, path: Path, offset: int) -> tuple[Path, Span | None] | None:
    """Where the name under the cursor is declared; for an import, the imported file."""
    occ = occurrence_at(analysis, path, offset)
    if occ is None:
        return None
    if occ.key[0] == "file":
        return Path(occ.key[2]), None
    found = analysis.index.definition(occ.key)
    return (analysis.path_of(found.span), found.span) if found else None


def references(analysis: Analysis, path: Path, offset: int, include_declaration: bool) -> list[Span]:
    occ = occurrence_at(analysis, path, offset)
    if occ is None:
        return []
    return [o.span for o in analysis.index.references(occ.key) if include_declaration or not o.definition]


class RenameError(Exception):
    pass


def rename_target(analysis: Analysis, path: Path, offset: int) -> Occurrence | None:
    occ = occurrence_at(analysis, path, offset)
    return occ if occ is not None and occ.key[0] in RENAMEABLE and analysis.index.definition(occ.key) else None


def rename(analysis: Analysis, path: Path, offset: int, new_name: str) -> dict[Path, list[tuple[Span, str]]]:
    """The edits, by file, that rename the name under the cursor everywhere it is used."""
    occ = rename_target(analysis, path, offset)
    if occ is None:
        raise RenameError("nothing to rename here: put the cursor on a field, schema, enum, model or seed set")
    kind, scope, old = occ.key
    if not _NAME.fullmatch(new_name):
        raise RenameError(f"`{new_name}` is not a name: use letters, digits and _, not starting with a digit")
    if new_name in _RESERVED:
        raise RenameError(f"`{new_name}` is a keyword of the language")
    if new_name != old and analysis.index.definition((kind, scope, new_name)) is not None:
        raise RenameError(f"`{new_name}` is already declared there")
    if kind in ("schema", "enum") and analysis.index.definition(
            ("enum" if kind == "schema" else "schema", "", new_name)) is not None:
        raise RenameError(f"`{new_name}` is already the name of a type")
    edits: dict[Path, list[tuple[Span, str]]] = {}
    for o in analysis.index.references(occ.key):
        edits.setdefault(analysis.path_of(o.span), []).append((o.span, new_name))
    if kind == "field":
        _rename_seed_columns(analysis, scope, old, new_name, edits)
    return edits


def _rename_seed_columns(analysis: Analysis, schema: str, old: str, new: str,
                         edits: dict[Path, list[tuple[Span, str]]]) -> None:
    """The field's column in the seed files of its schema, so the seeds still fit: the key of
    each JSON Lines row, the header cell of a CSV file."""
    ctx = analysis.result.context
    for seeds in ctx.seeds.values():
        if seeds.schema_name != schema:
            continue
        path = (ctx.root / seeds.path).resolve()
        try:
            text = ctx.overlay.get(path) or read_bytes(path, MAX_SEED_BYTES).decode("utf-8-sig")
        except (OSError, UnicodeDecodeError):
            continue
        source = SourceFile(seeds.path, text)
        found: list[tuple[Span, str]] = []
        if path.suffix.lower() == ".csv":
            header_end = text.find("\n")
            header = text[: header_end if header_end >= 0 else len(text)]
            at = 0
            for cell in header.split(","):
                if cell.strip().strip('"') == old:
                    start = at + cell.index(old)
                    found.append((source.span(start, start + len(old)), new))
                at += len(cell) + 1
        else:
            key = json.dumps(old)
            line_start = 0
            for line in text.split("\n"):
                hits = [m.start() for m in re.finditer(re.escape(key) + r"\s*:", line)]
                if len(hits) == 1:
                    start = line_start + hits[0]
                    found.append((source.span(start, start + len(key)), json.dumps(new)))
                line_start += len(line) + 1
        if found:
            edits[path] = found
