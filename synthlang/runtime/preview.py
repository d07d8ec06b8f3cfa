"""`synthc preview`: a few records of each block, made exactly as the run makes them.

The records of a quota cell are its first attempts (the same seeds, prompts and requests as
in the run), checked by every filter and judged; they go through the result cache, so the
full run reuses every request the preview sent. Nothing else is written."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..plan.model import Block, Plan
from .acceptance import accept
from .attempts import Attempts
from .dedup import Deduper
from .entries import PENDING
from .manifest import reason_kind
from .options import RunOptions


@dataclass
class BlockPreview:
    id: str
    records: list[dict] = field(default_factory=list)
    attempts: int = 0
    rejections: Counter = field(default_factory=Counter)   # by kind of reason
    unfilled: list[str] = field(default_factory=list)       # cells whose budget ran out
    requests_sent: int = 0
    requests_reused: int = 0


def spread(block: Block, n: int) -> list[int]:
    """Records to preview per cell: `n` dealt over the cells that hold records, in order, no
    cell given more than it holds."""
    want = [0] * len(block.cells)
    left = min(n, block.count)
    while left > 0:
        for ci, cell in enumerate(block.cells):
            if left and want[ci] < cell.count:
                want[ci] += 1
                left -= 1
    return want


def preview(plan: Plan, options: RunOptions, n: int, blocks: list[str] | None = None,
            on_block: Callable[[BlockPreview], None] | None = None) -> list[BlockPreview]:
    attempts = Attempts(plan, options)
    out = []
    try:
        for block in plan.blocks:
            if blocks and block.id not in blocks:
                continue
            result = _block(plan, block, options, attempts, n)
            out.append(result)
            if on_block is not None:
                on_block(result)
    finally:
        attempts.close()
    return out


def _block(plan: Plan, block: Block, options: RunOptions, attempts: Attempts, n: int) -> BlockPreview:
    result = BlockPreview(block.id)
    deduper = Deduper(block.dedup, plan.seed_rows(block.schema_name))
    for ci, want in enumerate(spread(block, n)):
        if not want:
            continue
        budget = options.max_attempts or max(50, 20 * block.cells[ci].count)
        kept, attempt = 0, 0
        while kept < want and attempt < budget:
            # a few more than needed, as the run's first wave of a cell sends
            numbers = list(range(attempt, min(budget, attempt + max(2, want - kept))))
            for candidate in attempts.run(block.id, [(ci, numbers)])[0]:
                if candidate.why == PENDING:  # the cache served the attempts before it: ask again
                    break
                attempt = candidate.at.attempt + 1
                result.requests_sent += candidate.sent
                result.requests_reused += candidate.reused
                if kept >= want:
                    continue
                entry = accept(plan, block, candidate, deduper)
                result.attempts += 1
                if entry.ok:
                    assert entry.record is not None
                    result.records.append(entry.record)
                    kept += 1
                else:
                    result.rejections[reason_kind(entry.why or "")] += 1
        if kept < want:
            result.unfilled.append(", ".join(f"{k}={v}" for k, v in block.cells[ci].key.items()) or "(all)")
    return result
