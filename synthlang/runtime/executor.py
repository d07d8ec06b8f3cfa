"""run_plan: execute a Plan on engines, exactly (quotas met after every filter) and
resumably (an append-only journal; a killed run continues where it stopped).

Per record: sample -> examples -> prompt -> constrained generation -> validate -> derive ->
check -> judge -> dedup -> noise. Records of a cell are taken in attempt order, so the data
does not depend on batching, on interruptions, or on how often a run was resumed."""

from __future__ import annotations

import json
import math
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import ir
from ..engines.base import Engine, EngineDead, EngineOptions, GenerationRequest, GenerationResult
from ..engines.capabilities import check_capabilities
from ..engines.probe import run_probe
from ..engines.registry import get_engine
from ..expr import EvalError, Unknown, evaluate, passes, to_source
from ..files import ensure_dir, write_json_atomic, write_text_atomic
from ..plan.model import Block, Plan
from ..values import ValueError_, check_record, check_value, match_key
from .dedup import Deduper
from .journal import Journal, JournalCorrupt
from .mentions import find_spans, mention_pattern
from .noise import apply_noise
from .progress import Progress
from .prompts import judge_messages, messages_for
from .sampling import SamplingError, draw_fields, get_path, set_path
from .seeding import record_id, record_seed, sub_rng
from .sinks import block_prefix, write_block

RUN_DIR = ".synth"


class CellFailed(Exception):
    """A quota cell could not be filled within its attempt budget."""


@dataclass
class RunOptions:
    out_dir: Path
    root: Path | None = None                 # nothing is written outside this tree (default: out_dir)
    fresh: bool = False
    batch: int | None = None                 # requests per engine call; None: what suits the engine
    max_attempts: int | None = None          # per cell; default max(50, 20 x its count)
    retries: int = 3                         # per request, on engine errors
    probe: bool = True
    progress: bool | None = None             # None: live line on a terminal, log lines otherwise
    engine_factory: Callable[[ir.Model], Engine] | None = None
    engine_options: EngineOptions = field(default_factory=EngineOptions)
    ray: str | None = None                   # None: this process; "local" or a cluster address
    workers: int | None = None               # Ray workers, one engine each (default: the cluster's CPUs)


@dataclass
class BlockState:
    accepted: list[int]                      # per cell
    next_attempt: list[int]
    attempts: list[int]
    rejections: Counter = field(default_factory=Counter)
    cell_rejections: list[Counter] = field(default_factory=list)
    tokens: int = 0
    engine_seconds: float = 0.0


@dataclass
class RunReport:
    out_dir: Path
    manifest: dict
    files: list[Path]


class Runner:
    def __init__(self, plan: Plan, options: RunOptions):
        self.plan = plan
        self.opt = options
        self.engines: dict[str, Engine] = {}
        self.schemas = plan.schemas.get
        self.wall_start = time.perf_counter()
        self.engine_seconds = 0.0
        self.startup_seconds = 0.0               # engine loading and conformance probes
        self.new_records: dict[str, int] = {}    # records accepted by this invocation, per block
        self.split_counts: dict[str, dict] = {}  # block -> split -> file and row count
        self.pool = LocalPool(self)
        self._example_index: dict[str, dict[str, list[dict]]] = {}

    # engines ----------------------------------------------------------------------------------
    def engine(self, model_name: str) -> Engine:
        if model_name not in self.engines:
            started = time.perf_counter()
            model = self.plan.models[model_name]
            factory = self.opt.engine_factory or (lambda m: get_engine(m, self.opt.engine_options))
            engine = factory(model)
            if self.opt.probe:
                run_probe(engine, model.temperature, model.top_p)
                blocks = [b for b in self.plan.blocks if b.model == model_name]
                judged = [b for b in self.plan.blocks if b.judge is not None and b.judge.model == model_name]
                check_capabilities(engine, blocks, judged)
            self.engines[model_name] = engine
            self.startup_seconds += time.perf_counter() - started
        return self.engines[model_name]

    def close(self) -> None:
        for engine in self.engines.values():
            engine.close()
        self.pool.close()

    def _generate(self, model_name: str, requests: list[GenerationRequest]) -> list[GenerationResult]:
        engine = self.engine(model_name)  # loads on first use; timed as start-up, not engine work
        start = time.perf_counter()
        results = engine.generate(requests)
        for _ in range(self.opt.retries):
            failed = [i for i, r in enumerate(results) if r.error is not None]
            if not failed:
                break
            again = engine.generate([requests[i] for i in failed])
            for i, r in zip(failed, again):
                results[i] = r
        self.engine_seconds += time.perf_counter() - start
        return results

    # one attempt -------------------------------------------------------------------------------
    def _prepare(self, block: Block, ci: int, attempt: int):
        """(seed, values, request) or (seed, None, reason) when no request can be made."""
        cell = block.cells[ci]
        seed = record_seed(self.plan.hash, block.id, ci, attempt)
        rng = sub_rng(seed, "sample")
        values: dict = {}
        try:
            for _ in range(20):
                values = draw_fields(block, rng, self.schemas)
                values.update(cell.key)
                schema = self._schema_with_mentions(block, values)
                if schema is not None:
                    break
            else:
                return seed, None, "mentions_do_not_fit"
        except SamplingError as exc:
            return seed, None, f"sampling: {exc}"
        examples = self._examples(block, values, seed)
        context = {**values, "examples": examples, "dataset": self.plan.dataset.model_dump()}
        try:
            messages = messages_for(block, context, schema)
        except Exception as exc:
            return seed, None, f"prompt: {type(exc).__name__}: {exc}"
        model = self.plan.models[block.model]
        request = GenerationRequest(messages=messages, json_schema=schema, max_tokens=block.max_tokens,
                                    seed=seed, temperature=model.temperature, top_p=model.top_p)
        return seed, values, request

    def _schema_with_mentions(self, block: Block, values: dict) -> dict | None:
        if not block.mentions:
            return block.json_schema
        schema = json.loads(json.dumps(block.json_schema))
        for mc in block.mentions:
            parent = get_path(values, mc.path[:-1]) if len(mc.path) > 1 else values
            vals = [str((parent or {}).get(m)) for m in mc.values]
            pattern = mention_pattern(mc, vals)
            if pattern is None:
                return None
            node = schema
            for part in mc.path:
                node = node["properties"][part]
                if "anyOf" in node:
                    node = node["anyOf"][0]
            # the pattern's gap bounds already keep the length in range; llguidance cannot
            # intersect a long pattern with length bounds, so they are left to the pattern
            node.pop("minLength", None)
            node.pop("maxLength", None)
            node["pattern"] = pattern
        return schema

    def _examples(self, block: Block, values: dict, seed: int) -> list[dict]:
        ex = block.examples
        if ex is None:
            return []
        index = self._example_index.get(block.id)
        if index is None:  # seed rows by their matching values, built once per block
            index = self._example_index[block.id] = {}
            for r in self.plan.seeds[ex.seeds].rows:
                index.setdefault(match_key([r.get(m) for m in ex.matching]), []).append(r)
        rows = index.get(match_key([values.get(m) for m in ex.matching]), [])
        rng = sub_rng(seed, "examples")
        return rng.sample(rows, min(ex.n, len(rows)))

    def attempt_batch(self, block_id: str, ci: int, attempts: list[int]) -> list[dict]:
        """Everything about a batch of attempts that does not depend on other records: sample,
        prompt, generate, validate, derive, check, judge. Returns one candidate per attempt, in
        order (JSON-serialisable, so a remote worker can produce them)."""
        block = self.plan.block(block_id)
        prepared = [self._prepare(block, ci, a) for a in attempts]
        requests = [p[2] for p in prepared if p[1] is not None]
        results = iter(self._generate(block.model, requests)) if requests else iter(())
        out = []
        for attempt, (seed, values, req_or_reason) in zip(attempts, prepared):
            if values is None:
                out.append({"b": block.id, "c": ci, "a": attempt, "ok": False, "why": req_or_reason})
            else:
                out.append(self._evaluate(block, ci, attempt, seed, values, next(results)))
        return out

    def _evaluate(self, block: Block, ci: int, attempt: int, seed: int, values: dict,
                  result: GenerationResult) -> dict:
        """Validate, derive, check and judge one generated record -> a candidate entry."""
        entry = {"b": block.id, "c": ci, "a": attempt, "tok": result.tokens, "t": round(result.seconds, 4)}
        if result.error is not None:
            return {**entry, "ok": False, "why": "engine_error", "err": result.error[:300]}
        schema = self.plan.schemas[block.schema_name]
        try:
            written = json.loads(result.text)
        except (json.JSONDecodeError, TypeError):
            return {**entry, "ok": False, "why": "invalid_output", "err": (result.text or "")[:300]}
        expected = set(block.json_schema.get("properties", {}))
        if not isinstance(written, dict) or set(written) != expected:
            return {**entry, "ok": False, "why": "invalid_output", "err": (result.text or "")[:300]}
        record = _merge(values, written)
        try:
            for name in expected:
                f = schema.field(name)
                if not (f.optional and record.get(name) is None):
                    check_value(f.type, record[name], self.schemas, name, require_generated=False)
        except ValueError_ as exc:
            return {**entry, "ok": False, "why": "invalid_output", "err": f"{exc.path}: {exc.message}"}
        spans: dict = {}
        for mc in block.mentions:
            parent = get_path(record, mc.path[:-1]) if len(mc.path) > 1 else record
            vals = [str(parent.get(m)) for m in mc.values]
            found = find_spans(mc, str(parent.get(mc.path[-1])), vals)
            if found is None:
                return {**entry, "ok": False, "why": "mentions_missing"}
            spans[".".join(mc.path)] = [(s, e) for s, e in found]
        for d in block.derived:
            parent = get_path(record, d.path[:-1]) if len(d.path) > 1 else record
            try:
                value = evaluate(d.expr, parent)
            except (EvalError, Unknown, TypeError, ValueError, OverflowError) as exc:
                return {**entry, "ok": False, "why": f"derived: {'.'.join(d.path)}", "err": str(exc)}
            if isinstance(value, float) and value.is_integer() and self._is_int_field(schema, d.path):
                value = int(value)
            set_path(record, d.path, value)
        try:
            record = check_record(schema, record, self.schemas, require_generated=True)
        except ValueError_ as exc:
            return {**entry, "ok": False, "why": "invalid_record", "err": f"{exc.path}: {exc.message}"}
        for check in block.checks:
            if not passes(check, record):
                return {**entry, "ok": False, "why": f"check: {to_source(check)}"}
        judge_score = None
        if block.judge is not None:
            judge_score = self._judge(block, record, seed)
            if judge_score is None:
                return {**entry, "ok": False, "why": "judge_error"}
            if judge_score < block.judge.min_score:
                return {**entry, "ok": False, "why": "judge", "score": judge_score}
        return {**entry, "ok": True, "record": record, "spans": {k: [list(x) for x in v] for k, v in spans.items()},
                "seed": seed, "judge": judge_score}

    def _accept(self, block: Block, candidate: dict, deduper: Deduper) -> dict:
        """Dedup against everything kept so far, then noise and provenance -> journal entry.
        Runs in the driver, in attempt order, so the result never depends on parallelism."""
        if not candidate["ok"]:
            return candidate
        entry = {k: candidate[k] for k in ("b", "c", "a", "tok", "t")}
        ci, attempt, seed = candidate["c"], candidate["a"], candidate["seed"]
        record, judge_score = candidate["record"], candidate["judge"]
        spans = {k: [tuple(x) for x in v] for k, v in candidate["spans"].items()}
        schema = self.plan.schemas[block.schema_name]
        dup = deduper.duplicate_of(record)
        if dup is not None:
            return {**entry, "ok": False, "why": f"dedup: {dup}"}
        clean = {d.field: record.get(d.field) for d in block.dedup}
        deduper.add(record)
        top_spans = {k: v for k, v in spans.items() if "." not in k}
        applied, truth = apply_noise(block.noise, record, schema, top_spans, sub_rng(seed, "noise"), self.schemas)
        spans.update(top_spans)
        meta: dict = {
            "id": record_id(block.id, ci, attempt), "source": "synthetic", "block": block.id,
            "cell": block.cells[ci].key, "attempt": attempt, "seed": seed, "model": block.model,
            "plan": self.plan.hash, "noise": applied,
        }
        if spans:
            meta["spans"] = {
                path: [{"field": m, "start": s, "end": e} for m, (s, e) in zip(mc.values, spans[path])]
                for mc in block.mentions for path in [".".join(mc.path)]}
        if truth:
            meta["truth"] = truth
        if judge_score is not None:
            meta["judge"] = judge_score
        return {**entry, "ok": True, "rec": {**record, "_meta": meta}, "dd": clean}

    def _is_int_field(self, schema: ir.Schema, path) -> bool:
        node = schema
        for part in path[:-1]:
            node = self.plan.schemas[node.field(part).type.name]
        f = node.field(path[-1])
        return f is not None and isinstance(f.type, ir.IntType)

    def _judge(self, block: Block, record: dict, seed: int) -> int | None:
        judge = block.judge
        model = self.plan.models[judge.model]
        request = GenerationRequest(messages=judge_messages(judge.rubric, record), json_schema=block.judge_schema,
                                    max_tokens=16, seed=seed ^ 0x5A5A, temperature=model.temperature,
                                    top_p=model.top_p)
        result = self._generate(judge.model, [request])[0]
        try:
            score = json.loads(result.text)["score"]
        except (TypeError, KeyError, json.JSONDecodeError):
            return None
        return score if isinstance(score, int) and 1 <= score <= 5 else None

    # the run -----------------------------------------------------------------------------------
    def run(self) -> RunReport:
        root = self.opt.root or self.opt.out_dir
        # every folder on the way is checked: a symlink planted in the tree cannot lead out
        out = self.opt.out_dir = ensure_dir(self.opt.out_dir, root)
        run_dir = out / RUN_DIR
        if self.opt.fresh and (run_dir.exists() or run_dir.is_symlink()):
            if run_dir.is_symlink() or not run_dir.is_dir():
                run_dir.unlink()
            else:
                shutil.rmtree(run_dir)
        ensure_dir(run_dir, root)
        journal = Journal(run_dir / "journal.jsonl", self.plan.hash)
        states = {b.id: BlockState([0] * len(b.cells), [0] * len(b.cells), [0] * len(b.cells),
                                   cell_rejections=[Counter() for _ in b.cells]) for b in self.plan.blocks}
        dedupers = {b.id: Deduper(b.dedup, self._seed_rows(b)) for b in self.plan.blocks}
        try:
            resumed = self._replay(journal, states, dedupers)
            try:
                for block in self.plan.blocks:
                    self._run_block(block, states[block.id], dedupers[block.id], journal)
            except CellFailed:
                self._write_manifest(states, complete=False, resumed=resumed, files=[])
                raise
        finally:
            journal.close()
        files = self._write_outputs(journal, states)
        write_text_atomic(out / "plan.json", self.plan.to_json())
        manifest = self._write_manifest(states, complete=True, resumed=resumed, files=files)
        from ..evaluate.report import write_report

        write_report(out)
        return RunReport(out, manifest, files)

    def _seed_rows(self, block: Block) -> list[dict]:
        return [r for s in self.plan.seeds.values() if s.schema_name == block.schema_name for r in s.rows]

    def _replay(self, journal: Journal, states: dict, dedupers: dict) -> int:
        n = 0
        for e in journal.entries():
            st = states.get(e["b"])
            if st is None:
                continue
            n += 1
            ci = e["c"]
            if not 0 <= ci < len(st.accepted):
                raise JournalCorrupt(f"{journal.path}: an entry names cell {ci} of block {e['b']}, which has "
                                     f"{len(st.accepted)}")
            st.attempts[ci] += 1
            st.next_attempt[ci] = max(st.next_attempt[ci], e["a"] + 1)
            st.tokens += e.get("tok", 0)
            st.engine_seconds += e.get("t", 0.0)
            if e["ok"]:
                st.accepted[ci] += 1
                dedupers[e["b"]].add(e.get("dd", {}))
            else:
                st.rejections[e["why"]] += 1
                st.cell_rejections[ci][e["why"]] += 1
        return n

    def _run_block(self, block: Block, st: BlockState, deduper: Deduper, journal: Journal) -> None:
        progress = Progress(block.id, len(block.cells), block.count, self.opt.progress)
        new_records = 0
        for ci, cell in enumerate(block.cells):
            budget = self.opt.max_attempts or max(50, 20 * cell.count)
            while st.accepted[ci] < cell.count:
                if st.attempts[ci] >= budget:
                    raise CellFailed(self._cell_failure(block, ci, st, budget))
                # no more attempts than the cell still needs at the block's pass rate so far
                # (the size of a wave never changes which records are kept)
                rate = sum(st.accepted) / sum(st.attempts) if sum(st.attempts) else 1.0
                want = math.ceil((cell.count - st.accepted[ci]) / max(rate, 0.05))
                size = min(self._batch(block) * self.pool.width, budget - st.attempts[ci],
                           max(want, self.pool.width))
                attempts = list(range(st.next_attempt[ci], st.next_attempt[ci] + size))
                candidates = self.pool.run(block.id, ci, attempts)
                if not isinstance(self.pool, LocalPool):  # remote engines: their time is in the entries
                    self.engine_seconds += sum(c.get("t", 0.0) for c in candidates)
                entries = []
                for attempt, candidate in zip(attempts, candidates):
                    if st.accepted[ci] >= cell.count:
                        break  # the cell is full; later attempts of the batch are not used
                    entry = self._accept(block, candidate, deduper)
                    entries.append(entry)
                    st.attempts[ci] += 1
                    st.next_attempt[ci] = attempt + 1
                    st.tokens += entry.get("tok", 0)
                    st.engine_seconds += entry.get("t", 0.0)
                    if entry["ok"]:
                        st.accepted[ci] += 1
                        new_records += 1
                    else:
                        st.rejections[entry["why"]] += 1
                        st.cell_rejections[ci][entry["why"]] += 1
                journal.append(entries)
                cells_done = sum(1 for i, c in enumerate(block.cells) if st.accepted[i] >= c.count)
                progress.update(cells_done, sum(st.accepted), sum(st.attempts), new_records)
        progress.update(len(block.cells), sum(st.accepted), sum(st.attempts), new_records, force=True)
        self.new_records[block.id] = new_records

    def _batch(self, block: Block) -> int:
        if self.opt.batch:
            return self.opt.batch
        model = self.plan.models[block.model]
        # vLLM schedules large batches continuously; a server gets what it can run at once
        return {"vllm": 64, "openai": 2 * model.concurrency}.get(model.engine, 4)

    def _cell_failure(self, block: Block, ci: int, st: BlockState, budget: int) -> str:
        cell = block.cells[ci]
        shown = ", ".join(f"{k}={v}" for k, v in cell.key.items()) or "(the whole block)"
        rate = st.accepted[ci] / st.attempts[ci] if st.attempts[ci] else 0.0
        top = ", ".join(f"{why} ({n})" for why, n in st.cell_rejections[ci].most_common(3)) or "none"
        return (f"block {block.id}: cell {shown} holds {st.accepted[ci]} of {cell.count} records after "
                f"{st.attempts[ci]} attempts (the budget is {budget}); pass rate {rate:.1%}; top rejection "
                f"reasons: {top}. What was made is kept; rerun with a larger --max-attempts to go on.")

    def _accepted_records(self, journal: Journal, block_id: str):
        for e in journal.entries():
            if e["b"] == block_id and e["ok"]:
                yield e["rec"]

    def _write_outputs(self, journal: Journal, states: dict) -> list[Path]:
        out = self.opt.out_dir
        files = []
        for block in self.plan.blocks:
            result = write_block(self.plan, block.id, self._accepted_records(journal, block.id),
                                 sum(states[block.id].accepted), out, block_prefix(self.plan, block.id))
            self.split_counts[block.id] = result
            files += [out / v["path"] for v in result.values()]
        return files

    def _write_manifest(self, states: dict, complete: bool, resumed: int, files: list[Path]) -> dict:
        wall = time.perf_counter() - self.wall_start
        blocks = {}
        total_new = 0
        for block in self.plan.blocks:
            st = states[block.id]
            blocks[block.id] = {
                "schema": block.schema_name, "count": block.count, "accepted": sum(st.accepted),
                "attempts": sum(st.attempts),
                "acceptance_rate": round(sum(st.accepted) / sum(st.attempts), 4) if sum(st.attempts) else None,
                "rejections": dict(st.rejections.most_common()), "tokens": st.tokens,
                "engine_seconds": round(st.engine_seconds, 3),
                "cells": [{"key": c.key, "count": c.count, "accepted": st.accepted[i], "attempts": st.attempts[i],
                           "rejections": dict(st.cell_rejections[i].most_common())}
                          for i, c in enumerate(block.cells)],
                "splits": self.split_counts.get(block.id, {}),
            }
            total_new += sum(st.accepted)
        made_now = sum(self.new_records.values())
        manifest = {
            "kind": "manifest", "complete": complete, "plan": self.plan.hash, "dataset": self.plan.dataset.name,
            "format": self.plan.output.format, "files": [f.name for f in files],
            "journal_entries_replayed": resumed, "wall_seconds": round(wall, 3),
            "engine_seconds_this_run": round(self.engine_seconds, 3),
            "records_this_run": made_now,
            "records_per_second": round(made_now / wall, 4) if wall > 0 else None,
            "startup_seconds": round(self.startup_seconds, 3),
            "outside_engine_share": round(1 - self.engine_seconds / wall, 4) if wall > 0 else None,
            "outside_engine_share_after_startup": (
                round(1 - self.engine_seconds / (wall - self.startup_seconds), 4)
                if wall - self.startup_seconds > 0 else None),
            "blocks": blocks,
        }
        write_json_atomic(self.opt.out_dir / "manifest.json", manifest)
        return manifest


class LocalPool:
    """Attempts evaluated in this process, one batch at a time."""

    width = 1

    def __init__(self, runner: Runner):
        self.runner = runner

    def run(self, block_id: str, ci: int, attempts: list[int]) -> list[dict]:
        return self.runner.attempt_batch(block_id, ci, attempts)

    def close(self) -> None:
        return None


def _merge(values: dict, written: dict) -> dict:
    out = dict(values)
    for k, v in written.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def run_plan(plan: Plan, options: RunOptions) -> RunReport:
    runner = Runner(plan, options)
    if options.ray is not None:
        from .distributed import RayPool

        runner.pool = RayPool(plan, options)
    try:
        return runner.run()
    finally:
        runner.close()


__all__ = ["CellFailed", "EngineDead", "RunOptions", "RunReport", "run_plan"]
