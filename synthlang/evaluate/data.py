"""Reading the rows an evaluation needs: held-out test files, generated splits, seed rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..plan.model import Plan
from ..runtime.sinks import block_prefix


class EvalInputError(Exception):
    """A missing or unreadable input, reported to the user as one line."""


def read_rows(path: Path) -> list[dict]:
    """All rows of a .jsonl, .csv or .parquet file; `_meta` decoded from JSON text where needed."""
    return list(iter_rows(path))


def iter_rows(path: Path):
    """Rows of a .jsonl, .csv or .parquet file, one at a time (files may exceed memory)."""
    if not path.is_file():
        raise EvalInputError(f"{path} not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            with open(path, encoding="utf-8") as fh:
                rows = (json.loads(line) for line in fh if line.strip())
                yield from (_decode_meta(r) for r in rows)
        elif suffix == ".csv":
            with open(path, newline="", encoding="utf-8") as fh:
                yield from (_decode_meta(r) for r in csv.DictReader(fh))
        elif suffix == ".parquet":
            import pyarrow.parquet as pq
            for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
                yield from (_decode_meta(r) for r in batch.to_pylist())
        else:
            raise EvalInputError(f"{path}: unsupported file type {suffix}")
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error, OSError) as exc:
        raise EvalInputError(f"{path}: cannot read rows: {exc}") from None


def _decode_meta(row: dict) -> dict:
    meta = row.get("_meta")
    if isinstance(meta, str):
        try:
            row["_meta"] = json.loads(meta)
        except json.JSONDecodeError:
            row["_meta"] = {}
    return row


def output_files(plan: Plan, out_dir: Path, block_id: str) -> dict[str, Path]:
    prefix = block_prefix(plan, block_id)
    return {s.name: out_dir / f"{prefix}{s.name}.{plan.output.format}" for s in plan.output.splits}


def synthetic_train_rows(plan: Plan, out_dir: Path, block_id: str) -> list[dict]:
    files = output_files(plan, out_dir, block_id)
    path = files.get("train") or next(iter(files.values()))
    if not path.is_file():
        raise EvalInputError(f"no generated data at {path}: run `synthc run` on the spec first")
    return [r for r in read_rows(path) if (r.get("_meta") or {}).get("source") == "synthetic"]


def real_rows(plan: Plan, schema_name: str) -> list[dict]:
    return [dict(r) for s in plan.seeds.values() if s.schema_name == schema_name for r in s.rows]
