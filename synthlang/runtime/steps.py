"""Records written in steps (a plan block's `steps`). For a wave of attempts, each step is one
constrained request per attempt, sent for all the wave's attempts at that step together (one
engine call per step and model, so a batching engine sees them side by side). A step whose
`when` is false for the record so far writes nulls. A check whose fields are all known after a
step rejects the attempt there, before later steps are paid for. When every step has run, the
fields of all steps are validated, tested for plausibility, derived and checked as one record,
exactly as a one-prompt record is (Attempts.evaluate)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .. import ir
from ..engines.base import GenerationRequest, GenerationResult
from ..expr import passes, to_source
from ..plan.model import JUDGE_SCHEMA, Block, Plan, PlanStep
from ..templates import render
from ..values import MAX_STORED_DEPTH, load_json
from .entries import PENDING, Attempt, Candidate
from .prompts import SYSTEM, format_note, judge_messages
from .scores import SCORES, graded_score
from .seeding import sub_rng


class Host(Protocol):
    """What a step run needs of runtime/attempts.py's Attempts."""

    plan: Plan

    def draw(self, block: Block, ci: int, attempt: int) -> tuple[int, dict | None, tuple[dict, dict] | str]: ...

    def _generate(self, model_name: str, requests: list[GenerationRequest],
                  defer: int = 0) -> tuple[list[GenerationResult | None], list[bool]]: ...

    def evaluate(self, block: Block, at: Attempt, seed: int, values: dict, result: GenerationResult,
                 request: GenerationRequest, parts: list[tuple[dict, str]] | None = None) -> Candidate: ...

    def step_problem(self, block: Block, written: dict, schema: dict, prompt: str) -> tuple[str, str] | None: ...


@dataclass
class _Record:
    """One attempt on its way through the steps."""

    at: Attempt
    seed: int
    values: dict
    context: dict
    schema: dict                                  # the whole record's, with the mentions' patterns
    written: dict[str, Any] = field(default_factory=dict)
    messages: list[dict] = field(default_factory=list)
    parts: list[tuple[dict, str]] = field(default_factory=list)   # each step's schema and prompt
    tokens: int = 0
    seconds: float = 0.0
    sent: int = 0
    reused: int = 0
    done: Candidate | None = None                 # set when the attempt ends early
    meta: dict[str, Any] = field(default_factory=dict)  # for _meta: each step's model (None: skipped), scores


def expr_fields(expr: ir.Expr) -> set[str]:
    """The top-level fields an expression reads."""
    out = {expr.path[0]} if expr.op == "ref" and expr.path else set()
    for a in expr.args:
        out |= expr_fields(a)
    return out


def step_schema(step: PlanStep, record_schema: dict) -> dict:
    """The step's JSON Schema, its fields' nodes taken from the record's (which carry the
    mentions' patterns drawn for this record)."""
    schema = json.loads(json.dumps(step.json_schema))
    whole = record_schema.get("properties", {})
    for name in schema["properties"]:
        node = whole.get(name, schema["properties"][name])
        if step.when is not None:   # when it runs, it writes them
            node = next((b for b in node.get("anyOf", []) if b.get("type") != "null"), node)
        schema["properties"][name] = node
    return schema


def step_messages(step: PlanStep, context: dict, schema: dict) -> tuple[dict, ...]:
    system = (SYSTEM + " " + format_note(schema)).strip()
    return ({"role": "system", "content": system}, {"role": "user", "content": render(step.template, context).strip()})


def run_steps(host: Host, block: Block, work: list[tuple[int, int]]) -> list[Candidate]:
    plan = host.plan
    records: list[_Record] = []
    for ci, attempt in work:
        at = Attempt(block.id, ci, attempt)
        seed, values, drawn = host.draw(block, ci, attempt)
        if values is None or isinstance(drawn, str):
            rec = _Record(at, seed, {}, {}, {})
            rec.done = Candidate(at, ok=False, why=str(drawn))
        else:
            context, schema = drawn
            rec = _Record(at, seed, values, context, schema)
        records.append(rec)
    known = set(block.quota_fields) | {s.path[0] for s in block.sampled}
    derived = {d.path[0] for d in block.derived}
    for k, step in enumerate(block.steps, 1):
        if step.turns or step.candidates:
            for rec in records:
                if rec.done is None:
                    models = sorted({t.model for t in step.turns}) if step.turns else [step.model]
                    rec.meta.setdefault("steps", []).append({"fields": list(step.fields), "model": ", ".join(models)})
            run_special = _dialogue if step.turns else _candidates
            run_special(host, block, step, k, [r for r in records if r.done is None])
            known |= set(step.fields)
            continue
        asks: list[tuple[_Record, GenerationRequest]] = []
        for rec in records:
            if rec.done is not None:
                continue
            so_far = {**rec.values, **rec.written}
            if step.when is not None and not passes(step.when, so_far):
                rec.written.update({f: None for f in step.fields})
                rec.meta.setdefault("steps", []).append({"fields": list(step.fields), "model": None})
                continue
            rec.meta.setdefault("steps", []).append({"fields": list(step.fields), "model": step.model})
            schema = step_schema(step, rec.schema)
            try:
                messages = step_messages(step, {**rec.context, **rec.written}, schema)
            except Exception as exc:  # noqa: BLE001 - a template error fails this record, not the run
                rec.done = _reject(rec, f"prompt: {type(exc).__name__}: {exc}", step=k)
                continue
            model = plan.models[step.model]
            asks.append((rec, GenerationRequest(messages=messages, json_schema=schema, max_tokens=step.max_tokens,
                                                seed=sub_rng(rec.seed, f"step {k}").getrandbits(63),
                                                temperature=model.temperature, top_p=model.top_p)))
        if asks:
            # the first step is the wave's: when the cache holds part of it, the rest waits
            # (see Attempts._generate); a later step is asked for every attempt that reached it
            results, reused = host._generate(step.model, [req for _, req in asks], defer=_lead(asks) if k == 1 else 0)
            for (rec, req), result, hit in zip(asks, results, reused):
                _take(rec, step, k, req, result, hit)
                if rec.done is None and k < len(block.steps):
                    _early(host, block, rec, k, {f: rec.written[f] for f in step.fields}, *rec.parts[-1])
        known |= set(step.fields)
        for rec in records:
            if rec.done is None:
                failed = next((c for c in block.checks
                               if expr_fields(c) <= known and not (expr_fields(c) & derived)
                               and not passes(c, {**rec.values, **rec.written})), None)
                if failed is not None and k < len(block.steps):
                    rec.done = _reject(rec, f"check: {to_source(failed)}", f"after step {k} of {len(block.steps)}",
                                       step=k)
    out = []
    for rec in records:
        if rec.done is not None:
            out.append(rec.done)
            continue
        combined = GenerationResult(text=json.dumps({f: rec.written.get(f) for f in block.json_schema["properties"]}),
                                    tokens=rec.tokens, seconds=rec.seconds)
        request = GenerationRequest(messages=tuple(rec.messages), json_schema=block.json_schema,
                                    max_tokens=block.max_tokens, seed=rec.seed, temperature=0.0, top_p=1.0)
        candidate = host.evaluate(block, rec.at, rec.seed, rec.values, combined, request, rec.parts)
        out.append(replace(candidate, sent=rec.sent, reused=rec.reused, meta={**candidate.meta, **rec.meta}))
    return out


def _dialogue(host: Host, block: Block, step: PlanStep, k: int, live: list[_Record]) -> None:
    """A dialogue, turn by turn: the same turn of every record's conversation in one engine call.
    A record's number of rounds comes from its seed. Each turn's model gets its rendered
    template as the system message and the conversation so far as chat history, its own
    side's messages as `assistant` and the other side's as `user`, and writes one `content`."""
    plan = host.plan
    assert step.rounds is not None
    lo, hi = step.rounds
    field_name = step.fields[0]
    part_schema = {"type": "object", "properties": {field_name: block.json_schema["properties"][field_name]}}
    rounds = {id(r): lo + sub_rng(r.seed, f"rounds {k}").randrange(hi - lo + 1) for r in live}
    histories: dict[int, list[dict]] = {id(r): [] for r in live}
    prompts: dict[int, list[str]] = {id(r): [] for r in live}
    for rnd in range(hi):
        for turn in step.turns:
            asks: list[tuple[_Record, GenerationRequest]] = []
            for rec in live:
                if rec.done is not None or rnd >= rounds[id(rec)]:
                    continue
                history = histories[id(rec)]
                try:
                    system = render(turn.template, {**rec.context, **rec.written, "history": list(history)}).strip()
                except Exception as exc:  # noqa: BLE001 - a template error fails this record, not the run
                    rec.done = _reject(rec, f"prompt: {type(exc).__name__}: {exc} ({turn.role})", step=k)
                    continue
                note = format_note(step.json_schema)
                messages = ({"role": "system", "content": (system + " " + note).strip()},
                            *({"role": "assistant" if m["role"] == turn.role else "user", "content": m["content"]}
                              for m in history))
                model = plan.models[turn.model]
                asks.append((rec, GenerationRequest(
                    messages=messages, json_schema=step.json_schema, max_tokens=step.max_tokens,
                    seed=sub_rng(rec.seed, f"step {k} round {rnd} {turn.role}").getrandbits(63),
                    temperature=model.temperature, top_p=model.top_p)))
                if rnd == 0:
                    prompts[id(rec)].append(system)
            if not asks:
                continue
            results, reused = host._generate(turn.model, [req for _, req in asks],
                                            defer=_lead(asks) if k == 1 and rnd == 0 else 0)
            for (rec, req), result, hit in zip(asks, results, reused):
                before = dict(rec.written)
                _take(rec, step, k, req, result, hit, keep_parts=False)
                if rec.done is None:
                    message = {"role": turn.role, "content": rec.written.pop("content")}
                    histories[id(rec)].append(message)
                    rec.written = before
                    # the new turn against all the model was shown: a side that repeats the
                    # other's message back is an echo, as a copy of its instructions is
                    _early(host, block, rec, k, {field_name: [message]}, part_schema,
                           "\n".join(m["content"] for m in req.messages))
    for rec in live:
        if rec.done is None:
            rec.written[field_name] = histories[id(rec)]
            rec.parts.append((part_schema, "\n".join(prompts[id(rec)])))


def _candidates(host: Host, block: Block, step: PlanStep, k: int, live: list[_Record]) -> None:
    """N candidates per record (all records' in one engine call), each scored by the judge
    under constrained decoding (one more call); the best goes to the first field, the worst to
    the second. A candidate that fails plausibility is not judged (its score is null), and a
    record left with fewer than two is rejected for the first one's reason. A score is the
    judge's expected score where its engine reports the score token's probabilities
    (runtime/scores.py), else the digit it wrote. Scores that do not rank (best == worst)
    reject the record: `no_preference`."""
    plan = host.plan
    best, worst = step.fields
    model = plan.models[step.model]
    asks: list[tuple[_Record, GenerationRequest]] = []
    # each record's candidates are asked with one schema and prompt: the part its kept values
    # are tested against with the record
    parts: dict[int, tuple[dict, str]] = {}
    for rec in live:
        try:
            prompt = render(step.template, {**rec.context, **rec.written}).strip()
        except Exception as exc:  # noqa: BLE001 - a template error fails this record, not the run
            rec.done = _reject(rec, f"prompt: {type(exc).__name__}: {exc}", step=k)
            continue
        schema = step_schema(step, rec.schema)
        messages = ({"role": "system", "content": (SYSTEM + " " + format_note(schema)).strip()},
                    {"role": "user", "content": prompt})
        node = schema["properties"][best]
        parts[id(rec)] = ({"type": "object", "properties": {best: node, worst: node}},
                          "\n".join(m["content"] for m in messages))
        for i in range(step.candidates):
            asks.append((rec, GenerationRequest(messages=messages, json_schema=schema, max_tokens=step.max_tokens,
                                                seed=sub_rng(rec.seed, f"step {k} candidate {i}").getrandbits(63),
                                                temperature=model.temperature, top_p=model.top_p)))
    if not asks:
        return
    results, reused = host._generate(step.model, [req for _, req in asks], defer=_lead(asks) if k == 1 else 0)
    # each record's candidates by number; one that fails plausibility is not judged (None)
    values: dict[int, list[Any]] = {}
    problems: dict[int, list[tuple[str, str]]] = {}
    for (rec, req), result, hit in zip(asks, results, reused):
        if rec.done is not None:
            continue
        before = dict(rec.written)
        _take(rec, step, k, req, result, hit, keep_parts=False)
        if rec.done is None:
            value = rec.written.pop(best)
            rec.written = before
            found = host.step_problem(block, {best: value}, req.json_schema, parts[id(rec)][1])
            values.setdefault(id(rec), []).append(value if found is None else None)
            if found is not None:
                problems.setdefault(id(rec), []).append(found)
    for rec in live:
        if rec.done is None and sum(v is not None for v in values[id(rec)]) < 2:
            reason, value = problems[id(rec)][0]
            rec.done = _reject(rec, reason, value[:300], step=k)
    judge_model = plan.models[step.judge_model or step.model]
    scored: list[tuple[_Record, int, GenerationRequest]] = []
    for rec in live:
        if rec.done is not None:
            continue
        shown = {k2: v for k2, v in {**rec.values, **rec.written}.items()}
        for i, value in enumerate(values[id(rec)]):
            if value is None:
                continue
            scored.append((rec, i, GenerationRequest(
                messages=judge_messages(step.rubric, {**shown, best: value}), json_schema=JUDGE_SCHEMA, max_tokens=16,
                seed=sub_rng(rec.seed, f"step {k} judge {i}").getrandbits(63),
                temperature=judge_model.temperature, top_p=judge_model.top_p, logprobs=len(SCORES))))
    if not scored:
        return
    results, reused = host._generate(step.judge_model or step.model, [req for _, _, req in scored])
    scores: dict[int, list[float | None]] = {id(rec): [None] * step.candidates for rec in live}
    for (rec, i, _), result, hit in zip(scored, results, reused):
        if result is None:
            rec.done = Candidate(rec.at, ok=False, why=PENDING, sent=rec.sent, reused=rec.reused)
            continue
        rec.sent += int(not hit)
        rec.reused += int(hit)
        score = graded_score(result) if result.error is None else None
        if score is None:
            rec.done = _reject(rec, "judge_error", f"candidate {i}: {(result.error or result.text or '')[:200]}",
                               step=k)
        scores[id(rec)][i] = score
    for rec in live:
        if rec.done is not None:
            continue
        got = scores[id(rec)]
        judged = [i for i, s in enumerate(got) if s is not None]
        hi = max(judged, key=lambda i: (got[i], -i))     # the first highest, the first lowest
        lo = min(judged, key=lambda i: (got[i], i))
        if got[hi] == got[lo]:
            rec.done = _reject(rec, "no_preference", f"every candidate judged scored {got[hi]}", step=k)
            continue
        rec.written[best], rec.written[worst] = values[id(rec)][hi], values[id(rec)][lo]
        rec.parts.append(parts[id(rec)])   # both kept values are tested (and repaired) with the record
        rec.meta["candidates"] = {"field": best, "scores": got, "chosen": hi, "rejected": lo}


def _lead(asks: list[tuple[_Record, GenerationRequest]]) -> int:
    """How many of the first requests belong to the wave's first live attempt (a step with
    candidates asks several per attempt): those are always sent, so asking again progresses."""
    first = asks[0][0]
    return next((i for i, (rec, _) in enumerate(asks) if rec is not first), len(asks))


def _take(rec: _Record, step: PlanStep, k: int, request: GenerationRequest, result: GenerationResult | None,
          hit: bool, keep_parts: bool = True) -> None:
    """One step's result into the record, or the attempt's end."""
    if result is None:
        rec.done = Candidate(rec.at, ok=False, why=PENDING, sent=rec.sent, reused=rec.reused)
        return
    rec.sent += int(not hit)
    rec.reused += int(hit)
    rec.tokens += result.tokens
    rec.seconds += result.seconds
    rec.messages.extend(request.messages)
    if keep_parts:
        rec.parts.append((request.json_schema, "\n".join(m["content"] for m in request.messages)))
    if result.error is not None:
        rec.done = _reject(rec, result.reason or "engine_error", result.error[:300], step=k)
        return
    try:
        written = load_json(result.text or "", max_depth=MAX_STORED_DEPTH)  # a server may ignore the schema
    except ValueError:
        written = None
    if not isinstance(written, dict) or set(written) != set(step.json_schema["properties"]):
        rec.done = _reject(rec, "invalid_output", (result.text or "")[:300], step=k)
        return
    rec.written.update(written)


def _early(host: Host, block: Block, rec: _Record, k: int, written: dict, schema: dict, prompt: str) -> None:
    """Reject the attempt now when what step k wrote fails plausibility (see Host.step_problem)."""
    found = host.step_problem(block, written, schema, prompt)
    if found is not None:
        rec.done = _reject(rec, found[0], found[1][:300], step=k)


def _reject(rec: _Record, why: str, err: str | None = None, step: int | None = None) -> Candidate:
    return Candidate(rec.at, ok=False, why=why, err=err, tokens=rec.tokens or None,
                     seconds=round(rec.seconds, 4) if rec.tokens else None, sent=rec.sent, reused=rec.reused,
                     step=step)
