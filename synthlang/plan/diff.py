"""diff_plans: what a change to a spec does to its dataset (`synthc diff`).

Compares two plans, the way `terraform plan` shows a change before it is applied: per block
and quota cell the record counts before and after; fields added, removed or changed (type,
bounds, optional, source); enum values; prompts (as a text diff); samplers, examples, checks,
judge, noise, dedup, allowed filters, models, the dataset's seed and the output. A change that
breaks what consumers of the data rely on (a field removed or retyped, a label value removed,
a split removed) is flagged."""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import ir
from ..nodes import Node
from .model import Block, Plan, SampledField


@dataclass
class Change:
    where: str                   # "block Ticket", "schema Ticket", "enum Intent", "output", ...
    what: str                    # the change in words
    before: Any = None
    after: Any = None
    breaking: str | None = None  # why it breaks what the data's consumers rely on
    text_diff: list[str] = field(default_factory=list)


@dataclass
class PlanDiff:
    before: str                  # the plans' hashes
    after: str
    changes: list[Change] = field(default_factory=list)

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    def to_json(self) -> str:
        return json.dumps({"before": self.before, "after": self.after, "changed": bool(self.changes),
                           "breaking": len(self.breaking), "changes": [asdict(c) for c in self.changes]},
                          indent=2, ensure_ascii=False, default=str) + "\n"


def _field_text(f: ir.FieldDef) -> str:
    text = ir.type_text(f.type) + ("?" if f.optional else "")
    if f.source == "sampled" and f.sampler is not None:
        text += f" ~ {f.sampler.method}"
    elif f.source == "derived":
        text += " (derived)"
    else:
        text += " (model-written" + (f", mentions {', '.join(f.mentions)}" if f.mentions else "") + ")"
    return text


def _sampled_by_path(fields: tuple[SampledField, ...], prefix: str = "") -> dict[str, Any]:
    """Each sampled field's plan by its path; a drawn list's own (its item count) and its items'
    (`items[].qty`) apart, so a change names the field that changed."""
    out: dict[str, Any] = {}
    for sf in fields:
        path = prefix + ".".join(sf.path)
        out[path] = _dump(sf.copy(items=()))
        out.update(_sampled_by_path(sf.items, path + "[]."))
    return out


def _dump(node: Any) -> Any:
    return node.dump(mode="json") if isinstance(node, Node) else node


def diff_plans(old: Plan, new: Plan) -> PlanDiff:
    d = PlanDiff(old.hash, new.hash)
    add = d.changes.append
    if old.dataset.seed != new.dataset.seed:
        add(Change("dataset", "seed changed: every record is drawn anew", old.dataset.seed, new.dataset.seed))
    for key in ("name", "version", "description"):
        if getattr(old.dataset, key) != getattr(new.dataset, key):
            add(Change("dataset", f"{key} changed", getattr(old.dataset, key), getattr(new.dataset, key)))
    _named(d, "model", old.models, new.models)
    for name in sorted(old.enums.keys() | new.enums.keys()):
        a, b = old.enums.get(name), new.enums.get(name)
        if a is None or b is None:
            add(Change(f"enum {name}", "added" if a is None else "removed", a and list(a.values),
                       b and list(b.values)))
            continue
        gone = [v for v in a.values if v not in b.values]
        new_values = [v for v in b.values if v not in a.values]
        if gone:
            add(Change(f"enum {name}", "values removed: " + ", ".join(gone), list(a.values), list(b.values),
                       breaking="a label value the data had is gone"))
        if new_values:
            add(Change(f"enum {name}", "values added: " + ", ".join(new_values), list(a.values), list(b.values)))
    for name in sorted(old.schemas.keys() | new.schemas.keys()):
        _schema(d, name, old.schemas.get(name), new.schemas.get(name))
    old_blocks, new_blocks = {b.id: b for b in old.blocks}, {b.id: b for b in new.blocks}
    for bid in [*old_blocks, *(b for b in new_blocks if b not in old_blocks)]:
        _block(d, bid, old_blocks.get(bid), new_blocks.get(bid))
    _output(d, old.output, new.output)
    _named(d, "seeds", {k: _seed_set(v) for k, v in old.seeds.items()}, {k: _seed_set(v) for k, v in new.seeds.items()})
    for name in sorted(old.seeds.keys() & new.seeds.keys()):
        was, now = old.seeds[name], new.seeds[name]
        if was.inline and now.inline and was.rows != now.rows and len(was.rows) == len(now.rows) \
                or not (was.inline and now.inline) and was.sha256 != now.sha256 and _seed_set(was) == _seed_set(now):
            add(Change(f"seeds {name}", "rows changed (as many as before)"))
    if [_dump(e) for e in old.evaluate] != [_dump(e) for e in new.evaluate]:
        add(Change("evaluate", "changed", [_dump(e) for e in old.evaluate], [_dump(e) for e in new.evaluate]))
    return d


def _seed_set(s: ir.SeedSet) -> dict[str, Any]:
    return {"path": s.path, "schema": s.schema_name, "rows": len(s.rows) if s.inline else s.row_count}


def _named(d: PlanDiff, kind: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    for name in sorted(old.keys() | new.keys()):
        a, b = _dump(old.get(name)), _dump(new.get(name))
        if a == b:
            continue
        if a is None or b is None:
            d.changes.append(Change(f"{kind} {name}", "added" if a is None else "removed", a, b))
            continue
        keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        d.changes.append(Change(f"{kind} {name}", ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys),
                                {k: a.get(k) for k in keys}, {k: b.get(k) for k in keys}))


def _schema(d: PlanDiff, name: str, old: ir.Schema | None, new: ir.Schema | None) -> None:
    where = f"schema {name}"
    if old is None or new is None:
        d.changes.append(Change(where, "added" if old is None else "removed",
                                breaking=None if old is None else "a record type the data had is gone"))
        return
    a, b = {f.name: f for f in old.fields}, {f.name: f for f in new.fields}
    for fname in [*a, *(f for f in b if f not in a)]:
        fa, fb = a.get(fname), b.get(fname)
        if fa is None:
            assert fb is not None
            d.changes.append(Change(where, f"field {fname} added: {_field_text(fb)}", None, _field_text(fb)))
        elif fb is None:
            d.changes.append(Change(where, f"field {fname} removed (was {_field_text(fa)})", _field_text(fa), None,
                                    breaking="a field the data had is gone"))
        elif _dump(fa) != _dump(fb):
            ta, tb = _field_text(fa), _field_text(fb)
            retyped = fa.type.kind != fb.type.kind or ir.type_name(fa.type) != ir.type_name(fb.type)
            if ta != tb:
                what = f"field {fname}: {ta} -> {tb}"
            elif _dump(fa.type) != _dump(fb.type):
                what = f"field {fname}: the values of its type {ir.type_name(fb.type)} changed"
            else:
                what = f"field {fname}: its {'expression' if fb.source == 'derived' else 'sampler'} changed"
            d.changes.append(Change(where, what, _dump(fa), _dump(fb),
                                    breaking="the field's type changed" if retyped else
                                    "the field may now be empty" if fb.optional and not fa.optional else None))


def _block(d: PlanDiff, bid: str, old: Block | None, new: Block | None) -> None:
    where = f"block {bid}"
    add = d.changes.append
    if old is None or new is None:
        block = new or old
        assert block is not None
        add(Change(where, f"{'added' if old is None else 'removed'}: {block.count} records",
                   None if old is None else old.count, None if new is None else new.count,
                   breaking=None if old is None else "its records are gone"))
        return
    cells_a = {json.dumps(c.key, sort_keys=True): c for c in old.cells}
    cells_b = {json.dumps(c.key, sort_keys=True): c for c in new.cells}
    lines = []
    for key in [*cells_a, *(k for k in cells_b if k not in cells_a)]:
        ca, cb = cells_a.get(key), cells_b.get(key)
        cell = ca or cb
        assert cell is not None
        label = _cell(cell.key)
        before, after = (ca.count if ca else 0), (cb.count if cb else 0)
        if before != after:
            lines.append(f"{label}: {before} -> {after}")
    if old.count != new.count or lines:
        add(Change(where, f"records {old.count} -> {new.count}" + ("; " + "; ".join(lines) if lines else ""),
                   {_cell(c.key): c.count for c in old.cells}, {_cell(c.key): c.count for c in new.cells}))
    if old.prompt != new.prompt:
        add(Change(where, "prompt changed", text_diff=list(difflib.unified_diff(
            old.prompt.splitlines(), new.prompt.splitlines(), "before", "after", lineterm="", n=1))))
    if old.model != new.model:
        add(Change(where, f"model {old.model} -> {new.model}", old.model, new.model))
    for key, label in (("sampled", "samplers"), ("examples", "examples"), ("checks", "checks"), ("judge", "judge"),
                       ("noise", "noise"), ("dedup", "dedup"), ("allow", "allowed filters"),
                       ("derived", "derived fields"), ("mentions", "mentions"),
                       ("grow", "growth from real rows (from, rewrite, resample)"), ("labels", "label check")):
        a, b = getattr(old, key), getattr(new, key)
        da = [_dump(x) for x in a] if isinstance(a, tuple) else _dump(a)
        db = [_dump(x) for x in b] if isinstance(b, tuple) else _dump(b)
        if da == db:
            continue
        if key == "sampled":
            pa, pb = _sampled_by_path(old.sampled), _sampled_by_path(new.sampled)
            names = [f"+{n}" for n in pb if n not in pa] + [f"-{n}" for n in pa if n not in pb] + \
                [f"~{n}" for n in pa if n in pb and pa[n] != pb[n]]
            add(Change(where, "sampled fields: " + ", ".join(names), da, db))
        elif key == "checks":
            from ..expr import to_source

            sa, sb = [to_source(c) for c in old.checks], [to_source(c) for c in new.checks]
            what = "; ".join([*(f"+ check {c}" for c in sb if c not in sa),
                              *(f"- check {c}" for c in sa if c not in sb)])
            add(Change(where, what or "checks reordered", sa, sb))
        else:
            add(Change(where, f"{label} changed", da, db))
    if old.json_schema != new.json_schema and not any(c.where.startswith("schema ") for c in d.changes):
        add(Change(where, "the model-written part's constraint changed"))


def _cell(key: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items()) or "(all)"


def _output(d: PlanDiff, old: ir.Output, new: ir.Output) -> None:
    if old.path != new.path:
        d.changes.append(Change("output", f"folder {old.path} -> {new.path}", old.path, new.path))
    if old.format != new.format:
        d.changes.append(Change("output", f"format {old.format} -> {new.format}", old.format, new.format,
                                breaking="readers of the old format cannot read the files"))
    sa, sb = {s.name: s.share for s in old.splits}, {s.name: s.share for s in new.splits}
    if sa != sb:
        gone = [s for s in sa if s not in sb]
        d.changes.append(Change("output", "splits " + ", ".join(f"{k} {v:g}%" for k, v in sa.items()) + " -> "
                                + ", ".join(f"{k} {v:g}%" for k, v in sb.items()), sa, sb,
                                breaking=f"split {', '.join(gone)} is gone" if gone else None))
    if _dump(old.mix) != _dump(new.mix):
        d.changes.append(Change("output", "mix changed", _dump(old.mix), _dump(new.mix)))


def render_text(diff: PlanDiff) -> str:
    if not diff.changes:
        return "no difference: the same dataset\n"
    out = []
    where = None
    for c in diff.changes:
        if c.where != where:
            out.append(f"~ {c.where}")
            where = c.where
        out.append(f"    {c.what}" + (f"  [breaking: {c.breaking}]" if c.breaking else ""))
        out += [f"      {line}" for line in c.text_diff]
    n = len(diff.breaking)
    out.append("")
    out.append(f"{len(diff.changes)} changes" + (f", {n} breaking" if n else ""))
    return "\n".join(out) + "\n"
