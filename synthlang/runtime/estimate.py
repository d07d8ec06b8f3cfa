"""`synthc plan`: what a run of the spec would do, without sending an engine anything.

The dry run goes through the same attempts as a run, in the same order, answering from the
journal (when it is of this plan) and the result cache only. Per block and quota cell it counts
the records that come back without a request (`reused`) and the records still to make, and
estimates what making them costs: requests from the block's acceptance measured on the cached
attempts (or the last run's), tokens from the cached results (or the worst case the bounds
allow), time from the tokens per second the cache measured for the model. Records of the last
run that the new plan does not keep are counted as dropped."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import ir
from ..engines.batch_format import MAX_BATCH_REQUESTS
from ..files import read_bytes
from ..plan.model import Block, Plan, SampledField
from ..values import MAX_STORED_BYTES, MAX_STORED_DEPTH, load_json
from .acceptance import accept
from .attempts import Attempts
from .batch_engine import batched_models
from .cache import identity_key
from .dedup import Deduper
from .drawn_rows import DrawnFileError, DrawnRows
from .driver import JOURNAL, RUN_DIR, replay
from .entries import PENDING
from .journal import read_entries, read_header
from .manifest import BlockState
from .options import RunOptions

DRY_WAVE = 64           # attempts looked up at once
MIN_MEASURED = 5        # attempts needed before a measured acceptance is trusted


@dataclass
class CellEstimate:
    key: dict[str, Any]
    count: int
    reused: int = 0                 # records that come back without an engine request
    to_generate: int = 0
    requests: int = 0               # estimated generation requests for them
    budget_exhausted: bool = False  # the cell's attempt budget runs out on cached attempts alone
    drawn: list[str] = field(default_factory=list)   # how the fields drawn by the cell's values are drawn in it


@dataclass
class BlockEstimate:
    id: str
    model: str
    count: int
    cells: list[CellEstimate]
    reused: int = 0
    to_generate: int = 0
    requests: int = 0
    judge_requests: int = 0
    tokens: int = 0
    seconds: float | None = None
    acceptance: float | None = None
    acceptance_from: str = "unknown"   # "cache", "last run" or "unknown" (then one request per record)
    tokens_from: str = "bounds"        # "cache" (mean tokens of the cached results) or "bounds" (max_tokens)
    tokens_per_second: float | None = None
    dropped: int = 0                   # records of the last run the new plan does not keep
    batches: int | None = None         # with --batch-files: the batch files of the first round
    topup_batches: int | None = None   # ... and about this many more at most, for rejected attempts
    conditional: list[str] = field(default_factory=list)  # fields drawn by other drawn fields' values


@dataclass
class PlanEstimate:
    plan: str
    dataset: str
    out_dir: str
    cache: str | None
    last_run_plan: str | None
    resumes: bool                      # the journal is of this plan: the run goes on from it
    blocks: list[BlockEstimate] = field(default_factory=list)
    dropped_blocks: dict[str, int] = field(default_factory=dict)  # blocks no longer in the spec

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    @property
    def requests(self) -> int:
        return sum(b.requests + b.judge_requests for b in self.blocks)


@dataclass
class _Observed:
    """What the cached attempts of a block show."""

    attempts: int = 0
    accepted: int = 0
    judged: int = 0
    tokens: int = 0
    results: int = 0


def estimate(plan: Plan, options: RunOptions) -> PlanEstimate:
    out = options.out_dir
    journal = out / RUN_DIR / JOURNAL
    header = read_header(journal) if journal.is_file() else None
    resumes = header is not None and header.get("plan") == plan.hash
    states = {b.id: BlockState.empty(len(b.cells)) for b in plan.blocks}
    dedupers = {b.id: Deduper(b.dedup, plan.seed_rows(b.schema_name)) for b in plan.blocks}
    if resumes:
        replay(plan, read_entries(journal), journal, states, dedupers)
    previous = _previous_records(journal) if header is not None and not resumes else {}
    last = _last_manifest(out)
    attempts = Attempts(plan, options, dry=True)
    result = PlanEstimate(plan.hash, plan.dataset.name, str(out),
                          str(options.cache_dir) if options.cache_dir is not None else None,
                          header.get("plan") if header else None, resumes)
    try:
        for block in plan.blocks:
            result.blocks.append(_block(plan, block, options, attempts, states[block.id], dedupers[block.id],
                                        previous.get(block.id, set()), last.get(block.id, {})))
    finally:
        attempts.close()
    result.dropped_blocks = {b: len(ids) for b, ids in previous.items() if b not in {x.id for x in plan.blocks}}
    return result


def requests_per_attempt(block: Block) -> float:
    """Engine requests one attempt sends at most: one per step (a dialogue: its mean number of
    rounds times its turns; candidates: N, and N judge requests), one for a one-prompt block.
    Steps a check stops before, or a condition skips, make the real number lower."""
    if not block.steps:
        return 1.0
    total = 0.0
    for step in block.steps:
        if step.turns and step.rounds is not None:
            total += (step.rounds[0] + step.rounds[1]) / 2 * len(step.turns)
        elif step.candidates:
            total += 2 * step.candidates
        else:
            total += 1
    return total


def _walk_sampled(sampled: tuple[SampledField, ...]) -> list[SampledField]:
    """The sampled fields and those of drawn lists' items (paths from the record)."""
    out = []
    for sf in sampled:
        out.append(sf)
        out += [sub.copy(path=sf.path + sub.path) for sub in _walk_sampled(sf.items)]
    return out


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else json.dumps(value, ensure_ascii=False) \
        if isinstance(value, str) else str(value)


def cell_draws(plan: Plan, block: Block, key: dict[str, Any], drawn: DrawnRows) -> list[str]:
    """How each field drawn by a quota field's value is drawn in the cell `key`: the case it
    gets (`product ~ pick("API", "web dashboard")`) or the rows it draws from."""
    out = []
    for sf in block.sampled:
        s = sf.sampler
        cond = ir.condition_of(s)
        if len(sf.path) != 1 or cond is None or cond not in key:
            continue
        name = sf.path[0]
        if isinstance(s, ir.ConditionalSampler):
            case = s.case_for(key[cond])
            if case is None:
                out.append(f"{name}: no case")
            elif case.weights is not None:
                options = ir.options_of(sf.type) or ()
                shown = ", ".join(f"{str(o).lower() if isinstance(o, bool) else o} {w:g}"
                                  for o, w in zip(options, case.weights))
                out.append(f"{name} ~ weights({shown})")
            else:
                out.append(f"{name} ~ pick({', '.join(_shown(v) for v in case.values or ())})")
        elif isinstance(s, ir.DrawSampler):
            try:
                n = drawn.rows_matching(s, key[cond])
            except DrawnFileError as exc:
                out.append(f"{name} ~ {s.text()}: {exc}")
                continue
            weighted = f", weighted by {s.weight}" if s.weight else ""
            out.append(f"{name} ~ one of {n:,} row{'s' if n != 1 else ''} of {s.seeds}{weighted}")
    return out


def _block(plan: Plan, block: Block, options: RunOptions, attempts: Attempts, st: BlockState, deduper: Deduper,
           previous: set[str], last: dict) -> BlockEstimate:
    seen = _Observed()
    kept: set[str] = set()
    cells = []
    for ci, cell in enumerate(block.cells):
        c = CellEstimate(cell.key, cell.count, reused=st.accepted[ci], drawn=cell_draws(plan, block, cell.key,
                                                                                        attempts.drawn))
        budget = options.max_attempts or max(50, 20 * cell.count)
        attempt, tried = st.next_attempt[ci], st.attempts[ci]
        accepted = st.accepted[ci]
        pending = False
        while accepted < cell.count and tried < budget and not pending:
            n = min(DRY_WAVE, budget - tried)
            for candidate in attempts.run(block.id, [(ci, list(range(attempt, attempt + n)))])[0]:
                if candidate.why == PENDING:
                    pending = True
                    break
                entry = accept(plan, block, candidate, deduper)
                attempt, tried = attempt + 1, tried + 1
                seen.attempts += 1
                if candidate.tokens is not None:
                    seen.results += 1
                    seen.tokens += candidate.tokens
                seen.judged += block.judge is not None and (candidate.ok or candidate.why in ("judge", "judge_error"))
                if entry.ok:
                    accepted += 1
                    seen.accepted += 1
                    assert entry.record is not None
                    kept.add(entry.record["_meta"]["id"])
                    if accepted == cell.count:
                        break
        c.reused = accepted
        c.to_generate = cell.count - accepted
        c.budget_exhausted = c.to_generate > 0 and not pending
        cells.append(c)
    # fields drawn by another drawn field's value (those drawn by a quota field's are in each cell)
    conditional = [f"{'.'.join(sf.path)} ~ {s.text()}" for sf in _walk_sampled(block.sampled)
                   if isinstance(s := sf.sampler, (ir.ConditionalSampler, ir.DrawSampler))
                   and (cond := ir.condition_of(s)) is not None
                   and not (len(sf.path) == 1 and cond in block.quota_fields)]
    b = BlockEstimate(block.id, block.model, block.count, cells, conditional=conditional)
    if seen.attempts >= MIN_MEASURED:
        b.acceptance, b.acceptance_from = seen.accepted / seen.attempts, "cache"
    elif last.get("acceptance_rate"):
        b.acceptance, b.acceptance_from = float(last["acceptance_rate"]), "last run"
    rate = max(b.acceptance or 1.0, 0.05)
    judge_share = seen.judged / seen.attempts if block.judge is not None and seen.attempts >= MIN_MEASURED else 1.0
    per_attempt = requests_per_attempt(block)
    for c in cells:
        c.requests = math.ceil(c.to_generate / rate * per_attempt) if c.to_generate else 0
    b.reused = sum(c.reused for c in cells)
    b.to_generate = sum(c.to_generate for c in cells)
    b.requests = sum(c.requests for c in cells)
    b.judge_requests = math.ceil(b.requests * judge_share) if block.judge is not None else 0
    per_request = block.max_tokens
    if seen.results >= MIN_MEASURED:
        per_request, b.tokens_from = max(1, round(seen.tokens / seen.results)), "cache"
    b.tokens = b.requests * per_request + b.judge_requests * 16
    if attempts.cache is not None:
        b.tokens_per_second = attempts.cache.throughput(identity_key(attempts.identity(block.model)))
    if b.tokens_per_second:
        b.seconds = round(b.tokens / b.tokens_per_second, 1)
    b.dropped = len(previous - kept)
    if options.batch_files is not None and b.to_generate:
        _batches(plan, block, options.batch_files, b)
    return b


def _batches(plan: Plan, block: Block, mode: str, b: BlockEstimate) -> None:
    """How many batch files the block's requests make: one per step (one for a one-prompt block)
    and one for the judge, of MAX_BATCH_REQUESTS each, in the first round, then the top-up
    rounds for the attempts that round leaves rejected."""
    batched = set(batched_models(plan.models, mode))
    per_round = 0
    calls = max(1, len(block.steps))   # engine calls a wave makes: one per step
    if block.model in batched:
        per_round += calls * max(1, math.ceil(b.requests / calls / MAX_BATCH_REQUESTS))
    if block.judge is not None and block.judge.model in batched and b.judge_requests:
        per_round += math.ceil(b.judge_requests / MAX_BATCH_REQUESTS)
    if not per_round:
        return
    b.batches = per_round
    # a round's top-ups for every short cell go in one next batch (per step and judge); each
    # round leaves far fewer short than the last: about log2 of the records rounds at most
    rounds = math.ceil(math.log2(b.to_generate + 1))
    b.topup_batches = 0 if b.acceptance == 1.0 else rounds * (calls + (block.judge is not None))


def _previous_records(journal: Path) -> dict[str, set[str]]:
    """The ids of the records the last run in this folder kept, per block."""
    ids: dict[str, set[str]] = {}
    for e in read_entries(journal):
        if e["ok"]:
            ids.setdefault(e["b"], set()).add(e["rec"].get("_meta", {}).get("id"))
    return ids


def _last_manifest(out: Path) -> dict[str, dict]:
    """The last run's blocks that have an acceptance rate; {} when the manifest is missing or
    damaged (the estimate goes on without it)."""
    try:
        text = read_bytes(out / "manifest.json", MAX_STORED_BYTES).decode("utf-8")
        manifest = load_json(text, max_depth=MAX_STORED_DEPTH, nan=True)
    except (OSError, ValueError):
        return {}
    blocks = manifest.get("blocks") if isinstance(manifest, dict) else None
    if not isinstance(blocks, dict):
        return {}
    return {k: v for k, v in blocks.items() if isinstance(v, dict) and _is_rate(v.get("acceptance_rate"))}


def _is_rate(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1


def render_text(e: PlanEstimate) -> str:
    lines = [f"plan {e.plan[:19]}… for dataset {e.dataset}, into {e.out_dir}"]
    if e.resumes:
        lines.append("the last run in this folder is of this plan: the run goes on from its journal")
    elif e.last_run_plan:
        lines.append("the spec changed since the last run in this folder: records whose requests did not change "
                     "come back from the cache")
    if e.cache is None:
        lines.append("no result cache: every record not in the journal is generated")
    for b in e.blocks:
        lines.append("")
        lines.append(f"{b.id} ({b.count} records, model {b.model})")
        width = max([len("cell")] + [len(_cell_name(c.key)) for c in b.cells])
        lines.append(f"  {'cell':<{width}}  {'records':>7}  {'reused':>6}  {'to make':>7}  {'requests':>8}")
        for c in b.cells:
            note = "  (its attempt budget runs out)" if c.budget_exhausted else ""
            lines.append(f"  {_cell_name(c.key):<{width}}  {c.count:>7}  {c.reused:>6}  {c.to_generate:>7}  "
                         f"{c.requests:>8}{note}")
        lines.append(f"  {'total':<{width}}  {b.count:>7}  {b.reused:>6}  {b.to_generate:>7}  {b.requests:>8}")
        if any(c.drawn for c in b.cells):
            lines.append("  drawn by the cell:")
            lines += [f"    {_cell_name(c.key)}: {'; '.join(c.drawn)}" for c in b.cells if c.drawn]
        if b.conditional:
            lines.append("  drawn by other drawn fields: " + "; ".join(b.conditional))
        if b.to_generate:
            lines.append("  " + _cost(b))
        if b.batches is not None:
            lines.append("  " + _batch_cost(b))
        if b.dropped:
            lines.append(f"  dropped: {b.dropped} records of the last run are not kept by this plan")
    for block, n in e.dropped_blocks.items():
        lines.append("")
        lines.append(f"{block}: no longer in the spec; its {n} records of the last run are dropped")
    lines.append("")
    total = sum(b.to_generate for b in e.blocks)
    lines.append("nothing to generate: a run rebuilds the output from what is kept" if total == 0 else
                 f"to generate: {total} records, about {e.requests} engine requests")
    return "\n".join(lines) + "\n"


def _cell_name(key: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items()) or "(all)"


def _cost(b: BlockEstimate) -> str:
    acceptance = (f"acceptance {b.acceptance:.0%} (measured on the {b.acceptance_from})" if b.acceptance is not None
                  else "acceptance unknown, so at least one request per record")
    judge = f" + {b.judge_requests} judge requests" if b.judge_requests else ""
    tokens = ("tokens as the cached results" if b.tokens_from == "cache"
              else "tokens at most (the worst case the bounds allow)")
    when = (f", about {_duration(b.seconds)} at the {b.tokens_per_second:.0f} tokens/s measured for the model"
            if b.seconds is not None else ", time unknown until the model has run once")
    return f"estimate: {b.requests} requests{judge}, {acceptance}; {b.tokens} {tokens}{when}"


def _batch_cost(b: BlockEstimate) -> str:
    judge = f" and {b.judge_requests} judge requests" if b.judge_requests else ""
    topups = (f", plus up to {b.topup_batches} top-up batches for the attempts a round leaves rejected"
              if b.topup_batches else "")
    return (f"batch files: about {b.batches} batch{'es' if b.batches != 1 else ''} of {b.requests} requests{judge}, "
            f"{b.tokens} tokens{' at most' if b.tokens_from == 'bounds' else ''}{topups}")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
