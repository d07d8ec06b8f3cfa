"""Deduplication against every kept record and every seed row: exact (by hash) or near
(MinHash over character shingles with an LSH index, from datasketch)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from .. import ir

NUM_PERM = 64
SHINGLE = 5


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


def _shingles(text: str) -> set[bytes]:
    t = _norm(text)
    if len(t) <= SHINGLE:
        return {t.encode("utf-8")}
    return {t[i:i + SHINGLE].encode("utf-8") for i in range(len(t) - SHINGLE + 1)}


class FieldDeduper:
    def __init__(self, rule: ir.Dedup):
        self.rule = rule
        self.count = 0
        if rule.mode == "exact":
            self.seen: set[bytes] = set()
        else:
            from datasketch import MinHashLSH

            try:
                self.lsh = MinHashLSH(threshold=rule.threshold, num_perm=NUM_PERM)
            except ValueError:
                # past about 0.96 datasketch's own choice leaves one band; 8 bands of 8 rows still
                # make a pair that similar a candidate (1 - (1 - 0.97**8)**8 > 0.9999), and every
                # candidate is checked against the threshold exactly
                self.lsh = MinHashLSH(threshold=rule.threshold, num_perm=NUM_PERM, params=(8, NUM_PERM // 8))
            self.hashes: dict[str, Any] = {}

    def _minhash(self, text: str):
        from datasketch import MinHash
        m = MinHash(num_perm=NUM_PERM, seed=1)
        m.update_batch(list(_shingles(text)))
        return m

    def _key(self, value: Any) -> bytes:
        return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).digest()

    def is_duplicate(self, value: Any) -> bool:
        if value is None:
            return False
        if self.rule.mode == "exact":
            return self._key(value) in self.seen
        m = self._minhash(str(value))
        for cand in self.lsh.query(m):
            if self.hashes[cand].jaccard(m) >= self.rule.threshold:
                return True
        return False

    def add(self, value: Any) -> None:
        if value is None:
            return
        self.count += 1
        if self.rule.mode == "exact":
            self.seen.add(self._key(value))
        else:
            key = str(self.count)
            m = self._minhash(str(value))
            self.lsh.insert(key, m)
            self.hashes[key] = m


class Deduper:
    """All dedup rules of a block; seeds are added first so that no seed leaks out."""

    def __init__(self, rules: tuple[ir.Dedup, ...], seed_rows: list[dict]):
        self.fields = [FieldDeduper(r) for r in rules]
        for row in seed_rows:
            self.add(row)

    def duplicate_of(self, record: dict) -> str | None:
        for fd in self.fields:
            if fd.is_duplicate(record.get(fd.rule.field)):
                return fd.rule.field
        return None

    def add(self, record: dict) -> None:
        for fd in self.fields:
            fd.add(record.get(fd.rule.field))
