"""json_schema: the JSON Schema of what the model writes for a record, every value bounded,
and the worst-case length of its JSON text (which sets max_tokens)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import ir
from ..regexes import width

INT_BOUND = 2**53 - 1
MENTION_GAP_CLASS = '[^"\\\\\\n]'   # no quote, backslash or newline: JSON-safe free text


class SchemaBuilder:
    def __init__(self, schemas: Callable[[str], ir.Schema]):
        self.schemas = schemas

    def value(self, t: ir.Type) -> tuple[dict[str, Any], int]:
        """(JSON Schema, worst-case characters of the JSON text)."""
        match t:
            case ir.StrType(min_len=lo, max_len=hi, pattern=p):
                out: dict[str, Any] = {"type": "string"}
                if p is None:
                    if lo:
                        out["minLength"] = lo
                    out["maxLength"] = ir.DEFAULT_MAX_LEN if hi is None else hi
                    return out, out["maxLength"] + 2
                # a regex often bounds the length by itself; length keywords are added only where
                # they say more (several backends cannot combine them with a pattern)
                out["pattern"] = f"^{p}$"
                wlo, whi = width(p)
                if lo is not None and lo > wlo:
                    out["minLength"] = lo
                if whi is None or (hi is not None and hi < whi):
                    out["maxLength"] = ir.DEFAULT_MAX_LEN if hi is None else hi
                width_hi = out.get("maxLength", whi)
                assert width_hi is not None  # set just above when the pattern's width is unbounded
                return out, width_hi + 2
            case ir.IntType(min=lo, max=hi):
                lo = -INT_BOUND if lo is None else lo
                hi = INT_BOUND if hi is None else hi
                return {"type": "integer", "minimum": lo, "maximum": hi}, max(len(str(lo)), len(str(hi)))
            case ir.FloatType(min=lo, max=hi):
                out = {"type": "number"}
                if lo is not None:
                    out["minimum"] = lo
                if hi is not None:
                    out["maximum"] = hi
                return out, 24
            case ir.BoolType():
                return {"type": "boolean"}, 5
            case ir.DateType():
                return {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"}, 12
            case ir.EnumType(values=v) | ir.LiteralType(values=v):
                return {"enum": list(v)}, max(len(x) for x in v) + 2
            case ir.ListType(item=item, min_items=lo, max_items=hi):
                item_schema, item_len = self.value(item)
                hi = ir.DEFAULT_MAX_ITEMS if hi is None else hi
                out = {"type": "array", "items": item_schema}
                if lo:
                    out["minItems"] = lo
                out["maxItems"] = hi
                return out, 2 + hi * (item_len + 1)
            case ir.RecordType(name=name):
                return self.record(self.schemas(name), exclude=())
        raise AssertionError(t)  # pragma: no cover

    def record(self, schema: ir.Schema, exclude: tuple[str, ...]) -> tuple[dict[str, Any], int]:
        props: dict[str, Any] = {}
        total = 2
        for f in schema.fields:
            if (f.source != "model" and not self.drawn_with_model_fields(f)) or f.name in exclude:
                continue
            if isinstance(f.type, ir.RecordType) and not self.has_model_fields(self.schemas(f.type.name)):
                continue
            sub, length = self.value(f.type)
            if f.optional:
                sub = {"anyOf": [sub, {"type": "null"}]}
                length = max(length, 4)
            props[f.name] = sub
            total += len(f.name) + 4 + length
        return ({"type": "object", "properties": props, "required": list(props),
                 "additionalProperties": False}, total)

    def drawn_with_model_fields(self, f: ir.FieldDef) -> bool:
        """A drawn list of records whose items have fields the model writes: the model writes
        those, one object per drawn item (the runtime fixes the item count to the drawn one)."""
        return (f.source == "sampled" and isinstance(f.type, ir.ListType) and isinstance(f.type.item, ir.RecordType)
                and self.has_model_fields(self.schemas(f.type.item.name)))

    def has_model_fields(self, schema: ir.Schema) -> bool:
        for f in schema.fields:
            if f.source == "model":
                if isinstance(f.type, ir.RecordType):
                    if self.has_model_fields(self.schemas(f.type.name)):
                        return True
                else:
                    return True
        return False
