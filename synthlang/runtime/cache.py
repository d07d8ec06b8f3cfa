"""The result cache: engine results by the full request that produced them.

A key is the SHA-256 of the model's identity (engine, model file digest, engine and constraint
library versions, settings that change the output) and the request (messages, JSON Schema,
sampling parameters, seed). A run looks every request up before sending it, so an unchanged
spec sends nothing and an edit sends only the requests it changed; everything after decoding
is recomputed from the cached text.

One SQLite file in WAL mode: each write is a transaction, so a run killed at any moment
(SIGKILL included) leaves every finished write and no torn one, and several runs (or Ray
workers on one machine) can share a cache. Bounded in size: past `max_bytes` the entries used
least recently are dropped when a run closes it, and `synthc cache prune` drops more.

Only a cache: a file that is no SQLite database, or whose pages are corrupt, costs requests,
never records (those are in the journal). A run moves it aside (results.sqlite.damaged) and
starts a new one; a command that only reads goes on without it; a bad entry is a miss."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import sqlite3
import stat
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..engines.base import GenerationRequest, GenerationResult, TokenChoices
from ..files import UnsafePath
from ..values import MAX_STORED_DEPTH, load_json
from .seeding import canonical

CACHE_FILE = "results.sqlite"
SET_ASIDE = CACHE_FILE + ".damaged"    # a damaged cache moved out of the way, the last one only
DEFAULT_MAX_BYTES = 2 << 30
BUSY_TIMEOUT_MS = 60_000
_ROW_OVERHEAD = 96              # bytes per entry besides its key and text, roughly what SQLite stores
MAX_CHOICES_CHARS = 64 * 2**20  # one result's token choices, as an engine reply holding them is bounded
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
_SQLITE_IOERR, _SQLITE_FULL = 10, 13
_SQLITE_READONLY, _SQLITE_CANTOPEN = 8, 14

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
    set_aside_bytes: int = 0  # a damaged cache moved aside by a run, still on disk


class CacheDamaged(Exception):
    """The cache file is no SQLite database, or its pages are corrupt (what SQLite said is
    `reason`)."""

    def __init__(self, path: Path, reason: str, inode: tuple[int, int] | None = None):
        super().__init__(f"the result cache {path} is damaged ({reason})")
        self.path, self.reason, self.inode = path, reason, inode


def _write_failed(code: int, path: Path) -> OSError:
    why = os.strerror(code) + (" (a full disk shows so too)" if code == errno.EIO else "")
    return OSError(code, f"{why}: cannot open or write the result cache", str(path))


def _disk_trouble(exc: BaseException) -> int | None:
    """ENOSPC for SQLite's "database or disk is full", EIO for its "disk I/O error" (how a
    full disk shows while the write-ahead log grows), EACCES for a file it cannot open or
    write; None otherwise."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if code is not None else None
    if primary == _SQLITE_FULL or "database or disk is full" in str(exc):
        return errno.ENOSPC
    if primary == _SQLITE_IOERR or "disk I/O error" in str(exc):
        return errno.EIO
    if primary in (_SQLITE_CANTOPEN, _SQLITE_READONLY) or "unable to open database file" in str(exc):
        return errno.EACCES  # a folder it may not write (`--cache /proc`), or a read-only file
    return None


def is_damage(exc: BaseException) -> bool:
    """True for SQLite's "file is not a database" and "database disk image is malformed";
    false for a locked or read-only database, a full disk and every other failure."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11 on; the message before
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    return "not a database" in str(exc) or "malformed" in str(exc)


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
    def __init__(self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES, readonly: bool = False,
                 recover: bool = True):
        """`folder` must exist and be safe to write in (files.ensure_dir). A run's cache found
        damaged is moved aside and a new one started, with a warning: moved rather than gone
        without, so the run (and a resume of it) still keeps what the engine writes, the next
        run warns no more, and the damaged bytes stay for whoever wants to look at them. Raises
        CacheDamaged instead when `readonly` or not `recover`."""
        self.folder, self.max_bytes, self.readonly = folder, max_bytes, readonly
        self.path = folder / CACHE_FILE
        self.off = False    # damage found in a read-only cache: it answers nothing from then on
        _refuse_links(folder)
        self._inode = _inode(self.path)  # before opening: what a later set-aside may move
        try:
            self.db = self._connect()
        except sqlite3.DatabaseError as exc:
            full = _disk_trouble(exc)
            if full is not None:
                raise _write_failed(full, self.path) from None
            if not is_damage(exc):
                raise
            if readonly or not recover:
                raise CacheDamaged(self.path, str(exc), self._inode) from None
            set_aside(folder, self._inode)
            _warn(f"the result cache {self.path} is damaged ({exc}): moved it to {folder / SET_ASIDE} and started "
                  "a new one. Nothing made is lost (the records are in the journal), but what it held is asked "
                  "of the engine again")
            self._inode = _inode(self.path)
            self.db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            uri = f"file:{quote(str(self.path))}?mode=ro"
            db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                 check_same_thread=False)
        else:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                 check_same_thread=False)
        try:
            if not self.readonly:
                _enter_wal(db)
                db.execute("pragma synchronous=normal")
                db.executescript(_SCHEMA)
            db.execute(f"pragma busy_timeout={BUSY_TIMEOUT_MS}")
            # a cache written before token choices were kept has no such table (read-only: not added)
            self.has_choices = db.execute(
                "select 1 from sqlite_master where type = 'table' and name = 'token_choices'").fetchone() is not None
        except BaseException:
            db.close()
            raise
        return db

    @classmethod
    def open_existing(cls, folder: Path) -> ResultCache | None:
        """The cache in `folder` read-only, or None when there is none, or when it is damaged
        (with a warning: a command that only reads goes on as if it were empty, and changes
        nothing on disk)."""
        if not (folder / CACHE_FILE).is_file():
            return None
        try:
            return cls(folder, readonly=True)
        except CacheDamaged as exc:
            _warn(f"{exc}: going on as if it held nothing. `synthc run` moves it aside and starts a new one; "
                  "`synthc cache prune --all` removes it")
            return None

    def _found_damage(self, exc: sqlite3.DatabaseError) -> None:
        """Damage found while the cache is in use: see _recover. A full disk or a failed write is
        an OSError naming the cache (the run stops, resumably, as for the journal); any other
        error is re-raised."""
        full = _disk_trouble(exc)
        if full is not None:
            raise _write_failed(full, self.path) from None
        if not is_damage(exc):
            raise exc
        self._recover(str(exc))

    def _recover(self, reason: str) -> None:
        """A run's cache found damaged in use is moved aside and started afresh, a read-only one
        answers nothing more; warned once. Never raises: without a new cache the run goes on
        without one."""
        try:
            self.db.close()
        except sqlite3.Error:
            pass
        if not self.readonly:
            try:
                set_aside(self.folder, self._inode)
                self._inode = _inode(self.path)
                self.db = self._connect()
            except (OSError, sqlite3.Error):
                self.off = True
        else:
            self.off = True
        _warn(f"the result cache {self.path} is damaged ({reason}): "
              + ("going on without it" if self.off else f"moved it to {self.folder / SET_ASIDE} and started a new "
                 "one") + ". Nothing made is lost (the records are in the journal)")

    # results ------------------------------------------------------------------------------------
    def get_many(self, keys: list[str]) -> dict[str, GenerationResult]:
        """The results the cache holds for these keys. An entry that is not what put_many
        writes (another type in a column, token choices nested too deep) is left out, a miss:
        the request is sent again and its entry replaced."""
        if self.off:
            return {}
        try:
            return self._get_many(keys)
        except sqlite3.DatabaseError as exc:
            self._found_damage(exc)
            return {}

    def _get_many(self, keys: list[str]) -> dict[str, GenerationResult]:
        found: dict[str, GenerationResult] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, text, tokens, seconds in self.db.execute(
                    f"select key, text, tokens, seconds from results where key in ({marks})", chunk):
                if _is_text(text) and _is_int(tokens) and _is_number(seconds):
                    found[key] = GenerationResult(text, tokens=tokens, seconds=seconds)
            if self.has_choices:
                for key, data in self.db.execute(
                        f"select key, data from token_choices where key in ({marks})", chunk):
                    if key in found:
                        choices = _token_choices(data)
                        if choices is None:
                            del found[key]
                        else:
                            found[key].logprobs = choices
        if found and not self.readonly:
            now = time.time()
            with self._transaction():
                self.db.executemany("update results set used = ? where key = ?", [(now, k) for k in found])
        return found

    def put_many(self, items: Iterable[tuple[str, GenerationResult]]) -> None:
        if self.off:
            return
        try:
            self._put_many(items)
        except sqlite3.DatabaseError as exc:
            self._found_damage(exc)

    def _put_many(self, items: Iterable[tuple[str, GenerationResult]]) -> None:
        now = time.time()
        rows, choices, plain = [], [], []
        for k, r in items:
            if r.error is not None or r.text is None:
                continue
            data = json.dumps(r.logprobs, ensure_ascii=False) if r.logprobs is not None else None
            size = len(k) + len(r.text.encode("utf-8")) + _ROW_OVERHEAD + (len(data) if data else 0)
            rows.append((k, r.text, r.tokens, r.seconds, size, now, now))
            if data is not None:
                choices.append((k, data))
            else:
                plain.append((k,))
        if rows:
            with self._transaction():
                self.db.executemany("insert or replace into results values (?, ?, ?, ?, ?, ?, ?)", rows)
                self.db.executemany("insert or replace into token_choices values (?, ?)", choices)
                # an entry is replaced whole: choices left from a bad entry would make it a miss again
                self.db.executemany("delete from token_choices where key = ?", plain)

    # what the engine achieved, for estimates ----------------------------------------------------
    def add_throughput(self, identity: str, tokens: int, seconds: float, requests: int) -> None:
        if self.off:
            return
        try:
            with self._transaction():
                self.db.execute("insert into throughput values (?, ?, ?, ?) on conflict(identity) do update set "
                                "tokens = tokens + excluded.tokens, seconds = seconds + excluded.seconds, "
                                "requests = requests + excluded.requests", (identity, tokens, seconds, requests))
        except sqlite3.DatabaseError as exc:
            self._found_damage(exc)

    def throughput(self, identity: str) -> float | None:
        """Tokens per second this model's engine achieved over the requests it was sent."""
        if self.off:
            return None
        try:
            row = self.db.execute("select tokens, seconds from throughput where identity = ?",
                                  (identity,)).fetchone()
        except sqlite3.DatabaseError as exc:
            self._found_damage(exc)
            return None
        if not row or not _is_number(row[0]) or not _is_number(row[1]):
            return None
        return row[0] / row[1] if row[1] > 0 else None

    # model file digests, so a file is read once, not on every run -----------------------------
    def file_digest(self, path: Path) -> str:
        if self.off:
            return sha256_file(path)
        try:
            return self._file_digest(path)
        except sqlite3.DatabaseError as exc:
            self._found_damage(exc)
            return sha256_file(path)

    def _file_digest(self, path: Path) -> str:
        info = os.stat(path)
        row = self.db.execute("select size, mtime_ns, sha256 from digests where path = ?", (str(path),)).fetchone()
        if row and row[0] == info.st_size and row[1] == info.st_mtime_ns and _is_text(row[2]):
            return str(row[2])
        digest = sha256_file(path)
        if not self.readonly:
            with self._transaction():
                self.db.execute("insert or replace into digests values (?, ?, ?, ?)",
                                (str(path), info.st_size, info.st_mtime_ns, digest))
        return digest

    # size -----------------------------------------------------------------------------------------
    def info(self) -> CacheInfo:
        """Raises CacheDamaged when the damage shows only now."""
        try:
            n, total, oldest, newest = self.db.execute(
                "select count(*), coalesce(sum(bytes), 0), min(used), max(used) from results").fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None
        files = sum(_size(self.folder / (CACHE_FILE + end)) for end in ("", "-wal", "-shm"))
        aside = sum(_size(p) for p in set_aside_files(self.folder))
        return CacheInfo(self.path, n, total, files, oldest, newest, aside)

    def prune(self, max_bytes: int | None = None, older_than: float | None = None) -> int:
        """Drop entries unused for `older_than` seconds, then the least recently used ones until
        the entries hold at most `max_bytes`. Returns how many were dropped. Raises CacheDamaged
        when the damage shows only now."""
        try:
            dropped = self._drop(max_bytes, older_than)
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None
        if dropped:
            try:  # give the space back; another run using the cache may hold it, then it waits
                self.db.execute("pragma wal_checkpoint(truncate)")
                self.db.execute("vacuum")
            except sqlite3.OperationalError:
                pass
        return dropped

    def _drop(self, max_bytes: int | None, older_than: float | None) -> int:
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
                        cut += size if _is_int(size) else 0
                    self.db.executemany("delete from results where key = ?", doomed)
                    dropped += len(doomed)
            if dropped:
                self.db.execute("delete from token_choices where key not in (select key from results)")
        return dropped

    def _damaged(self, exc: sqlite3.DatabaseError) -> Exception:
        """What to raise for an error while reading the cache: CacheDamaged for damage."""
        return CacheDamaged(self.path, str(exc), self._inode) if is_damage(exc) else exc

    def close(self) -> None:
        """Closes the database, after dropping what is past `max_bytes` in a run's cache."""
        try:
            if not self.readonly and not self.off:
                try:
                    self.prune(max_bytes=self.max_bytes)
                except CacheDamaged as exc:  # found only now: the next run finds a new cache
                    self._recover(exc.reason)
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


def set_aside(folder: Path, inode: tuple[int, int] | None) -> None:
    """Move the damaged cache in `folder` and its write-ahead log aside (replacing what an
    earlier damage left there) and drop its shared-memory index, so a new cache starts clean.
    Under a lock, and only while the file is still the one found damaged (`inode`): runs that
    share the cache and found the same damage move it once, and never the new one another run
    has started since."""
    path = folder / CACHE_FILE
    with _locked(folder / (CACHE_FILE + ".lock")):
        if inode is None or _inode(path) != inode:
            return
        os.replace(path, folder / SET_ASIDE)
        wal, wal_aside = folder / (CACHE_FILE + "-wal"), folder / (SET_ASIDE + "-wal")
        if wal.is_file():
            os.replace(wal, wal_aside)
        else:
            wal_aside.unlink(missing_ok=True)  # an earlier one's, which would not belong to this file
        (folder / (CACHE_FILE + "-shm")).unlink(missing_ok=True)


def set_aside_files(folder: Path) -> list[Path]:
    """A damaged cache moved aside in `folder`, with its write-ahead log: the files that exist."""
    return [p for p in (folder / SET_ASIDE, folder / (SET_ASIDE + "-wal")) if p.is_file() and not p.is_symlink()]


def remove_damaged(folder: Path) -> list[Path]:
    """Delete a damaged cache in `folder` (with its write-ahead log and shared-memory index)
    and any moved aside; the files removed."""
    removed = []
    for p in [folder / (CACHE_FILE + end) for end in ("", "-wal", "-shm")] + set_aside_files(folder):
        try:
            os.unlink(p)
        except FileNotFoundError:
            continue
        removed.append(p)
    return removed


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` for the block, waited for (what it guards is short)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino


def _size(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except FileNotFoundError:
        return 0


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return _is_int(v) or isinstance(v, float)


def _is_text(text: object) -> bool:
    """True for text that can be an engine's reply: a reply nested deeper than any schema is
    none synthc stored, and would exhaust the stack of what parses it. Only text showing that
    many brackets is parsed to tell (a reply that is not JSON at all is the engine's own)."""
    if not isinstance(text, str):
        return False
    if text.count("[") + text.count("{") <= MAX_STORED_DEPTH:
        return True
    try:
        load_json(text, max_depth=MAX_STORED_DEPTH, nan=True)
    except json.JSONDecodeError:
        return True
    except ValueError:
        return False
    return True


def _token_choices(data: object) -> list[TokenChoices] | None:
    """Token choices as put_many stores them, or None for anything else: [[token, {text:
    log-probability}], ...]."""
    if not isinstance(data, str):
        return None
    try:
        value = load_json(data, max_depth=MAX_STORED_DEPTH, limit=MAX_CHOICES_CHARS, nan=True)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    out: list[TokenChoices] = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], dict)
                and all(isinstance(k, str) and _is_number(v) for k, v in item[1].items())):
            return None
        out.append((item[0], item[1]))
    return out


def _warn(message: str) -> None:
    """One line on stderr, as the CLI writes its own."""
    from ..diagnostics import printable

    print(f"synthc: warning: {printable(message)}", file=sys.stderr)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
