"""Per-record seeds: derived from the plan hash, the block, the cell and the attempt number,
so any record can be regenerated on its own and reruns give the same data."""

from __future__ import annotations

import hashlib
import random


def record_seed(plan_hash: str, block_id: str, cell_index: int, attempt: int) -> int:
    digest = hashlib.sha256(f"{plan_hash}|{block_id}|{cell_index}|{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def sub_rng(seed: int, purpose: str) -> random.Random:
    """An independent stream for one purpose (sampling, examples, noise, ...) of a record."""
    digest = hashlib.sha256(f"{seed}|{purpose}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def record_id(block_id: str, cell_index: int, attempt: int) -> str:
    return f"{block_id}-{cell_index}-{attempt}"
