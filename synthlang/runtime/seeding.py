"""Per-record seeds and ids: derived from what determines the record and nothing else.

A record's seed depends on the dataset's seed, its block's name, its quota cell's values (not
the cell's position in the table) and its attempt number. Editing a description, another
block, a check or the output, reordering declarations or adding a quota value leaves every
other record's seed, and so its engine request, as it was (docs/runtime.md, "Incremental runs")."""

from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Any

_PLAIN = re.compile(r"[A-Za-z0-9_]+")


def canonical(value: Any) -> str:
    """One JSON text per value: sorted keys, no spaces, non-ASCII kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_seed(dataset_seed: int, block_id: str, cell_key: dict[str, Any], attempt: int) -> int:
    text = f"{dataset_seed}|{block_id}|{canonical(cell_key)}|{attempt}"
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def sub_rng(seed: int, purpose: str) -> random.Random:
    """An independent stream for one purpose (sampling, examples, noise, ...) of a record."""
    digest = hashlib.sha256(f"{seed}|{purpose}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def cell_tag(cell_key: dict[str, Any]) -> str:
    """A quota cell in a record id: its values joined by dots when each is a plain word
    (`billing.chat`), else a short digest of them; empty for a block without quotas."""
    if not cell_key:
        return ""
    words = [str(cell_key[k]) for k in sorted(cell_key)]
    if all(_PLAIN.fullmatch(w) for w in words):
        return ".".join(words)
    return hashlib.sha256(canonical(cell_key).encode()).hexdigest()[:8]


def record_id(block_id: str, cell_key: dict[str, Any], attempt: int) -> str:
    tag = cell_tag(cell_key)
    return f"{block_id}-{tag}-{attempt}" if tag else f"{block_id}-{attempt}"
