"""Acceptance: a candidate becomes a record of the dataset, or a rejection, in the driver and
in attempt order (so the result never depends on batching or workers): dedup against
everything kept so far, then noise and provenance."""

from __future__ import annotations

from ..mention_values import path_of, span_entry, value_at
from ..plan.model import Block, Plan
from .dedup import Deduper
from .entries import Candidate, JournalEntry
from .noise import apply_noise
from .seeding import record_id, sub_rng


def accept(plan: Plan, block: Block, candidate: Candidate, deduper: Deduper) -> JournalEntry:
    if not candidate.ok:
        return candidate.as_rejection()
    at, seed, record = candidate.at, candidate.seed, candidate.record
    spans = {k: list(v) for k, v in candidate.spans.items()}
    dup = deduper.duplicate_of(record)
    if dup is not None:
        return JournalEntry(at, ok=False, why=f"dedup: {dup}", tokens=candidate.tokens, seconds=candidate.seconds,
                            labels=candidate.labels or None)
    clean = {d.field: record.get(d.field) for d in block.dedup}
    deduper.add(record)
    schema = plan.schemas[block.schema_name]
    top_spans = {k: v for k, v in spans.items() if "." not in k}
    mentions = {mc.path[0]: candidate.span_fields.get(mc.path[0], mc.values) for mc in block.mentions
                if len(mc.path) == 1}
    numbers = {text: [value_at(record, label) if path_of(label) in mc.decimals else None for label in labels]
               for mc in block.mentions if len(mc.path) == 1 and mc.decimals
               for text, labels in [(mc.path[0], mentions[mc.path[0]])]}
    applied, truth = apply_noise(block.noise, record, schema, top_spans, sub_rng(seed, "noise"), plan.schemas.get,
                                 mentions, numbers)
    spans.update(top_spans)
    meta: dict = {
        "id": record_id(block.id, block.cells[at.cell].key, at.attempt), "source": "synthetic",
        "block": block.id, "cell": block.cells[at.cell].key, "attempt": at.attempt, "seed": seed,
        # a record grown from a row with nothing rewritten was written by no model
        "model": None if block.grow is not None and not block.grow.rewrite else block.model, "noise": applied,
    }
    if spans:
        meta["spans"] = {
            path: [span_entry(m, s, e) for m, (s, e) in zip(candidate.span_fields.get(path, mc.values), spans[path])]
            for mc in block.mentions for path in [".".join(mc.path)]}
    if truth:
        meta["truth"] = truth
    if candidate.judge_score is not None:
        meta["judge"] = candidate.judge_score
    if candidate.trimmed:
        meta["trimmed"] = list(candidate.trimmed)
    meta.update(candidate.meta)
    return JournalEntry(at, ok=True, tokens=candidate.tokens, seconds=candidate.seconds,
                        record={**record, "_meta": meta}, dedup_values=clean, labels=candidate.labels or None)
