"""Reading the rows an evaluation needs: held-out test files, generated splits, seed rows."""

from __future__ import annotations

import csv
from pathlib import Path

from ..files import is_regular_file
from ..plan.layout import output_files
from ..plan.model import Plan
from ..values import load_json


class EvalInputError(Exception):
    """A missing or unreadable input, reported to the user as one line."""


def read_rows(path: Path) -> list[dict]:
    """All rows of a .jsonl, .csv or .parquet file; `_meta` decoded from JSON text where needed."""
    return list(iter_rows(path))


def iter_rows(path: Path):
    """Rows of a .jsonl, .csv or .parquet file, one at a time (files may exceed memory)."""
    if not is_regular_file(path):  # also refuses FIFOs and devices, which would be read forever
        raise EvalInputError(f"{path} not found, or not a regular file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            with open(path, encoding="utf-8") as fh:
                for line_no, line in enumerate(fh, start=1):
                    if line.strip():
                        try:
                            row = load_json(line)
                        except ValueError as exc:
                            raise EvalInputError(f"{path}:{line_no}: not a valid row: {exc}") from None
                        if not isinstance(row, dict):
                            raise EvalInputError(f"{path}:{line_no}: a row must be a JSON object")
                        yield _decode_meta(row)
        elif suffix == ".csv":
            with open(path, newline="", encoding="utf-8") as fh:
                yield from (_decode_meta(r) for r in csv.DictReader(fh))
        elif suffix == ".parquet":
            import pyarrow.parquet as pq
            for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
                yield from (_decode_meta(r) for r in batch.to_pylist())
        else:
            raise EvalInputError(f"{path}: unsupported file type {suffix}")
    except (ValueError, csv.Error, OSError) as exc:
        raise EvalInputError(f"{path}: cannot read rows: {exc}") from None


def _decode_meta(row: dict) -> dict:
    """`_meta` as a dict, whatever the format: JSON text in CSV, a struct in Parquet (where
    absent keys read as null and the spans map reads as (key, value) pairs)."""
    meta = row.get("_meta")
    if isinstance(meta, str):
        try:
            meta = load_json(meta)
        except ValueError:
            meta = {}
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if v is not None}
        if isinstance(meta.get("spans"), list):
            meta["spans"] = dict(meta["spans"])
        row["_meta"] = meta
    return row


def synthetic_train_rows(plan: Plan, out_dir: Path, block_id: str) -> list[dict]:
    files = output_files(plan, out_dir, block_id)
    path = files.get("train") or next(iter(files.values()))
    if not path.is_file():
        raise EvalInputError(f"no generated data at {path}: run `synthc run` on the spec first")
    return [r for r in read_rows(path) if (r.get("_meta") or {}).get("source") == "synthetic"]


def synthetic_rows_of(plan: Plan, out_dir: Path, blocks: list[str]) -> list[dict]:
    """The synthetic train rows of every block named, in block order."""
    return [r for b in blocks for r in synthetic_train_rows(plan, out_dir, b)]


def origins(rows: list[dict]) -> dict[str, int]:
    """Synthetic rows by where they came from: grown from a real row (`rewritten`, `resampled`,
    `copied`) or `generated` from scratch, largest first."""
    counts: dict[str, int] = {}
    for r in rows:
        grown = (r.get("_meta") or {}).get("from")
        how = grown.get("how", "generated") if isinstance(grown, dict) else "generated"
        counts[how] = counts.get(how, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def real_rows(plan: Plan, schema_name: str) -> list[dict]:
    return [dict(r) for r in plan.seed_rows(schema_name)]
