"""manifest.json: what a run made and what it cost, per block and per quota cell."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..files import write_json_atomic
from ..plan.model import Plan
from .entries import JournalEntry


@dataclass
class BlockState:
    """A block's progress, rebuilt from the journal on resume."""

    accepted: list[int]                      # per cell
    next_attempt: list[int]
    attempts: list[int]
    rejections: Counter = field(default_factory=Counter)
    cell_rejections: list[Counter] = field(default_factory=list)
    tokens: int = 0
    engine_seconds: float = 0.0
    trimmed: int = 0                         # accepted records with a value cut back to a sentence or word end
    step_rejections: Counter = field(default_factory=Counter)   # records written in steps: by rejecting step
    # the label check: label field -> (intended, read) -> records, over every record it read
    label_reads: dict[str, Counter] = field(default_factory=dict)
    origins: Counter = field(default_factory=Counter)   # accepted records by how they grew (`generated` otherwise)

    @classmethod
    def empty(cls, cells: int) -> BlockState:
        return cls([0] * cells, [0] * cells, [0] * cells, cell_rejections=[Counter() for _ in range(cells)])

    def count(self, e: JournalEntry) -> None:
        """Add one journaled attempt."""
        ci = e.at.cell
        self.attempts[ci] += 1
        self.next_attempt[ci] = max(self.next_attempt[ci], e.at.attempt + 1)
        self.tokens += e.tokens or 0
        self.engine_seconds += e.seconds or 0.0
        for name, reading in (e.labels or {}).items():
            read = reading.get("read") or reading.get("model") or "?"
            self.label_reads.setdefault(name, Counter())[(reading["want"], read)] += 1
        if e.ok:
            self.accepted[ci] += 1
            meta = e.record.get("_meta", {}) if e.record else {}
            self.trimmed += bool(meta.get("trimmed"))
            grown = meta.get("from")
            self.origins[grown.get("how", "generated") if isinstance(grown, dict) else "generated"] += 1
        else:
            why = e.why or ""
            self.rejections[why] += 1
            self.cell_rejections[ci][why] += 1
            if e.step is not None:
                self.step_rejections[e.step] += 1


@dataclass
class RunTimes:
    wall: float
    engine: float
    startup: float


def reason_kind(why: str) -> str:
    """The kind of a rejection: its filter or stage ("junk", "check", "dedup", "invalid_output")."""
    return why.split(":", 1)[0].split(" (", 1)[0].strip() or "unknown"


def rejection_rates(rejections: Counter, attempts: int) -> dict[str, float]:
    """Share of attempts rejected, per kind of reason, largest first."""
    kinds: Counter = Counter()
    for why, n in rejections.items():
        kinds[reason_kind(why)] += n
    return {k: round(n / attempts, 4) for k, n in kinds.most_common()} if attempts else {}


def write_manifest(plan: Plan, out_dir: Path, states: dict[str, BlockState], splits: dict[str, dict],
                   new_records: dict[str, int], times: RunTimes, complete: bool, resumed: int,
                   files: list[Path], requests: dict[str, list[int]], models: dict[str, dict],
                   restarted: bool) -> dict:
    blocks = {}
    for block in plan.blocks:
        st = states[block.id]
        blocks[block.id] = {
            "schema": block.schema_name, "count": block.count, "accepted": sum(st.accepted),
            "attempts": sum(st.attempts),
            "acceptance_rate": round(sum(st.accepted) / sum(st.attempts), 4) if sum(st.attempts) else None,
            "rejections": dict(st.rejections.most_common()),
            "rejection_rates": rejection_rates(st.rejections, sum(st.attempts)),
            "trimmed": st.trimmed, "tokens": st.tokens,
            "requests_sent": requests[block.id][0], "requests_reused": requests[block.id][1],
            "engine_seconds": round(st.engine_seconds, 3),
            "cells": [{"key": c.key, "count": c.count, "accepted": st.accepted[i], "attempts": st.attempts[i],
                       "rejections": dict(st.cell_rejections[i].most_common())}
                      for i, c in enumerate(block.cells)],
            "splits": splits.get(block.id, {}),
        }
        blocks[block.id]["origins"] = dict(st.origins.most_common())
        if block.labels:   # intended label -> how the label check read it -> records
            blocks[block.id]["label_check"] = {
                name: {want: {read: n for (w, read), n in sorted(reads.items()) if w == want}
                       for want in sorted({w for w, _ in reads})}
                for name, reads in sorted(st.label_reads.items())}
        if block.steps:   # where records written in steps were given up: before later steps were paid for
            by_step = {f"{k} ({', '.join(s.fields)})": st.step_rejections.get(k, 0)
                       for k, s in enumerate(block.steps, 1)}
            by_step["finished record"] = sum(st.rejections.values()) - sum(st.step_rejections.values())
            blocks[block.id]["rejections_by_step"] = by_step
    made_now = sum(new_records.values())
    wall = times.wall
    manifest = {
        "kind": "manifest", "complete": complete, "plan": plan.hash, "dataset": plan.dataset.name,
        "format": plan.output.format, "files": [f.name for f in files],
        "synthlang_version": plan.synthlang_version, "models": models,
        "journal_entries_replayed": resumed, "journal_restarted": restarted, "wall_seconds": round(wall, 3),
        "engine_seconds_this_run": round(times.engine, 3),
        "records_this_run": made_now,
        "records_per_second": round(made_now / wall, 4) if wall > 0 else None,
        "startup_seconds": round(times.startup, 3),
        "outside_engine_share": round(1 - times.engine / wall, 4) if wall > 0 else None,
        "outside_engine_share_after_startup": (
            round(1 - times.engine / (wall - times.startup), 4) if wall - times.startup > 0 else None),
        "blocks": blocks,
    }
    write_json_atomic(out_dir / "manifest.json", manifest)
    return manifest
