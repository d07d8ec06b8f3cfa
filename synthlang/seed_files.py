"""seed_files: the rows of a seed file (.jsonl or .csv), as the compiler checks them and as a run
reads a file `draw` takes its rows from; one reader for both, so they cannot disagree."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from . import ir
from .values import ValueError_, coerce_text, load_json

SEED_SUFFIXES = (".jsonl", ".csv")
MAX_SEED_BYTES = 256 * 2**20  # a seed file, or a data file `draw` reads: at most this large


def read_rows(text: str, suffix: str, schema: ir.Schema) -> Iterator[tuple[int, Any, str | None]]:
    """(line, row, None) for each row, or (line, None, problem) for one that cannot be read;
    blank lines are skipped. CSV cells are typed by the schema's fields; the rows are not yet
    checked against it (values.check_record)."""
    return _rows_jsonl(text) if suffix.lower() == ".jsonl" else _rows_csv(text, schema)


def _rows_jsonl(text: str) -> Iterator[tuple[int, Any, str | None]]:
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = load_json(line)
            twice = _key_twice(line) if isinstance(value, dict) else None
            if twice is not None:  # json.loads keeps the last of two same-named keys, silently
                yield line_no, None, f"the row names `{twice}` twice"
                continue
        except json.JSONDecodeError as exc:
            yield line_no, None, f"not valid JSON: {exc.msg} (column {exc.colno})"
            continue
        except ValueError as exc:
            yield line_no, None, f"not a valid row: {exc}"
            continue
        if not isinstance(value, dict):
            yield line_no, None, "a row must be a JSON object"
            continue
        yield line_no, value, None


def _key_twice(line: str) -> str | None:
    """A key that one object of the row holds twice, or None."""
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            found.append(next(k for i, k in enumerate(keys) if k in keys[:i]))
        return dict(items)

    json.loads(line, object_pairs_hook=pairs)
    return found[0] if found else None


def _rows_csv(text: str, schema: ir.Schema) -> Iterator[tuple[int, Any, str | None]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield 1, None, f"unreadable CSV header: {exc}"
        return
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:  # a dict keeps the last of two same-named columns, silently
        yield 1, None, f"the header names column `{twice[0]}` {header.count(twice[0])} times"
        return
    types = {f.name: f.type for f in schema.fields}
    line_no = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, None, f"unreadable CSV: {exc}"
            return
        start = line_no + 1
        line_no = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            yield start, None, f"{len(cells)} cells but the header has {len(header)}"
            continue
        row: dict[str, Any] = {}
        problem = None
        for name, cell in zip(header, cells):
            if cell == "":
                continue  # empty cell: absent value
            try:
                row[name] = coerce_text(types[name], cell) if name in types else cell
            except ValueError_ as exc:
                problem = f"field `{name}`: {exc.message}"
                break
        yield start, (None if problem else row), problem
