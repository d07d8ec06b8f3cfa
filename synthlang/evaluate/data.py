"""Reading the rows an evaluation needs: held-out test files, generated splits, seed rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..plan.model import Plan


class EvalInputError(Exception):
    """A missing or unreadable input, reported to the user as one line."""


def read_rows(path: Path) -> list[dict]:
    """Rows of a .jsonl, .csv or .parquet file; `_meta` decoded from JSON text where needed."""
    if not path.is_file():
        raise EvalInputError(f"{path} not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        elif suffix == ".csv":
            with open(path, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        elif suffix == ".parquet":
            import pyarrow.parquet as pq
            rows = pq.read_table(path).to_pylist()
        else:
            raise EvalInputError(f"{path}: unsupported file type {suffix}")
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error, OSError) as exc:
        raise EvalInputError(f"{path}: cannot read rows: {exc}") from None
    for row in rows:
        meta = row.get("_meta")
        if isinstance(meta, str):
            try:
                row["_meta"] = json.loads(meta)
            except json.JSONDecodeError:
                row["_meta"] = {}
    return rows


def output_files(plan: Plan, out_dir: Path, block_id: str) -> dict[str, Path]:
    prefix = "" if len(plan.blocks) == 1 else f"{block_id}."
    return {s.name: out_dir / f"{prefix}{s.name}.{plan.output.format}" for s in plan.output.splits}


def synthetic_train_rows(plan: Plan, out_dir: Path, block_id: str) -> list[dict]:
    files = output_files(plan, out_dir, block_id)
    path = files.get("train") or next(iter(files.values()))
    if not path.is_file():
        raise EvalInputError(f"no generated data at {path}: run `synthc run` on the spec first")
    return [r for r in read_rows(path) if (r.get("_meta") or {}).get("source") == "synthetic"]


def real_rows(plan: Plan, schema_name: str) -> list[dict]:
    return [dict(r) for s in plan.seeds.values() if s.schema_name == schema_name for r in s.rows]
