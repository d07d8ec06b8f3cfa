"""The result cache: engine results by the full request that produced them.

A key is the SHA-256 of the model's identity (engine, model file digest, engine and constraint
library versions, settings that change the output) and the request (messages, JSON Schema,
sampling parameters, seed). A run looks every request up before sending it, so an unchanged
spec sends nothing and an edit sends only the requests it changed; everything after decoding
is recomputed from the cached text.

One SQLite file in WAL mode: each write is a transaction, so a run killed at any moment
(SIGKILL included) leaves every finished write and no torn one, and several runs (or Ray
workers on one machine) can share a cache. Bounded in size: past `max_bytes` the entries used
least recently are dropped when a run closes it, and `synthc cache prune` drops more."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..engines.base import GenerationRequest, GenerationResult
from ..files import UnsafePath
from .seeding import canonical

CACHE_FILE = "results.sqlite"
DEFAULT_MAX_BYTES = 2 << 30
BUSY_TIMEOUT_MS = 60_000
_ROW_OVERHEAD = 96              # bytes per entry besides its key and text, roughly what SQLite stores

_SCHEMA = """
create table if not exists results (
  key text primary key, text text not null, tokens integer not null, seconds real not null,
  bytes integer not null, created real not null, used real not null);
create index if not exists results_used on results (used);
create table if not exists throughput (
  identity text primary key, tokens integer not null, seconds real not null, requests integer not null);
create table if not exists token_choices (key text primary key, data text not null);
create table if not exists digests (
  path text primary key, size integer not null, mtime_ns integer not null, sha256 text not null);
"""


def request_key(identity: dict[str, Any], request: GenerationRequest) -> str:
    body = {"identity": identity, "messages": list(request.messages), "schema": request.json_schema,
            "max_tokens": request.max_tokens, "seed": request.seed, "temperature": request.temperature,
            "top_p": request.top_p}
    if request.logprobs:  # only when asked, so every other request keeps its key
        body["logprobs"] = request.logprobs
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def identity_key(identity: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(identity).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheInfo:
    path: Path
    entries: int
    bytes: int          # what the entries hold
    file_bytes: int     # the files on disk (the database and its write-ahead log)
    oldest_use: float | None
    newest_use: float | None


def _refuse_links(folder: Path) -> None:
    for name in (CACHE_FILE, CACHE_FILE + "-wal", CACHE_FILE + "-shm"):
        try:
            info = os.lstat(folder / name)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePath(errno.EPERM, f"{folder / name} is not a regular file (a symbolic link?); "
                             "remove it or choose another cache folder")


class ResultCache:
    def __init__(self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES, readonly: bool = False):
        """`folder` must exist and be safe to write in (files.ensure_dir)."""
        self.folder, self.max_bytes, self.readonly = folder, max_bytes, readonly
        self.path = folder / CACHE_FILE
        _refuse_links(folder)
        if readonly:
            uri = f"file:{quote(str(self.path))}?mode=ro"
            self.db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                      check_same_thread=False)
        else:
            self.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                      check_same_thread=False)
            _enter_wal(self.db)
            self.db.execute("pragma synchronous=normal")
            self.db.executescript(_SCHEMA)
        self.db.execute(f"pragma busy_timeout={BUSY_TIMEOUT_MS}")
        # a cache written before token choices were kept has no such table (read-only: not added)
        self.has_choices = self.db.execute(
            "select 1 from sqlite_master where type = 'table' and name = 'token_choices'").fetchone() is not None

    @classmethod
    def open_existing(cls, folder: Path) -> ResultCache | None:
        """The cache in `folder` read-only, or None when there is none."""
        if not (folder / CACHE_FILE).is_file():
            return None
        return cls(folder, readonly=True)

    # results ------------------------------------------------------------------------------------
    def get_many(self, keys: list[str]) -> dict[str, GenerationResult]:
        found: dict[str, GenerationResult] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, text, tokens, seconds in self.db.execute(
                    f"select key, text, tokens, seconds from results where key in ({marks})", chunk):
                found[key] = GenerationResult(text, tokens=tokens, seconds=seconds)
            if self.has_choices:
                for key, data in self.db.execute(
                        f"select key, data from token_choices where key in ({marks})", chunk):
                    if key in found:
                        found[key].logprobs = [(t, choices) for t, choices in json.loads(data)]
        if found and not self.readonly:
            now = time.time()
            with self._transaction():
                self.db.executemany("update results set used = ? where key = ?", [(now, k) for k in found])
        return found

    def put_many(self, items: Iterable[tuple[str, GenerationResult]]) -> None:
        now = time.time()
        rows, choices = [], []
        for k, r in items:
            if r.error is not None or r.text is None:
                continue
            data = json.dumps(r.logprobs, ensure_ascii=False) if r.logprobs is not None else None
            size = len(k) + len(r.text.encode("utf-8")) + _ROW_OVERHEAD + (len(data) if data else 0)
            rows.append((k, r.text, r.tokens, r.seconds, size, now, now))
            if data is not None:
                choices.append((k, data))
        if rows:
            with self._transaction():
                self.db.executemany("insert or replace into results values (?, ?, ?, ?, ?, ?, ?)", rows)
                self.db.executemany("insert or replace into token_choices values (?, ?)", choices)

    # what the engine achieved, for estimates ----------------------------------------------------
    def add_throughput(self, identity: str, tokens: int, seconds: float, requests: int) -> None:
        with self._transaction():
            self.db.execute("insert into throughput values (?, ?, ?, ?) on conflict(identity) do update set "
                            "tokens = tokens + excluded.tokens, seconds = seconds + excluded.seconds, "
                            "requests = requests + excluded.requests", (identity, tokens, seconds, requests))

    def throughput(self, identity: str) -> float | None:
        """Tokens per second this model's engine achieved over the requests it was sent."""
        row = self.db.execute("select tokens, seconds from throughput where identity = ?", (identity,)).fetchone()
        return row[0] / row[1] if row and row[1] > 0 else None

    # model file digests, so a file is read once, not on every run -----------------------------
    def file_digest(self, path: Path) -> str:
        info = os.stat(path)
        row = self.db.execute("select size, mtime_ns, sha256 from digests where path = ?", (str(path),)).fetchone()
        if row and row[0] == info.st_size and row[1] == info.st_mtime_ns:
            return str(row[2])
        digest = sha256_file(path)
        if not self.readonly:
            with self._transaction():
                self.db.execute("insert or replace into digests values (?, ?, ?, ?)",
                                (str(path), info.st_size, info.st_mtime_ns, digest))
        return digest

    # size -----------------------------------------------------------------------------------------
    def info(self) -> CacheInfo:
        n, total, oldest, newest = self.db.execute(
            "select count(*), coalesce(sum(bytes), 0), min(used), max(used) from results").fetchone()
        files = sum(p.stat().st_size for p in self.folder.glob(CACHE_FILE + "*") if p.is_file())
        return CacheInfo(self.path, n, total, files, oldest, newest)

    def prune(self, max_bytes: int | None = None, older_than: float | None = None) -> int:
        """Drop entries unused for `older_than` seconds, then the least recently used ones until
        the entries hold at most `max_bytes`. Returns how many were dropped."""
        dropped = 0
        with self._transaction():
            if older_than is not None:
                dropped += self.db.execute("delete from results where used < ?",
                                           (time.time() - older_than,)).rowcount
            if max_bytes is not None:
                total = self.db.execute("select coalesce(sum(bytes), 0) from results").fetchone()[0]
                if total > max_bytes:
                    cut, doomed = 0, []
                    for key, size in self.db.execute("select key, bytes from results order by used, key"):
                        if total - cut <= max_bytes:
                            break
                        doomed.append((key,))
                        cut += size
                    self.db.executemany("delete from results where key = ?", doomed)
                    dropped += len(doomed)
            if dropped:
                self.db.execute("delete from token_choices where key not in (select key from results)")
        if dropped:
            try:  # give the space back; another run using the cache may hold it, then it waits
                self.db.execute("pragma wal_checkpoint(truncate)")
                self.db.execute("vacuum")
            except sqlite3.OperationalError:
                pass
        return dropped

    def close(self) -> None:
        try:
            if not self.readonly:
                self.prune(max_bytes=self.max_bytes)
        finally:
            self.db.close()

    def _transaction(self):
        return _Transaction(self.db)


def _enter_wal(db: sqlite3.Connection) -> None:
    """Switch the database to WAL. On a new file this takes a lock that SQLite does not wait
    for (no busy handler): two runs opening a new cache at once had one fail with "database
    is locked". It is tried again here, up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            db.execute("pragma journal_mode=wal")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK on an exception): one writer at a time, waiting
    up to the busy timeout for another process's transaction to end."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("begin immediate")
        return self.db

    def __exit__(self, kind, value, tb) -> None:
        self.db.execute("commit" if kind is None else "rollback")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
