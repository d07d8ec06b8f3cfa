"""run_plan: execute a Plan exactly (quotas met after every filter) and resumably (an
append-only journal; a killed run continues where it stopped).

The driver owns what needs the global view: the journal, quotas and attempt budgets, how many
attempts are in flight, acceptance in attempt order (dedup, noise, provenance), then the output
files and the manifest. Attempts themselves are evaluated by a Pool (this process, or Ray
workers), several cells' attempts at once so a batching engine stays full. Cells are accepted
one after another and a cell's records in attempt order, so the data depends on waves,
workers, interruptions and resumes only as far as the engine's output depends on what shares
its batch."""

from __future__ import annotations

import errno
import math
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from ..files import UnsafePath, ensure_dir, write_text_atomic
from ..plan.model import Block, Plan
from ..values import ValueError_, check_record
from .acceptance import accept
from .dedup import Deduper
from .entries import PENDING, Candidate, JournalEntry
from .journal import Journal, JournalCorrupt
from .manifest import BlockState, RunTimes, write_manifest
from .noise import restore_truth
from .options import RunOptions
from .pool import LocalPool, Pool
from .progress import Progress
from .seeding import record_id
from .sinks import write_block

if TYPE_CHECKING:
    from .batch_engine import JournalLedger

RUN_DIR = ".synth"
JOURNAL = "journal.jsonl"
CACHE_DIR = "cache"         # the result cache's default folder, in RUN_DIR
ENGINE_LOG = "engine.log"   # what vLLM and llama.cpp print, in RUN_DIR (engines/engine_log.py)


# A block whose first attempts all fail before any request for one and the same reason (a
# template that cannot render, a sampler that cannot draw) stops after this many: more attempts
# of the same plan fail the same way, and each can cost a render's whole time limit.
SAME_FAILURE_STOP = 5
_BEFORE_REQUEST = ("prompt:", "sampling:", "mentions_do_not_fit")
# rejections decided by the spec and the values drawn, not by what a model wrote
_SAME_EVERY_TIME = (*_BEFORE_REQUEST, "derived:")


class CellFailed(Exception):
    """A quota cell could not be filled within its attempt budget."""


class SameFailures:
    """Counts a block's attempts failing in a row, before any request, for one reason; None
    once any attempt of the block got further."""

    def __init__(self, accepted_before: int):
        self.reason: str | None = None
        self.run = 0
        self.live = accepted_before == 0

    def add(self, entry: JournalEntry) -> str | None:
        """The reason, once SAME_FAILURE_STOP attempts in a row failed for it; else None."""
        if not self.live:
            return None
        why = entry.why or ""
        # a later step's template fails after the first step's request was sent: not counted
        if entry.ok or not why.startswith(_BEFORE_REQUEST) or (entry.step or 1) != 1 or entry.tokens:
            self.live = False
            return None
        self.run = self.run + 1 if why == self.reason else 1
        self.reason = why
        return why if self.run >= SAME_FAILURE_STOP else None


@dataclass
class RunReport:
    out_dir: Path
    manifest: dict
    files: list[Path]


class Driver:
    def __init__(self, plan: Plan, options: RunOptions, pool: Pool):
        self.plan = plan
        self.opt = options
        self.pool = pool
        self.wall_start = time.perf_counter()
        self.new_records: dict[str, int] = {}    # records accepted by this invocation, per block
        self.split_counts: dict[str, dict] = {}  # block -> split -> file and row count
        self.requests: dict[str, list[int]] = {b.id: [0, 0] for b in plan.blocks}  # sent, reused
        self.restarted = False
        self.batches: JournalLedger | None = None   # with --batch-files

    def run(self) -> RunReport:
        root = self.opt.root or self.opt.out_dir
        # every folder on the way is checked: a symlink planted in the tree cannot lead out
        out = self.opt.out_dir = ensure_dir(self.opt.out_dir, root)
        run_dir = out / RUN_DIR
        if self.opt.fresh and (run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir())):
            run_dir.unlink()
        ensure_dir(run_dir, root)
        # --fresh starts the dataset over; the result cache stays (see --no-cache)
        journal = Journal(run_dir / JOURNAL, self.plan.hash, self.plan.dataset.name, fresh=self.opt.fresh)
        self.restarted = journal.restarted
        self.batches = self._batch_files(journal, run_dir)
        states = {b.id: BlockState.empty(len(b.cells)) for b in self.plan.blocks}
        dedupers = {b.id: Deduper(b.dedup, self.plan.seed_rows(b.schema_name)) for b in self.plan.blocks}
        # the journal's lock is held until the last output is in place: a second run of this
        # folder cannot interleave its plan.json or manifest.json with this run's
        try:
            resumed = replay(self.plan, journal.entries(), journal.path, states, dedupers)
            try:
                for block in self.plan.blocks:
                    self._run_block(block, states[block.id], dedupers[block.id], journal)
            except CellFailed:
                self._write_manifest(states, complete=False, resumed=resumed, files=[])
                raise
            files = self._write_outputs(journal, states)
            write_text_atomic(out / "plan.json", self.plan.to_json())
            manifest = self._write_manifest(states, complete=True, resumed=resumed, files=files)
        finally:
            journal.close()
        return RunReport(out, manifest, files)

    def _batch_files(self, journal: Journal, run_dir: Path) -> JournalLedger | None:
        """With --batch-files: the batched models' engines send batch files, journaled here."""
        if self.opt.batch_files is None:
            return None
        from .batch_engine import BATCH_DIR, BatchFactory, JournalLedger, batched_models

        ledger = JournalLedger(journal, set(batched_models(self.plan.models, self.opt.batch_files)))
        self.opt.engine_factory = BatchFactory(self.plan.models, self.opt, ledger, self.opt.batch_files,
                                               run_dir / BATCH_DIR, previous=self.opt.engine_factory)
        return ledger

    def _run_block(self, block: Block, st: BlockState, deduper: Deduper, journal: Journal) -> None:
        progress = Progress(block.id, len(block.cells), block.count, self.opt.progress)
        new_records = 0
        ahead: dict[int, deque[Candidate]] = {}  # later cells' candidates, made with this cell's
        same = SameFailures(sum(st.accepted))
        for ci, cell in enumerate(block.cells):
            budget = self._budget(block, ci)
            queue = ahead.pop(ci, deque())
            while st.accepted[ci] < cell.count:
                if not queue:
                    if st.attempts[ci] >= budget:
                        raise CellFailed(self._cell_failure(block, ci, st, budget))
                    queue = self._wave(block, ci, st, ahead)
                    if not queue or queue[0].why == PENDING:
                        # asking for the same wave again would get the same: stop, never spin
                        raise CellFailed(f"block {block.id}: cell {self._shown(block, ci)}: a wave of attempts "
                                         f"{st.next_attempt[ci]}.. came back without a result for its first "
                                         "attempt, so the run cannot progress; what was made is kept")
                entries = []
                while queue and st.accepted[ci] < cell.count:
                    candidate = queue.popleft()
                    if candidate.why == PENDING:  # the cache served the attempts before it: ask again
                        queue.clear()
                        break
                    entry = accept(self.plan, block, candidate, deduper)
                    entries.append(entry.to_json())
                    st.count(entry)
                    if entry.ok:
                        new_records += 1
                    stop = same.add(entry)
                    if stop is not None:
                        journal.append(entries)
                        raise CellFailed(f"block {block.id}: its first {SAME_FAILURE_STOP} attempts all failed "
                                         f"before a request with {stop}; stopped early, as more attempts of "
                                         f"this plan would most likely fail the same way. Fix the spec and run "
                                         f"again.")
                journal.append(entries)
                cells_done = sum(1 for i, c in enumerate(block.cells) if st.accepted[i] >= c.count)
                progress.update(cells_done, sum(st.accepted), sum(st.attempts), new_records)
        progress.update(len(block.cells), sum(st.accepted), sum(st.attempts), new_records, force=True)
        self.new_records[block.id] = new_records

    def _budget(self, block: Block, ci: int) -> int:
        return self.opt.max_attempts or max(50, 20 * block.cells[ci].count)

    def _wave(self, block: Block, ci: int, st: BlockState, ahead: dict[int, deque[Candidate]]) -> deque[Candidate]:
        """Candidates for cell `ci`, generated together with the next cells' first attempts so
        the engine has enough requests in flight. Cells are still accepted one after another in
        attempt order, so making some candidates early changes which records are kept only as
        far as the engine's output depends on what shares its batch (docs/engines.md)."""
        target = self.pool.in_flight(block.model)
        if self.batches is not None and block.model in self.batches.models:
            target = self.batches.wave_size   # one batch file holds what every cell still needs
        # no more attempts than a cell still needs at the block's pass rate so far
        rate = sum(st.accepted) / sum(st.attempts) if sum(st.attempts) else 1.0

        def wanted(cj: int) -> int:
            need = math.ceil((block.cells[cj].count - st.accepted[cj]) / max(rate, 0.05))
            return max(0, min(need, self._budget(block, cj) - st.attempts[cj]))

        first = max(1, min(wanted(ci), target))
        work = [(ci, list(range(st.next_attempt[ci], st.next_attempt[ci] + first)))]
        room = target - first
        batched = self.batches is not None and block.model in self.batches.models
        for cj in range(ci + 1, len(block.cells)):
            if room <= 0:
                break
            if cj in ahead:
                if batched:   # its top-up goes in this batch too, not in a batch of its own later
                    n = min(self._short(block, cj, st, ahead[cj], rate), room)
                    if n > 0:
                        start = st.next_attempt[cj] + len(ahead[cj])
                        work.append((cj, list(range(start, start + n))))
                        room -= n
                continue
            n = min(wanted(cj), room)
            if n > 0:
                work.append((cj, list(range(st.next_attempt[cj], st.next_attempt[cj] + n))))
                room -= n
        if self.batches is not None:  # the batch files this wave sends name its attempts
            self.batches.making(block.id, work)
        made = self.pool.run(block.id, work)
        counts = self.requests[block.id]
        for candidates in made:
            for c in candidates:
                counts[0] += c.sent
                counts[1] += c.reused
        for (cj, _), candidates in zip(work[1:], made[1:]):
            ahead.setdefault(cj, deque()).extend(candidates)   # after what it held: attempt order
        return deque(made[0])

    def _short(self, block: Block, cj: int, st: BlockState, made: deque[Candidate], rate: float) -> int:
        """Attempts a later cell will still need once the candidates made for it are accepted, at
        the block's pass rate (those already rejected by a filter count as rejected; dedup may
        reject more, then a later wave tops it up). Within its attempt budget."""
        if any(c.why == PENDING for c in made):
            return 0   # part of what was made for it is not known yet
        missing = block.cells[cj].count - st.accepted[cj] - sum(1 for c in made if c.ok)
        if missing <= 0:
            return 0
        room = self._budget(block, cj) - st.attempts[cj] - len(made)
        return max(0, min(math.ceil(missing / max(rate, 0.05)), room))

    @staticmethod
    def _shown(block: Block, ci: int) -> str:
        return ", ".join(f"{k}={v}" for k, v in block.cells[ci].key.items()) or "(the whole block)"

    def _cell_failure(self, block: Block, ci: int, st: BlockState, budget: int) -> str:
        cell = block.cells[ci]
        shown = self._shown(block, ci)
        rate = st.accepted[ci] / st.attempts[ci] if st.attempts[ci] else 0.0
        reasons = st.cell_rejections[ci].most_common()
        top = ", ".join(f"{why} ({n})" for why, n in reasons[:3]) or "none"
        if st.accepted[ci] == 0 and len(reasons) == 1 and reasons[0][0].startswith(_SAME_EVERY_TIME):
            # one reason for every attempt, of a kind a spec decides (a derived field that cannot
            # be computed, a template, a sampler): more attempts fail the same way
            advice = "every attempt failed for this one reason; fix the spec, more attempts would fail the same way."
        else:
            advice = "What was made is kept; rerun with a larger --max-attempts to go on."
        return (f"block {block.id}: cell {shown} holds {st.accepted[ci]} of {cell.count} records after "
                f"{st.attempts[ci]} attempts (the budget is {budget}); pass rate {rate:.1%}; top rejection "
                f"reasons: {top}. {advice}")

    @staticmethod
    def _accepted_records(journal: Journal, block_id: str) -> Iterator[dict]:
        for e in journal.entries():
            if e["b"] == block_id and e["ok"]:
                yield e["rec"]

    def _write_outputs(self, journal: Journal, states: dict[str, BlockState]) -> list[Path]:
        out = self.opt.out_dir
        files = []
        for block in self.plan.blocks:
            result = write_block(self.plan, block.id, partial(self._accepted_records, journal, block.id), out)
            self.split_counts[block.id] = result
            files += [out / v["path"] for v in result.values()]
        return files

    def _write_manifest(self, states: dict[str, BlockState], complete: bool, resumed: int,
                        files: list[Path]) -> dict:
        times = RunTimes(wall=time.perf_counter() - self.wall_start, engine=self.pool.engine_seconds(),
                         startup=self.pool.startup_seconds())
        identities = {name: self.pool.identity(name) for name in self.plan.models}
        return write_manifest(self.plan, self.opt.out_dir, states, self.split_counts, self.new_records, times,
                              complete, resumed, files, self.requests, identities, self.restarted)


def replay(plan: Plan, entries: Iterable[dict], path: Path, states: dict[str, BlockState],
           dedupers: dict[str, Deduper]) -> int:
    """Rebuild the blocks' counters and dedup indexes from a journal of this plan; returns how
    many entries it held. A journaled record is checked as a generated one was before it was
    written: a hand-edited journal cannot put a record that breaks its schema into the dataset."""
    n = 0
    seen: set[tuple[str, int, int]] = set()
    for raw in entries:
        e = JournalEntry.from_json(raw)
        st = states.get(e.at.block)
        if st is None:
            continue
        n += 1
        ci = e.at.cell
        if not 0 <= ci < len(st.accepted):
            raise JournalCorrupt(f"{path}: an entry names cell {ci} of block {e.at.block}, which has "
                                 f"{len(st.accepted)}")
        # each attempt is journaled once, and a cell never holds more records than its count
        if not 0 <= e.at.attempt < MAX_ATTEMPT or (e.at.block, ci, e.at.attempt) in seen:
            raise JournalCorrupt(f"{path}: attempt {e.at.attempt} of block {e.at.block}, cell {ci} is out of "
                                 "range or journaled twice")
        seen.add((e.at.block, ci, e.at.attempt))
        block = plan.block(e.at.block)
        if e.ok and st.accepted[ci] >= block.cells[ci].count:
            raise JournalCorrupt(f"{path}: cell {ci} of block {e.at.block} holds more records than its "
                                 f"{block.cells[ci].count}")
        problem = journaled_record_problem(plan, block, e) if e.ok else None
        if problem is not None:
            raise JournalCorrupt(f"{path}: the record of block {e.at.block}, attempt {e.at.attempt} {problem}")
        st.count(e)
        if e.ok:
            dedupers[e.at.block].add(e.dedup_values or {})
    return n


def output_folder_problem(out: Path, spec_dir: Path | None, reads: Iterable[Path],
                          writes: Iterable[str] = ()) -> str | None:
    """Why the run must not write into `out`, or None: its name cannot be printed as written; it
    is the spec's own folder or holds a file the dataset is made from (the split files, plan,
    manifest and dataset card would overwrite them); or it is a folder of the user's: one that
    holds a file named like one the run `writes` (or a README.md) and shows no run of synthc
    (no .synth folder, no manifest synthc wrote)."""
    from ..files import path_text_problem

    problem = path_text_problem(str(out))
    if problem:
        return f"the output folder: {problem}"
    resolved = Path(os.path.realpath(out))
    if spec_dir is not None and resolved == Path(os.path.realpath(spec_dir)):
        return "the output folder cannot be the spec's own folder; choose e.g. --out out/my_dataset"
    for read in reads:
        real = Path(os.path.realpath(read))
        if real == resolved or resolved in real.parents:
            return f"the output folder {out} holds {read}, which the dataset is made from; choose another folder"
    if (resolved / RUN_DIR).exists() or _written_by_synthc(resolved / "manifest.json"):
        return None
    for name in ("README.md", *writes):
        found = resolved / name
        if found.is_file() and not found.is_symlink():
            return (f"the output folder {out} holds a {name} that synthc did not write (this run would replace "
                    "it); choose an empty or new folder")
    return None


def _written_by_synthc(manifest: Path) -> bool:
    """True for a manifest.json a run wrote (a folder whose .synth was deleted or ignored)."""
    from ..values import load_json

    try:
        if not manifest.is_file() or manifest.is_symlink() or manifest.stat().st_size > 64 << 20:
            return False
        data = load_json(manifest.read_text(encoding="utf-8"), max_depth=64, nan=True)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("kind") == "manifest" and "blocks" in data


# the keys of a generated record's _meta (acceptance.py and steps.py write them)
META_KEYS = frozenset({"id", "source", "block", "cell", "attempt", "seed", "model", "noise", "spans", "truth",
                       "judge", "trimmed", "steps", "candidates", "from"})
MAX_ATTEMPT = 10**12  # attempt numbers of one cell; a cell's budget is far below


def journaled_record_problem(plan: Plan, block: Block, e: JournalEntry) -> str | None:
    """What is wrong with an accepted record read back from the journal, or None: its values
    (before noise) must fit the block's schema, with nothing else beside `_meta`, and its quota
    fields must hold its cell's values."""
    record = e.record if isinstance(e.record, dict) else None
    meta = record.get("_meta") if record is not None else None
    if record is None or not isinstance(meta, dict):
        return "is not a record with its `_meta`"
    schema = plan.schemas[block.schema_name]
    values = {k: v for k, v in record.items() if k != "_meta"}
    extra = sorted(set(values) - {f.name for f in schema.fields})
    if extra:
        return f"has a field `{extra[0]}` that {schema.name} does not declare"
    truth = meta.get("truth", {})
    if not isinstance(truth, dict):
        return "has a malformed `_meta.truth`"
    # only a field a `date_format` or `drop` rule changes has a normalised value in _meta.truth
    normalised = {r.field for r in block.noise if r.rule in ("date_format", "drop")}
    odd = sorted(set(truth) - normalised)
    if odd:
        return f"has `_meta.truth` for `{odd[0]}`, which no date_format or drop rule changes"
    try:
        check_record(schema, restore_truth(values, meta), plan.schemas.get, require_generated=True)
    except ValueError_ as exc:
        return f"does not fit {schema.name}: {exc.path + ': ' if exc.path else ''}{exc.message}"
    for name, value in block.cells[e.at.cell].key.items():
        if values.get(name) != value and truth.get(name, values.get(name)) != value:
            return f"has {name} = {values.get(name)!r}, not its cell's {value!r}"
    cell = block.cells[e.at.cell].key
    expected = {"id": record_id(block.id, cell, e.at.attempt), "source": "synthetic", "block": block.id,
                "cell": cell, "attempt": e.at.attempt}
    wrong = next((k for k, v in expected.items() if meta.get(k) != v), None)
    if wrong is not None:
        return f"has `_meta.{wrong}` {meta.get(wrong)!r}, not {expected[wrong]!r}"
    unknown = sorted(set(meta) - META_KEYS)
    if unknown:
        return f"has a `_meta` key synthc does not write: {unknown[0]!r}"
    return None


def run_plan(plan: Plan, options: RunOptions, pool: Pool | None = None) -> RunReport:
    """Run a plan on `pool`: by default this process, or Ray when options.ray is set. Raises
    UnsafePath, before anything is written, for an output folder the run must not write into."""
    from ..plan.layout import output_files

    writes = ["manifest.json", "plan.json", "report.html"] + [
        p.name for b in plan.blocks for p in output_files(plan, options.out_dir, b.id).values()]
    problem = output_folder_problem(options.out_dir, options.spec_dir, options.reads, writes)
    if problem:
        raise UnsafePath(errno.EPERM, problem)
    if options.batch_files is not None and options.ray is not None:
        raise ValueError("batch files are sent and collected by this process: --batch-files cannot be combined "
                         "with --ray")
    if pool is None:
        if options.ray is not None:
            from .distributed import RayPool

            pool = RayPool(plan, options)
        else:
            pool = LocalPool(plan, options)
    try:
        return Driver(plan, options, pool).run()
    finally:
        pool.close()
