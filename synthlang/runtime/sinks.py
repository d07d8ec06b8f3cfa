"""Writing the dataset: splits with exact sizes and a stable split per record, real rows mixed
into train, JSONL, Parquet or CSV, each file written to a temporary name and moved into place atomically."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

from .. import ir
from ..files import open_new, replace_into_place
from ..plan.layout import mix_rows, output_files, split_sizes, train_index
from ..plan.model import Plan

JSON_LINES = ("jsonl", "chat", "preference")


def fine_tuning_row(output: ir.Output, row: dict) -> dict:
    """A record in the shape a fine-tuning trainer reads (TRL: `messages` for SFT; `prompt`,
    `chosen`, `rejected` for DPO), its other fields and `_meta` kept beside.

    `_meta` is JSON text there, as in CSV. Its keys differ from record to record (a value cut
    back, a real row's seed set), and `datasets.load_dataset("json", ...)` types every split
    by the first one: a key that only a test record has fails the whole load. One text
    column loads the same in every split; `json.loads` gives the provenance back."""
    if output.format == "chat":
        (field,) = output.format_fields
        rest = {k: v for k, v in row.items() if k != field}
        return _meta_as_text({**rest, "messages": [{"role": m.get("role"), "content": m.get("content")}
                                                   for m in row.get(field) or [] if isinstance(m, dict)]})
    if output.format == "preference":
        prompt, chosen, rejected = output.format_fields
        rest = {k: v for k, v in row.items() if k not in output.format_fields}
        return _meta_as_text({**rest, "prompt": row.get(prompt), "chosen": row.get(chosen),
                              "rejected": row.get(rejected)})
    return row


def _meta_as_text(row: dict) -> dict:
    if "_meta" in row:
        row["_meta"] = json.dumps(row["_meta"], ensure_ascii=False, separators=(",", ":"))
    return row


class SplitWriter:
    """One open file per split; rows are streamed, never held. `to_row` turns a record into
    what the format stores (Parquet: typed by the plan, see arrow_types)."""

    def __init__(self, final: Path, fmt: str, arrow_schema=None, to_row=None):
        self.final, self.fmt = final, fmt
        self.tmp = final.with_name(f".{final.name}.tmp")
        self.count = 0
        if fmt in JSON_LINES:
            self._fh = open_new(self.tmp)
        elif fmt == "csv":
            self._fh = open_new(self.tmp, newline="")
            self._csv: csv.DictWriter | None = None
        else:
            import pyarrow.parquet as pq

            self._batch: list[dict] = []
            self._schema, self._to_row = arrow_schema, to_row
            self._fh = open_new(self.tmp, binary=True)  # no-follow; pyarrow writes to the handle
            self._pq = pq.ParquetWriter(self._fh, self._schema)

    def write(self, row: dict) -> None:
        self.count += 1
        if self.fmt in JSON_LINES:
            self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        elif self.fmt == "csv":
            # CSV has no nested values: lists, records and _meta are JSON text in their cells
            flat = {k: (json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v)
                    for k, v in row.items()}
            if self._csv is None:
                self._csv = csv.DictWriter(self._fh, fieldnames=list(flat))
                self._csv.writeheader()
            self._csv.writerow(flat)
        else:
            self._batch.append(self._to_row(row))
            if len(self._batch) >= 2048:
                self._flush_parquet()

    def _flush_parquet(self) -> None:
        import pyarrow as pa

        if self._batch:
            self._pq.write_table(pa.Table.from_pylist(self._batch, schema=self._schema))
            self._batch = []

    def close(self) -> Path:
        if self.fmt == "parquet":
            self._flush_parquet()
            self._pq.close()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        replace_into_place(self.tmp, self.final)
        return self.final


def split_of_each(dataset_seed: int, block_id: str, ids: list[str], sizes: list[int]) -> bytearray:
    """The split of each record (by position), with exactly `sizes` records per split.

    Each record gets a rank from its own id, and the splits take the ranks in order. A record
    keeps its split when others are added (a raised `count` moves only records whose rank
    falls between the old and the new cut point), so a test split never swallows training
    records of an earlier run."""
    ranks = [hashlib.sha256(f"{dataset_seed}|split|{block_id}|{i}".encode()).digest()[:8] for i in ids]
    order = sorted(range(len(ids)), key=lambda k: (ranks[k], k))
    out = bytearray(len(ids))
    pos = 0
    for split, size in enumerate(sizes):
        for k in order[pos:pos + size]:
            out[k] = split
        pos += size
    return out


def write_block(plan: Plan, block_id: str, records: Callable[[], Iterable[dict]], folder: Path) -> dict[str, dict]:
    """Stream a block's accepted records into split files. `records` gives them in acceptance
    order, each time it is called (twice: their ids, then the rows). Returns {split: {"path",
    "rows", ...}}."""
    block = plan.block(block_id)
    out = plan.output
    seed = plan.dataset.seed
    ids = [r["_meta"]["id"] for r in records()]
    splits = split_of_each(seed, block_id, ids, split_sizes(out, len(ids)))
    arrow_schema = to_row = None
    if out.format == "parquet":
        from .arrow_types import record_schema, to_arrow_row

        arrow_schema = record_schema(plan, block)
        to_row = partial(to_arrow_row, plan, block)
    files = output_files(plan, folder, block_id)
    writers = [SplitWriter(files[s.name], out.format, arrow_schema, to_row) for s in out.splits]

    real_rows: list[dict] = []
    train = train_index(out)
    if out.mix is not None and train is not None:
        seeds = plan.seeds[out.mix.seeds]
        if seeds.schema_name == block.schema_name:
            need = mix_rows(out, len(ids))
            picked = random.Random(f"{seed}|mix|{block_id}").sample(range(len(seeds.rows)), need)
            real_rows = [{**_with_derived(block, seeds.rows[i]),
                          "_meta": {"source": "real", "seed_set": seeds.name, "row": i + 1}}
                         for i in sorted(picked)]

    rng = random.Random(f"{seed}|interleave|{block_id}")
    train_left = splits.count(train) if train is not None else 0
    real_left = len(real_rows)
    real_iter: Iterator[dict] = iter(real_rows)
    for record, i in zip(records(), splits):
        if i == train:
            train_left -= 1
            # interleave real rows in proportion as train fills
            while real_left and rng.random() < real_left / (real_left + train_left + 1):
                writers[i].write(fine_tuning_row(out, next(real_iter)))
                real_left -= 1
        writers[i].write(fine_tuning_row(out, record))
    if train is not None:
        for row in real_iter:
            writers[train].write(fine_tuning_row(out, row))
    result = {}
    for split, w in zip(out.splits, writers):
        path = w.close()
        result[split.name] = {"path": path.name, "rows": w.count}
    if real_rows:
        result["train"]["real_rows"] = len(real_rows)
    return result


def _with_derived(block, row: dict) -> dict:
    """Seed rows may omit derived fields; compute them as for generated records."""
    from ..expr import EvalError, Unknown, evaluate

    out = dict(row)
    for d in block.derived:
        if len(d.path) == 1 and out.get(d.path[0]) is None:
            try:
                out[d.path[0]] = evaluate(d.expr, out)
            except (EvalError, Unknown, TypeError, ValueError):
                out[d.path[0]] = None
    return out
