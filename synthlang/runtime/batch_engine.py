"""Requests sent as OpenAI-format batch files instead of live calls (`synthc run --batch-files`).

A BatchEngine takes the place of a model's engine. Each call's requests become one batch file
(or several, MAX_BATCH_REQUESTS lines and MAX_BATCH_BYTES each), every line's custom_id the request's content address
(cache.request_key), so the result cache and a resume work as for live calls. The file is
written under .synth/batches, journaled with the attempts of the wave that sent it (a
BatchLedger: the driver's journal), handed to a runner (engines/batch_runners.py: a Batch API,
or an offline runner such as vLLM's run_batch), polled until done and read back.

A run killed while a batch is out finds it in the journal on resume and collects it: the resumed
wave's requests are answered from its output, nothing is sent again. Top-ups for rejected
attempts are the driver's next wave, so they go in the next batch."""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from .. import ir
from ..engines.base import Engine, EngineDead, GenerationRequest, GenerationResult
from ..engines.batch_format import (
    MAX_BATCH_BYTES,
    MAX_BATCH_REQUESTS,
    input_file,
    output_files,
    read_output,
    request_body,
    request_line,
    write_input,
)
from ..engines.batch_runners import BatchAPI, BatchRunner, BatchState, OfflineRunner
from ..engines.identity import model_identity
from ..engines.registry import get_engine
from ..files import ensure_dir
from ..values import load_json
from .cache import request_key, sha256_file
from .entries import BatchEntry
from .journal import Journal
from .options import RunOptions

BATCH_DIR = "batches"                 # in the run's .synth folder
MODES = ("api", "offline")            # --batch-files: a Batch API, or files left for an offline runner
DEFAULT_POLL = {"api": 30.0, "offline": 1.0}
OUT = ("written", "out")              # a batch in one of these states is still to be collected
WAIT_NOTE = 60.0                      # seconds between "still out" lines while a batch is waited for
REFUSED = ("request_refused", "malformed_reply")  # what a batch's results all being stops the run


def batched_models(plan_models: dict[str, ir.Model], mode: str) -> list[str]:
    """The models whose requests go in batch files: `engine openai` for a Batch API; `engine vllm`
    (vLLM's batch runner) and `engine openai` for an offline runner. The others run live."""
    engines = ("openai",) if mode == "api" else ("openai", "vllm")
    return [name for name, m in plan_models.items() if m.engine in engines]


class BatchLedger(Protocol):
    def record(self, entry: BatchEntry) -> None:
        """Journal how a batch stands (its first entry with the attempts of the wave that sent it)."""

    def outstanding(self, model: str) -> list[BatchEntry]:
        """The model's batches journaled as out and not yet collected."""

    def collected(self, model: str) -> list[BatchEntry]:
        """The model's batches journaled as collected."""

    def known(self, name: str) -> bool:
        """Whether a batch of this name was ever journaled."""


class JournalLedger:
    """The batches of a run, in its journal: the driver says which wave is being made."""

    def __init__(self, journal: Journal, models: set[str]):
        self.journal = journal
        self.models = models          # the batched models
        self.wave_size = MAX_BATCH_REQUESTS  # attempts a wave of theirs may hold: a whole batch file
        self.wave: tuple[str, tuple[tuple[int, int, int], ...]] | None = None
        self.latest: dict[str, BatchEntry] = {}
        for e in journal.batches():
            first = self.latest.get(e.name)
            # later entries say how it stands; the first says which attempts it holds
            self.latest[e.name] = e if first is None else replace(e, block=first.block, attempts=first.attempts,
                                                                   requests=first.requests or e.requests)

    def making(self, block: str, work: list[tuple[int, list[int]]]) -> None:
        self.wave = (block, tuple((ci, attempts[0], len(attempts)) for ci, attempts in work if attempts))

    def record(self, entry: BatchEntry) -> None:
        if entry.state == "written" and self.wave is not None:
            entry = replace(entry, block=self.wave[0], attempts=self.wave[1])
        first = self.latest.get(entry.name)
        self.journal.append([entry.to_json()])
        self.latest[entry.name] = entry if first is None else replace(
            entry, block=first.block, attempts=first.attempts, requests=first.requests or entry.requests)

    def outstanding(self, model: str) -> list[BatchEntry]:
        return [e for e in self.latest.values() if e.model == model and e.state in OUT]

    def collected(self, model: str) -> list[BatchEntry]:
        return [e for e in self.latest.values() if e.model == model and e.state == "collected"]

    def known(self, name: str) -> bool:
        return name in self.latest


@dataclass
class BatchSettings:
    mode: str                         # "api" or "offline"
    folder: Path                      # .synth/batches
    poll: float                       # seconds between polls
    wait: float | None                # seconds to wait for a batch before stopping (resumable); None: until done


class BatchEngine:
    """A model's requests as batch files; the Engine protocol, so the runtime needs no other path."""

    # what the service enforces is its own (no start-up probe with batch files: it would be a
    # batch round trip of its own); every output is validated against the schema as always
    capabilities: frozenset[str] | None = None

    def __init__(self, model: ir.Model, runner: BatchRunner, settings: BatchSettings, ledger: BatchLedger,
                 identity: dict, say: Callable[[str], None] | None = None, constrained: bool = True):
        self.model = model
        self.runner = runner
        self.settings = settings
        self.ledger = ledger
        self.identity = identity
        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.constrained = constrained
        self.name = f"batch[{settings.mode}]:{model.model}"
        self.in_flight = MAX_BATCH_REQUESTS  # a wave is as large as what its cells still need
        self.ready: dict[str, GenerationResult] = {}  # collected results not asked for yet
        self._resumed = False

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        if not requests:
            return []
        if not self._resumed:
            self._resumed = True
            for entry in self.ledger.collected(self.model.name):
                self._reread(entry)
            for entry in self.ledger.outstanding(self.model.name):
                self._collect(entry)
        keys = [request_key(self.identity, r) for r in requests]
        answers: dict[str, GenerationResult] = {k: self.ready.pop(k) for k in dict.fromkeys(keys) if k in self.ready}
        todo = {k: r for k, r in zip(keys, requests) if k not in answers}
        for chunk in _files(todo, lambda k, r: request_line(k, request_body(self.model, r, self.constrained))):
            self._send(chunk)
            answers.update((k, self.ready.pop(k)) for k in chunk if k in self.ready)
        results = []
        for k, r in zip(keys, requests):
            got = answers.get(k) or GenerationResult(None, error="the batch's output holds no result for this request",
                                                     error_kind="exhausted")  # asked again in the next batch
            if got.logprobs is not None and not r.logprobs:
                got = replace(got, logprobs=None)
            results.append(got)
        return results

    def _send(self, chunk: dict[str, str]) -> None:
        # named by its requests, and by how many batches of the same requests went before (the
        # same requests are sent again when a batch came back without their results): a name
        # is never used twice, so an earlier batch's output never answers for a later one
        base = "batch-" + hashlib.sha256("\n".join(chunk).encode()).hexdigest()[:16]
        folder = self.settings.folder
        name, again = base, 0
        while self.ledger.known(name) or input_file(folder, name).exists() or \
                any(p.exists() for p in output_files(folder, name)):
            again += 1
            name = f"{base}-{again}"
        path = input_file(folder, name)
        write_input(path, chunk.values())
        self.ledger.record(BatchEntry(name, self.model.name, "written", requests=len(chunk)))
        handle = self.runner.submit(name, path, len(chunk))
        entry = BatchEntry(name, self.model.name, "out", handle=handle, requests=len(chunk))
        self.ledger.record(entry)
        self.say(f"batch {name}: {len(chunk)} requests of model {self.model.name} out at {self.runner.where}")
        self._collect(entry)

    def _collect(self, entry: BatchEntry) -> None:
        """Wait for a journaled batch, read its results into `ready` and journal it collected.
        A batch written but not journaled as out is looked for at the runner first (the run was
        killed as it handed it over), and handed over again only when it is not there."""
        folder = self.settings.folder
        path = input_file(folder, entry.name)
        handle = entry.handle
        if handle is None:
            handle = self.runner.find(entry.name)
            if handle is None:
                if not path.is_file():   # written, then lost: its requests are asked again
                    self.ledger.record(replace(entry, state="failed"))
                    return
                handle = self.runner.submit(entry.name, path, entry.requests)
            entry = replace(entry, state="out", handle=handle)
            self.ledger.record(entry)
        state = self._wait(entry, handle)
        wanted = _custom_ids(path)
        found: dict[str, GenerationResult] = {}
        odd = 0
        for output in self.runner.fetch(handle, state, folder, entry.name):
            got, skipped = read_output(output, wanted)
            found.update(got)
            odd += skipped
        self.ready.update(found)
        self.ledger.record(replace(entry, state="collected"))
        missing = len(wanted) - len(found)
        self.say(f"batch {entry.name}: {len(found)} results collected"
                 + (f", {missing} requests without one (asked again)" if missing else "")
                 + (f", {odd} lines that are not results of its requests left out" if odd else ""))
        refused = [r for r in found.values() if r.reason in REFUSED]
        if found and len(refused) == len(found):
            # a service that refuses every request of a file refuses the next file as well: stop,
            # as a live run stops at its first refused request, instead of batch after batch
            raise EngineDead(f"{self.runner.where} refused every request of batch {entry.name} "
                             f"({len(found)}): {refused[0].error}")

    def _reread(self, entry: BatchEntry) -> None:
        """A collected batch's results, read again from its output files on a resume: the run
        that collected it may have ended before the results reached the result cache (killed,
        or stopped by --batch-wait on a later batch), and must not pay for them twice."""
        wanted = _custom_ids(input_file(self.settings.folder, entry.name))
        for output in output_files(self.settings.folder, entry.name):
            if output.is_file():
                got, _ = read_output(output, wanted)
                self.ready.update((k, r) for k, r in got.items() if r.error is None or r.error_kind == "deterministic")

    def _wait(self, entry: BatchEntry, handle: str) -> BatchState:
        started = noted = time.monotonic()
        deadline = None if self.settings.wait is None else started + self.settings.wait
        while True:
            state = self.runner.poll(handle)
            if state.state == "done":
                return state
            if time.monotonic() - noted >= WAIT_NOTE:  # a wait of hours says it is still waiting
                noted = time.monotonic()
                self.say(f"batch {entry.name}: still out at {self.runner.where} ({state.detail}) after "
                         f"{noted - started:.0f} s")
            if state.state == "failed":
                self.ledger.record(replace(entry, state="failed"))
                raise EngineDead(f"batch {entry.name} failed at {self.runner.where} ({state.detail}); its requests "
                                 "are sent again in a new batch on the next run")
            if deadline is not None and time.monotonic() >= deadline:
                raise EngineDead(f"batch {entry.name} ({entry.requests} requests) is still out at "
                                 f"{self.runner.where} ({state.detail}); it is journaled, so the next run collects "
                                 "it instead of sending it again")
            time.sleep(self.settings.poll)

    def close(self) -> None:
        return


def _files(todo: dict[str, GenerationRequest], line: Callable[[str, GenerationRequest], str]) -> list[dict[str, str]]:
    """The requests' lines (custom_id -> line), split into batch files of at most
    MAX_BATCH_REQUESTS lines and MAX_BATCH_BYTES bytes (a line larger alone gets a file alone)."""
    files: list[dict[str, str]] = []
    size = 0
    for k, r in todo.items():
        text = line(k, r)
        n = len(text.encode("utf-8"))
        if not files or len(files[-1]) >= MAX_BATCH_REQUESTS or (files[-1] and size + n > MAX_BATCH_BYTES):
            files.append({})
            size = 0
        files[-1][k] = text
        size += n
    return files


def _custom_ids(path: Path) -> set[str]:
    """The custom_ids of an input file synthc wrote."""
    ids: set[str] = set()
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    obj = load_json(line, max_depth=64)
                except ValueError:
                    continue
                if isinstance(obj, dict) and isinstance(obj.get("custom_id"), str):
                    ids.add(obj["custom_id"])
    except OSError:
        return ids
    return ids


class BatchFactory:
    """The engine factory of a run with batch files: a BatchEngine for each batched model, the
    model's own engine (or the factory before this one) for the rest."""

    def __init__(self, models: dict[str, ir.Model], options: RunOptions, ledger: BatchLedger, mode: str,
                 folder: Path, previous: Callable[[ir.Model], Engine] | None = None):
        self.options = options
        self.ledger = ledger
        self.previous = previous
        self.batched = set(batched_models(models, mode))
        poll = options.batch_poll if options.batch_poll is not None else DEFAULT_POLL[mode]
        self.settings = BatchSettings(mode, folder, poll, options.batch_wait)

    def __call__(self, model: ir.Model) -> Engine:
        if model.name not in self.batched:
            return self.previous(model) if self.previous else get_engine(model, self.options.engine_options)
        ensure_dir(self.settings.folder, self.options.root or self.options.out_dir)
        eo = self.options.engine_options
        runner: BatchRunner = (BatchAPI(model, eo) if self.settings.mode == "api"
                               else OfflineRunner(model, self.settings.folder))
        return BatchEngine(model, runner, self.settings, self.ledger, model_identity(model, eo, sha256_file),
                           constrained=eo.constrained)
