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

from ..files import human_size, open_append, open_read, open_update
from ..values import MAX_STORED_DEPTH, load_json
from .entries import BATCH_KEYS, BATCH_STATES, BatchEntry

# a line longer than this is no entry synthc wrote (an accepted record with its provenance is
# far smaller), and is not read into memory to find that out
MAX_LINE_CHARS = 64 * 2**20


class JournalMismatch(Exception):
    pass


class RunBusy(Exception):
    def __init__(self, folder: Path, holder: str = ""):
        who = f" (process {holder})" if holder else ""
        super().__init__(f"another synthc run{who} is writing to {folder}; wait for it to end, or choose another "
                         "output folder")


class JournalCorrupt(JournalMismatch):
    """The journal was changed by something other than synthc (a torn last line is not this:
    it is cut off on resume)."""

    def __init__(self, what: str):
        super().__init__(f"{what}: the run's journal is damaged, so what was made cannot be trusted. "
                         "Run again with --fresh to start the dataset over (or restore the journal).")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# the optional keys of an entry and what each holds (JournalEntry.to_json writes them)
_OPTIONAL = {"tok": _is_int, "t": lambda v: _is_int(v) or isinstance(v, float), "err": lambda v: isinstance(v, str),
             "score": _is_int, "step": _is_int, "dd": lambda v: isinstance(v, dict),
             "lab": lambda v: _is_labels(v)}


def _is_labels(v: object) -> bool:
    """The label check's reading: label field -> {"want"[, "read", "margin"][, "model"]}."""
    return isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(r, dict) and isinstance(r.get("want"), str)
        and isinstance(r.get("read", ""), str) and isinstance(r.get("margin", 0), int | float)
        and not isinstance(r.get("margin"), bool) and isinstance(r.get("model", ""), str)
        and set(r) <= {"want", "read", "margin", "model"}
        for k, r in v.items())


def _well_formed(entry: dict) -> bool:
    """True for the header, a batch (entries.BatchEntry), or an attempt whose every key holds
    what synthc writes there (so replaying it cannot fail on a type)."""
    if entry.get("kind") == "header":
        return True
    if entry.get("kind") == "batch":
        return _is_batch(entry)
    if not (isinstance(entry.get("b"), str) and _is_int(entry.get("c")) and _is_int(entry.get("a"))
            and isinstance(entry.get("ok"), bool)):
        return False
    if entry["ok"]:
        rec = entry.get("rec")
        if not isinstance(rec, dict) or not isinstance(rec.get("_meta", {}), dict):
            return False
    elif not isinstance(entry.get("why"), str):
        return False
    return all(entry.get(key) is None or holds(entry[key]) for key, holds in _OPTIONAL.items())


def _is_batch(entry: dict) -> bool:
    """A batch line as BatchEntry.to_json writes it."""
    attempts = entry.get("attempts", [])
    return (isinstance(entry.get("batch"), str) and isinstance(entry.get("model"), str)
            and entry.get("state") in BATCH_STATES and isinstance(entry.get("handle", ""), str)
            and _is_int(entry.get("n", 0)) and isinstance(entry.get("b", ""), str)
            and isinstance(attempts, list)
            and all(isinstance(a, list) and len(a) == 3 and all(_is_int(x) for x in a) for a in attempts)
            and set(entry) <= BATCH_KEYS)


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
        """Cut a partial last line left by a kill in the middle of a write. Only the end of the
        file is read: a journal can be far larger than memory."""
        with open_update(self.path) as fh:
            end = fh.seek(0, os.SEEK_END)
            if end == 0:
                return
            fh.seek(end - 1)
            if fh.read(1) != b"\n":
                fh.truncate(_after_last_newline(fh, end))

    def _header(self) -> dict | None:
        return read_header(self.path)

    def entries(self) -> Iterator[dict]:
        return read_entries(self.path)

    def batches(self) -> Iterator[BatchEntry]:
        return (BatchEntry.from_json(e) for e in read_lines(self.path) if e.get("kind") == "batch")

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
        first, _ = _read_line(fh)
    if not first.strip():
        return None
    header, _ = _parse(first)
    if not isinstance(header, dict) or header.get("kind") != "header":
        raise JournalCorrupt(f"{path} does not start with a journal header")
    return header


def read_entries(path: Path) -> Iterator[dict]:
    """Every attempt after the header; a torn last line (a run killed mid-write, not yet resumed)
    is left out."""
    return (e for e in read_lines(path) if e.get("kind") != "batch")


def read_lines(path: Path) -> Iterator[dict]:
    """Every line after the header, attempts and batches; a torn last line is left out."""
    with open_read(path) as fh:
        line_no = 0
        while True:
            line, whole = _read_line(fh)
            if not line:
                return
            line_no += 1
            if not line.strip():
                continue
            entry, why = _parse(line) if whole else (None, f"longer than {human_size(MAX_LINE_CHARS)}")
            if not isinstance(entry, dict) or not _well_formed(entry):
                if not line.endswith("\n"):
                    return
                raise JournalCorrupt(f"{path}, line {line_no}, is not a journal entry" + (f" ({why})" if why else ""))
            if entry.get("kind") != "header":
                yield entry


def _read_line(fh) -> tuple[str, bool]:
    """The next line and whether it is whole. Of a line longer than MAX_LINE_CHARS only its
    start is kept (the rest is read past), ending in a newline if the line did: so a caller
    still tells a torn last line from damage. ("", True) at the end of the file."""
    line = fh.readline(MAX_LINE_CHARS + 1)
    if len(line) <= MAX_LINE_CHARS or line.endswith("\n"):
        return line, True
    while True:
        rest = fh.readline(1 << 20)
        if not rest or rest.endswith("\n"):
            return line[:80] + rest[-1:], False


def _after_last_newline(fh, end: int) -> int:
    """The offset just past the last newline before `end` in a binary file, 0 when there is none."""
    pos = end
    while pos > 0:
        start = max(0, pos - (1 << 20))
        fh.seek(start)
        found = fh.read(pos - start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        pos = start
    return 0


def _parse(line: str) -> tuple[object, str | None]:
    """A line's JSON value, or (None, why not). Bounded in depth like everything synthc reads
    back; NaN is read as Python writes it."""
    try:
        return load_json(line, max_depth=MAX_STORED_DEPTH, nan=True), None
    except ValueError as exc:
        return None, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _hold_lock(path: Path):
    """An exclusive lock on `path`, held until the returned file is closed (the kernel lets go
    of it when the process dies, SIGKILL included)."""
    fh = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644), "rb+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = fh.read(32).decode("ascii", "replace").strip()  # the pid the holder wrote
        fh.close()
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise RunBusy(path.parent.parent, holder if holder.isdigit() else "") from None
        raise
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n".encode())
    fh.flush()
    return fh
