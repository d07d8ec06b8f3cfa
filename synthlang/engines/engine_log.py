"""Engine libraries speak only when something is wrong. What vLLM and llama.cpp print (their
Python logging, native writes to file descriptors 1 and 2, warnings, the processes they start)
goes to a log file while they load and generate; synthc's own messages and progress still go to
the terminal. A failure names the log file and quotes its last relevant lines (EngineDead).

`logged_engine` wraps an engine so every call it makes runs inside `EngineLog.quiet`; with no
log file (`--verbose`) nothing is redirected."""

from __future__ import annotations

import faulthandler
import io
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..files import ensure_dir
from .base import Engine, EngineDead, GenerationRequest, GenerationResult

LOGGED_ENGINES = ("llamacpp", "vllm")   # the in-process engines whose libraries print
TAIL_LINES = 8                            # lines of the log a failure quotes
TAIL_BYTES = 256 * 1024                   # read from the end of the log to find them
# a line worth quoting: what went wrong, not the INFO lines around it
RELEVANT = re.compile(r"error|exception|traceback|fail|fatal|abort|killed|out of memory|oom|cannot|could not|"
                      r"refus|invalid|not found|no such", re.I)
ROTATE_BYTES = 16 << 20                   # a log this large when a run opens it is moved to `.1` first
_LOCK = threading.RLock()                 # one redirection at a time: file descriptors are per process
_LOG_STREAMS: list[io.TextIOWrapper] = []  # every log opened in this process (handlers may hold one)
_CRASH_FILE: list = []                    # the terminal's stderr, kept for faulthandler (see _crashes_to)


class EngineLog:
    def __init__(self, path: Path):
        self.path = path
        self._depth = 0
        self._stream: io.TextIOWrapper | None = None
        self._start = 0          # where this run's lines start in the (appended) file

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """Inside: file descriptors 1 and 2, sys.stdout, sys.stderr and the engine libraries'
        logging handlers all write to the log file (appended)."""
        with _LOCK:
            if self._depth:      # nested (the probe inside a start-up): already quiet
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            log = self._open()
            _crashes_to_terminal()
            saved = [os.dup(1), os.dup(2)]
            old_streams = sys.stdout, sys.stderr
            handlers = _library_handlers()
            old_handler_streams = [h.stream for h in handlers]
            try:
                os.dup2(log.fileno(), 1)
                os.dup2(log.fileno(), 2)
                sys.stdout = sys.stderr = log
                for h in handlers:
                    h.setStream(log)
                yield
            finally:
                for h, s in zip(handlers, old_handler_streams):
                    h.setStream(s)
                # handlers the libraries made inside (vLLM configures its logging on import)
                # keep writing to the log, which stays open: that is where their lines belong
                try:
                    log.flush()
                except (OSError, ValueError):
                    pass
                sys.stdout, sys.stderr = old_streams
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                for fd in saved:
                    os.close(fd)
                self._depth = 0

    def _open(self) -> io.TextIOWrapper:
        """The log file, appended to, opened once (the libraries' handlers keep it), inside the
        output folder's tree (its `.synth` folder may not lead elsewhere). One grown past
        ROTATE_BYTES is moved to `NAME.1` first."""
        if self._stream is None:
            ensure_dir(self.path.parent, self.path.parent.parent)
            try:
                if os.lstat(self.path).st_size > ROTATE_BYTES:
                    os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            except FileNotFoundError:
                pass
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o644)
            self._start = os.fstat(fd).st_size
            self._stream = io.TextIOWrapper(os.fdopen(fd, "wb", buffering=0), encoding="utf-8", errors="replace",
                                            line_buffering=True)
            _LOG_STREAMS.append(self._stream)
        return self._stream

    def tail(self, lines: int = TAIL_LINES) -> list[str]:
        """This run's last relevant lines in the log (failures, errors), or its last lines when
        none is; an earlier run's lines are never quoted."""
        try:
            with open(self.path, "rb") as fh:
                end = fh.seek(0, os.SEEK_END)
                fh.seek(max(self._start if end >= self._start else 0, end - TAIL_BYTES))
                text = fh.read().decode("utf-8", errors="replace")
        except OSError:
            return []
        shown = [ln.rstrip()[:300] for ln in text.splitlines() if ln.strip()]
        relevant = [ln for ln in shown if RELEVANT.search(ln)]
        return (relevant or shown)[-lines:]

    def explain(self, exc: EngineDead) -> EngineLogged:
        """`exc` again, naming the log file and carrying its last relevant lines."""
        if isinstance(exc, EngineLogged):
            return exc
        quoted = self.tail()
        shown = "; its last relevant lines follow" if quoted else ""
        return EngineLogged(f"{exc} (the engine's log is {self.path}{shown})", self.path, tuple(quoted))


class EngineLogged(EngineDead):
    """An engine failure with the engine's log named and its last relevant lines (`lines`), which
    the command line prints each on its own line, marked as quoted."""

    def __init__(self, message: str, path: Path, lines: tuple[str, ...]):
        super().__init__(message)
        self.path = path
        self.lines = lines

    def __reduce__(self):  # it crosses processes (Ray workers): rebuilt with all three parts
        return (type(self), (str(self), self.path, self.lines))


def _crashes_to_terminal() -> None:
    """A native crash (a segfault, an abort, a failed GGML_ASSERT) inside a quiet call would
    otherwise print nowhere but the log: faulthandler writes its report to the terminal's stderr
    (a copy of file descriptor 2 made before any redirection), unless something (pytest,
    `python -X faulthandler`) already set it up."""
    if _CRASH_FILE or faulthandler.is_enabled():
        return
    try:
        _CRASH_FILE.append(os.fdopen(os.dup(2), "w"))
        faulthandler.enable(_CRASH_FILE[0])
    except (OSError, ValueError, RuntimeError):
        return


def _library_handlers() -> list[logging.StreamHandler]:
    """Stream handlers of loggers that write to the terminal (vLLM configures its own), or to
    the log of an earlier run in this process (handlers made while it was quiet hold it)."""
    found: list[logging.StreamHandler] = []
    terminal = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    for logger in [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]:
        for h in getattr(logger, "handlers", ()):
            stream = getattr(h, "stream", None)
            if type(h) is logging.StreamHandler and (stream in terminal or any(stream is s for s in _LOG_STREAMS)):
                found.append(h)
    return found


class LoggedEngine:
    """An engine whose every call runs inside its log's `quiet`; an EngineDead it raises names
    the log and quotes its last relevant lines."""

    def __init__(self, engine: Engine, log: EngineLog):
        self.engine = engine
        self.log = log
        self.name = engine.name
        self.capabilities = engine.capabilities
        self.in_flight = engine.in_flight

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        return self._quietly(lambda: self.engine.generate(requests))

    def close(self) -> None:
        self._quietly(self.engine.close)

    def _quietly(self, call: Callable):
        try:
            with self.log.quiet():
                return call()
        except EngineDead as exc:
            raise self.log.explain(exc) from exc


def start_logged(make: Callable[[], Engine], log: EngineLog | None) -> Engine:
    """The engine `make` builds, built and then run quietly into `log` (None: as it is)."""
    if log is None:
        return make()
    try:
        with log.quiet():
            engine = make()
    except EngineDead as exc:
        raise log.explain(exc) from exc
    return LoggedEngine(engine, log)
