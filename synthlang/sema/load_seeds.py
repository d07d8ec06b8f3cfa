"""load_seeds: read every seed file (.jsonl or .csv) and check each row against its schema."""

from __future__ import annotations

import hashlib
from typing import Any

from .. import ir
from ..diagnostics import Note
from ..files import read_bytes
from ..mention_values import mention_values, path_of
from ..seed_files import MAX_SEED_BYTES, SEED_SUFFIXES, read_rows
from ..source import SourceFile, Span
from ..values import ValueError_, check_record, find_in_order
from .check_draws import RowProfile, draw_uses, used_otherwise
from .check_mentions import mention_decimals
from .context import Context

MAX_REPORTED_ROWS = 20  # per file; the rest are summarised


def load_seeds(ctx: Context) -> None:
    uses = draw_uses(ctx)
    # a set only `draw` reads keeps its rows in its file (of any size); the plan holds its digest
    # (or that holds records a block generates: dedup, the label check and the report read those)
    read_otherwise = used_otherwise(ctx)
    generated = {g.schema.value for g in ctx.generates_ast}
    for name, decl in ctx.seeds_ast.items():
        schema = ctx.schemas.get(decl.schema.value)
        if schema is None:
            if decl.schema.value not in ctx.schemas_ast:
                from ..diagnostics import did_you_mean
                ctx.sink.error("E0101", f"unknown schema `{decl.schema.value}`", decl.schema.span,
                               help=did_you_mean(decl.schema.value, ctx.schemas_ast))
            continue
        path = ctx.resolve_path(decl.path.value, decl.path.span, "E0301", "seed file")
        if path is None:
            continue
        suffix = path.suffix.lower()
        if suffix not in SEED_SUFFIXES:
            ctx.sink.error("E0301", f"seed files are .jsonl or .csv, not `{suffix or path.name}`", decl.path.span)
            continue
        ctx.inputs.append(path)
        try:
            data = ctx.overlay[path].encode("utf-8") if path in ctx.overlay else read_bytes(path, MAX_SEED_BYTES)
        except OSError as exc:
            ctx.sink.error("E0301", f"cannot read seed file `{decl.path.value}`: {exc.strerror or exc}",
                           decl.path.span)
            continue
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            ctx.sink.error("E0301", f"seed file `{decl.path.value}` is not UTF-8 text", decl.path.span)
            continue
        source = SourceFile(ctx.rel(path), text)
        profile = RowProfile(uses[name], ctx.schema) if name in uses else None
        inline = profile is None or name in read_otherwise or decl.schema.value in generated
        rows_iter = read_rows(text, suffix, schema)
        rows: list[dict[str, Any]] = []
        lines: list[int] = []
        bad = 0
        known = {f.name for f in schema.fields}
        decimals = {f.name: mention_decimals(ctx, schema, f.mentions) for f in schema.fields if f.mentions}
        unknown_reported: set[str] = set()
        for line_no, row, problem in rows_iter:
            if problem is None:
                for key in row:
                    if key not in known and key not in unknown_reported:
                        unknown_reported.add(key)
                        ctx.sink.warning("W0004", f"column `{key}` is not a field of {schema.name}; it is ignored",
                                         line_span(source, line_no),
                                         notes=[Note(decl.name.span, "seed set declared here")])
                try:
                    checked = check_record(schema, {k: v for k, v in row.items() if k in known}, ctx.schema)
                    problem = _mention_problem(schema, checked, decimals)
                    if problem is None:
                        if profile is not None:
                            profile.add(row_number(suffix, line_no), checked)
                        if inline:
                            rows.append(checked)
                            lines.append(line_no)
                        continue
                except ValueError_ as exc:
                    problem = f"field `{exc.path}`: {exc.message}" if exc.path else exc.message
            bad += 1
            if bad <= MAX_REPORTED_ROWS:
                where = row_name(suffix, line_no)
                ctx.sink.error("E0302", f"{where} of `{decl.path.value}` does not fit {schema.name}: {problem}",
                               line_span(source, line_no),
                               notes=[Note(decl.name.span, "seed set declared here")])
        if bad > MAX_REPORTED_ROWS:
            ctx.sink.error("E0302", f"{bad - MAX_REPORTED_ROWS} more bad rows in `{decl.path.value}`",
                           decl.path.span)
        if bad:
            continue
        ctx.seed_lines[name] = (source, tuple(lines))
        if profile is not None:
            ctx.draw_profiles[name] = profile
        ctx.seeds[name] = ir.SeedSet(name=name, path=ctx.rel(path), schema_name=schema.name,
                                     sha256=hashlib.sha256(data).hexdigest(), rows=tuple(rows),
                                     inline=inline,
                                     row_count=profile.rows if profile is not None and not inline else None,
                                     span=decl.name.span)


def _mention_problem(schema: ir.Schema, row: dict[str, Any], decimals: dict[str, dict[str, int]]) -> str | None:
    """Seed rows must hold the ground truth they claim: mentioned values appear in order."""
    for f in schema.fields:
        text = row.get(f.name)
        if not f.mentions or not isinstance(text, str):
            continue
        # each mentioned value as the text writes it (one per item through a list); a row may
        # lack one
        values = mention_values(f.mentions, decimals.get(f.name, {}), row, skip_absent=True)
        if find_in_order(text, [v for _, v in values]) is None:
            shown = list(dict.fromkeys(path_of(label) for label, _ in values))
            return (f"field `{f.name}` does not contain the values of "
                    f"{', '.join(f'`{m}`' for m in shown)} in that order")
    return None


def row_number(suffix: str, line_no: int) -> int:
    """A row's number as a user counts it: a JSONL row's line, a CSV row's place after the header."""
    return line_no if suffix.lower() == ".jsonl" else line_no - 1


def row_name(suffix: str, line_no: int) -> str:
    """A row as a user counts it: a JSONL row by its line, a CSV row after the header."""
    if suffix.lower() != ".jsonl" and line_no == 1:
        return "the header"
    return f"row {row_number(suffix, line_no)}"


def line_span(source: SourceFile, line_no: int) -> Span:
    start = source.offset_of(line_no, 1)
    end = source.text.find("\n", start)
    return source.span(start, end if end >= 0 else len(source.text))
