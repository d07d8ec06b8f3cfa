"""Records grown from real rows (`generate T from SEEDS`): which row an attempt starts from,
the values it takes from the row, and mention replacement in the texts it copies.

A cell's rows are taken in an order fixed by the dataset's seed, the block and the cell, one
row per attempt in turn, so the first attempts of a cell use as many different rows as it has.
Every field is copied from the row, except the quota fields (the cell's values), the derived
ones (computed again), the re-sampled ones (drawn again) and the rewritten ones (the model
writes them). A copied text that mentions fields gets, in place of each occurrence of a row's
mentioned value, the record's value (in lower or upper case where the row writes its value so,
the record's value with it); its spans are those of the values it now holds."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any

from .. import ir
from ..plan.model import Block, Plan
from ..values import ValueError_, check_value, match_key
from .seeding import canonical

# what a grown record is, by what changed from its row (in the manifest and _meta.from)
REWRITTEN, RESAMPLED, COPIED = "rewritten", "resampled", "copied"


@dataclass(frozen=True)
class Grown:
    """How one attempt grew from its row."""

    seeds: str
    row: int                                   # the row's index in its seed set
    how: str                                   # REWRITTEN, RESAMPLED or COPIED
    spans: dict[str, list[tuple[int, int]]]    # copied texts with mentions: the values' spans
    span_fields: dict[str, tuple[str, ...]]    # ... and the field each span is of

    def meta(self) -> dict[str, Any]:
        return {"seeds": self.seeds, "row": self.row, "how": self.how}


def cell_rows(plan: Plan, block: Block, ci: int) -> list[int]:
    """The indices of the rows a cell's attempts start from, in the order they are used."""
    grow = block.grow
    assert grow is not None
    key = block.cells[ci].key
    want = match_key([key[m] for m in grow.match])
    rows = [i for i, r in enumerate(plan.seeds[grow.seeds].rows) if match_key([r.get(m) for m in grow.match]) == want]
    salt = f"{plan.dataset.seed}/{block.id}/{canonical(key)}/"
    return sorted(rows, key=lambda i: hashlib.sha256(f"{salt}{i}".encode()).digest())


def grow_values(plan: Plan, block: Block, ci: int, attempt: int, rows: list[int], drawn: dict[str, Any]
                ) -> tuple[dict[str, Any], Grown] | str:
    """The attempt's values before the model writes (its row's, with the drawn ones where the
    block re-samples), or the reason it has none."""
    grow = block.grow
    assert grow is not None
    if not rows:
        return "grow: no row of the cell"
    index = rows[attempt % len(rows)]
    row = plan.seeds[grow.seeds].rows[index]
    schema = plan.schemas[block.schema_name]
    values = dict(drawn)
    for f in schema.fields:
        if f.source == "derived" or f.name in grow.rewrite or f.name in grow.resample or f.name in block.quota_fields:
            continue
        if row.get(f.name) is not None or f.source == "model":
            values[f.name] = copy.deepcopy(row.get(f.name))
    spans: dict[str, list[tuple[int, int]]] = {}
    fields: dict[str, tuple[str, ...]] = {}
    changed = False
    for mc in block.mentions:
        if len(mc.path) != 1 or mc.path[0] in grow.rewrite:
            continue
        name = mc.path[0]
        text = row.get(name)
        if not isinstance(text, str):
            continue
        old = {m: row.get(m) for m in mc.values}
        for m in mc.values:   # a new value takes the case the row writes its value in
            if m in grow.resample and isinstance(values.get(m), str) and old.get(m) is not None:
                cased = in_case_of(str(old[m]), values[m])
                try:   # only where the field's own constraint allows that case
                    check_value(schema.require(m).type, cased, plan.schemas.get, m)
                    values[m] = cased
                except ValueError_:
                    pass
        replaced = replace_mentions(text, mc.values, old, values)
        if replaced is None:
            return f"mentions_missing: {name}"
        new_text, found = replaced
        if new_text != text:
            changed = True
        t = schema.require(name).type
        if isinstance(t, ir.StrType) and not ((t.min_len or 0) <= len(new_text) <= (t.max_len or len(new_text))):
            return "mentions_do_not_fit"
        values[name] = new_text
        spans[name] = [(s, e) for s, e, _ in found]
        fields[name] = tuple(m for _, _, m in found)
    resampled = any(values.get(n) != row.get(n) for n in grow.resample)
    how = REWRITTEN if grow.rewrite else RESAMPLED if (changed or resampled) else COPIED
    return values, Grown(seeds=grow.seeds, row=index, how=how, spans=spans, span_fields=fields)


def replace_mentions(text: str, mentioned: tuple[str, ...], old: dict[str, Any], new: dict[str, Any]
                     ) -> tuple[str, list[tuple[int, int, str]]] | None:
    """`text` with every occurrence of each mentioned field's old value replaced by its new
    value, and the (start, end, field) of each value in the new text, in text order. An
    occurrence is a whole word where there is one (not inside a longer word or number), else
    any; a longer value wins over one inside it; where two fields hold the same old value, the
    first named takes it. None when a field with a value has no occurrence."""
    taken: list[tuple[int, int, str]] = []
    by_length = sorted((m for m in mentioned if old.get(m) not in (None, "")),
                       key=lambda m: (-len(str(old[m])), mentioned.index(m)))
    for m in by_length:
        value = str(old[m])
        hits = _occurrences(text, value)
        free = [(s, e) for s, e in hits if not any(s < te and ts < e for ts, te, _ in taken)]
        if not free:
            return None
        taken += [(s, e, m) for s, e in free]
    taken.sort()
    out: list[str] = []
    spans: list[tuple[int, int, str]] = []
    pos = 0
    length = 0
    for s, e, m in taken:
        out.append(text[pos:s])
        length += s - pos
        value = str(new.get(m)) if new.get(m) is not None else text[s:e]
        spans.append((length, length + len(value), m))
        out.append(value)
        length += len(value)
        pos = e
    out.append(text[pos:])
    return "".join(out), spans


def in_case_of(model: str, value: str) -> str:
    """`value` in lower or upper case where `model` is written all in that case (a real row
    written in capitals gets capitals), else as it is."""
    if any(c.isalpha() for c in model):
        if model == model.lower():
            return value.lower()
        if model == model.upper():
            return value.upper()
    return value


def _occurrences(text: str, value: str) -> list[tuple[int, int]]:
    hits = []
    at = text.find(value)
    while at >= 0:
        hits.append((at, at + len(value)))
        at = text.find(value, at + len(value))
    whole = [(s, e) for s, e in hits
             if (s == 0 or not text[s - 1].isalnum()) and (e == len(text) or not text[e].isalnum())]
    return whole or hits
