"""Arrow types for Parquet output, from the plan: lists stay lists, nested records become
structs, dates become dates (unless noise writes them as text), and `_meta` is a struct, so a
user who loads the files with pandas, polars or `datasets` gets real types, not JSON strings."""

from __future__ import annotations

from datetime import date
from typing import Any

from .. import ir
from ..plan.model import Block, Plan


def _arrow_type(pa, t: ir.Type, plan: Plan):
    match t:
        case ir.StrType() | ir.EnumType() | ir.LiteralType():
            return pa.string()
        case ir.IntType():
            return pa.int64()
        case ir.FloatType():
            return pa.float64()
        case ir.BoolType():
            return pa.bool_()
        case ir.DateType():
            return pa.date32()
        case ir.ListType(item=item):
            return pa.list_(_arrow_type(pa, item, plan))
        case ir.RecordType(name=name):
            return pa.struct([pa.field(f.name, _arrow_type(pa, f.type, plan)) for f in plan.schemas[name].fields])
    raise TypeError(f"no Arrow type for {t!r}")  # pragma: no cover - every IR type is above


def _text_dates(block: Block) -> set[str]:
    """Top-level date fields that `date_format` noise writes as text."""
    return {n.field for n in block.noise if n.rule == "date_format"}


def record_schema(plan: Plan, block: Block):
    """The Arrow schema of the block's rows (the record's fields, then `_meta`)."""
    import pyarrow as pa

    schema = plan.schemas[block.schema_name]
    as_text = _text_dates(block)
    fields = [pa.field(f.name, pa.string() if f.name in as_text else _arrow_type(pa, f.type, plan))
              for f in schema.fields]
    span = pa.struct([("field", pa.string()), ("start", pa.int64()), ("end", pa.int64())])
    meta = [("id", pa.string()), ("source", pa.string()), ("block", pa.string()), ("attempt", pa.int64()),
            ("seed", pa.int64()), ("model", pa.string()), ("plan", pa.string()),
            ("noise", pa.list_(pa.struct([("field", pa.string()), ("rule", pa.string()), ("format", pa.string())]))),
            ("judge", pa.int64()), ("trimmed", pa.list_(pa.string())), ("seed_set", pa.string()), ("row", pa.int64())]
    if block.quota_fields:
        meta.append(("cell", pa.struct([pa.field(q, _arrow_type(pa, schema.require(q).type, plan))
                                        for q in block.quota_fields])))
    if block.mentions:
        meta.append(("spans", pa.map_(pa.string(), pa.list_(span))))
    if block.steps:  # each step's fields and model (null: its condition was false)
        meta.append(("steps", pa.list_(pa.struct([("fields", pa.list_(pa.string())), ("model", pa.string())]))))
    if any(s.candidates for s in block.steps):
        meta.append(("candidates", pa.struct([("field", pa.string()), ("scores", pa.list_(pa.float64())),
                                              ("chosen", pa.int64()), ("rejected", pa.int64())])))
    if block.grow is not None:  # the real row a record grew from, and how
        meta.append(("from", pa.struct([("seeds", pa.string()), ("row", pa.int64()), ("how", pa.string())])))
    noised = sorted({n.field for n in block.noise if n.rule != "drop"})
    if noised:  # the normalised values of fields whose surface form noise changed
        meta.append(("truth", pa.struct([pa.field(n, _arrow_type(pa, schema.require(n).type, plan)) for n in noised])))
    return pa.schema(fields + [pa.field("_meta", pa.struct(meta))])


def to_arrow_row(plan: Plan, block: Block, row: dict) -> dict:
    """The row with ISO date text turned into dates where the Arrow type is a date."""
    schema = plan.schemas[block.schema_name]
    as_text = _text_dates(block)
    out = {f.name: (row.get(f.name) if f.name in as_text else _value(f.type, row.get(f.name), plan))
           for f in schema.fields}
    meta = dict(row.get("_meta") or {})
    if "spans" in meta:
        meta["spans"] = list(meta["spans"].items())
    if "truth" in meta:
        meta["truth"] = {k: _value(schema.require(k).type, v, plan) for k, v in meta["truth"].items()}
    out["_meta"] = meta
    return out


def _value(t: ir.Type, value: Any, plan: Plan) -> Any:
    if value is None:
        return None
    match t:
        case ir.DateType():
            return date.fromisoformat(value) if isinstance(value, str) else value
        case ir.ListType(item=item):
            return [_value(item, v, plan) for v in value]
        case ir.RecordType(name=name):
            return {f.name: _value(f.type, value.get(f.name), plan) for f in plan.schemas[name].fields}
    return value
