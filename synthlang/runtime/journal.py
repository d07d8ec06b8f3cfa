"""The run journal: an append-only JSONL log of every attempt, fsynced in batches.

A run killed at any moment (SIGKILL included) leaves at most one partial last line, which
is cut off on resume; everything before it is replayed, so no record is lost or repeated."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator


class JournalMismatch(Exception):
    pass


class Journal:
    def __init__(self, path: Path, plan_hash: str):
        self.path = path
        self.plan_hash = plan_hash
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            self._repair()
            header = self._header()
            if header is not None and header.get("plan") != plan_hash:
                raise JournalMismatch(
                    f"{path.parent.parent} holds a run of another plan ({header.get('plan')}); "
                    "use --fresh to start over, or another output folder")
        self._fh = open(path, "a", encoding="utf-8")
        if path.stat().st_size == 0:
            self._write_line({"plan": plan_hash, "kind": "header"})
            self.sync()

    def _repair(self) -> None:
        """Cut a partial last line left by a kill in the middle of a write."""
        with open(self.path, "rb+") as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                cut = data.rfind(b"\n") + 1
                fh.truncate(cut)

    def _header(self) -> dict | None:
        with open(self.path, encoding="utf-8") as fh:
            first = fh.readline()
        return json.loads(first) if first.strip() else None

    def entries(self) -> Iterator[dict]:
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                entry = json.loads(line)
                if entry.get("kind") != "header":
                    yield entry

    def _write_line(self, entry: dict) -> None:
        self._fh.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")

    def append(self, entries: list[dict]) -> None:
        for e in entries:
            self._write_line(e)
        self.sync()

    def sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()
