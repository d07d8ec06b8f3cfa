"""The run journal: an append-only JSONL log of every attempt, fsynced in batches.

A run killed at any moment (SIGKILL included) leaves at most one partial last line, which
is cut off on resume; everything before it is replayed, so no record is lost or repeated.

The journal belongs to one plan. A run of an edited spec of the same dataset starts it over
(`restarted`; the old journal is kept as journal.previous.jsonl): what the engine wrote is
in the result cache, so the records that still hold come back without a request. A journal
of another dataset is refused. One run at a time writes a folder: the journal's lock is held
for the whole run."""

from __future__ import annotations

import errno
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from ..files import open_append, open_read, open_update


class JournalMismatch(Exception):
    pass


class RunBusy(Exception):
    def __init__(self, folder: Path):
        super().__init__(f"another synthc run is writing to {folder}; wait for it to end, or choose another "
                         "output folder")


class JournalCorrupt(JournalMismatch):
    """The journal was changed by something other than synthc (a torn last line is not this:
    it is cut off on resume)."""

    def __init__(self, what: str):
        super().__init__(f"{what}: the run's journal is damaged, so what was made cannot be trusted. "
                         "Run again with --fresh to start the dataset over (or restore the journal).")


def _well_formed(entry: dict) -> bool:
    if entry.get("kind") == "header":
        return True
    return (isinstance(entry.get("b"), str) and isinstance(entry.get("c"), int) and isinstance(entry.get("a"), int)
            and isinstance(entry.get("ok"), bool) and (isinstance(entry.get("rec"), dict) if entry["ok"]
                                                       else isinstance(entry.get("why"), str)))


PREVIOUS = "journal.previous.jsonl"   # the journal of the plan before an edit, kept one generation


class Journal:
    def __init__(self, path: Path, plan_hash: str, dataset: str, fresh: bool = False):
        """`fresh`: drop what the folder's journals hold (once the lock is held: never under
        another run's feet)."""
        self.path = path
        self.plan_hash = plan_hash
        self.restarted = False      # an earlier journal of this dataset's previous plan was set aside
        self._lock = _hold_lock(path.with_name(path.name + ".lock"))
        try:
            if fresh:
                for stale in (path, path.with_name(PREVIOUS)):
                    stale.unlink(missing_ok=True)
            self._open(dataset)
        except BaseException:
            self._lock.close()
            raise

    def _open(self, dataset: str) -> None:
        path = self.path
        if path.exists() or path.is_symlink():
            self._repair()
            header = self._header()
            if header is not None and header.get("plan") != self.plan_hash:
                if "dataset" not in header:
                    raise JournalMismatch(
                        f"{path.parent.parent} holds a run of another plan ({header.get('plan')}) by an earlier "
                        "synthc; use --fresh to start over, or another output folder")
                if header["dataset"] != dataset:
                    raise JournalMismatch(
                        f"{path.parent.parent} holds a run of another dataset ({header['dataset']}, plan "
                        f"{header.get('plan')}); use --fresh to start over, or another output folder")
                os.replace(path, path.with_name(PREVIOUS))
                self.restarted = True
        self._fh = open_append(path)
        if path.stat().st_size == 0:
            self._write_line({"plan": self.plan_hash, "dataset": dataset, "kind": "header"})
            self.sync()

    def _repair(self) -> None:
        """Cut a partial last line left by a kill in the middle of a write."""
        with open_update(self.path) as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                cut = data.rfind(b"\n") + 1
                fh.truncate(cut)

    def _header(self) -> dict | None:
        return read_header(self.path)

    def entries(self) -> Iterator[dict]:
        return read_entries(self.path)

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
        try:
            self._fh.close()
        finally:
            self._lock.close()


def read_header(path: Path) -> dict | None:
    """The journal's header (its plan and dataset), None for an empty journal."""
    with open_read(path) as fh:
        first = fh.readline()
    if not first.strip():
        return None
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("kind") != "header":
        raise JournalCorrupt(f"{path} does not start with a journal header")
    return header


def read_entries(path: Path) -> Iterator[dict]:
    """Every entry after the header; a torn last line (a run killed mid-write, not yet resumed)
    is left out."""
    with open_read(path) as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict) or not _well_formed(entry):
                if not line.endswith("\n"):
                    return
                raise JournalCorrupt(f"{path}, line {line_no}, is not a journal entry")
            if entry.get("kind") != "header":
                yield entry


def _hold_lock(path: Path):
    """An exclusive lock on `path`, held until the returned file is closed (the kernel lets go
    of it when the process dies, SIGKILL included)."""
    fh = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644), "rb+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        fh.close()
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise RunBusy(path.parent.parent) from None
        raise
    return fh
