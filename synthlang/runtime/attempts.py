"""Attempts: everything about one attempt that depends on nothing but the attempt itself.

sample -> examples -> prompt -> constrained generation -> validate -> derive -> check -> judge.
`Attempts.run(block_id, work)` turns the attempt numbers of one or more quota cells into
Candidates, in order, with one engine call for all their requests (and one for all their judge
requests), so a batching engine sees them together. It owns the engines it loads (with their
conformance probe and capability check), so a pool can hold one per process or per Ray worker."""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import replace
from pathlib import Path

from .. import ir
from ..engines.base import Engine, GenerationRequest, GenerationResult
from ..engines.capabilities import check_capabilities
from ..engines.identity import model_identity
from ..engines.probe import run_probe
from ..engines.registry import get_engine
from ..expr import passes, to_source
from ..files import ensure_dir
from ..mention_values import mention_values
from ..plan.model import Block, Plan
from ..values import MAX_STORED_DEPTH, ValueError_, check_record, check_value, find_in_order, load_json, match_key
from . import plausibility
from .batch_engine import BatchEngine
from .cache import ResultCache, identity_key, request_key, sha256_file
from .derive import DeriveError, derive
from .drawn_rows import DrawnRows
from .entries import PENDING, Attempt, Candidate
from .grow import Grown, cell_rows, grow_values
from .label_check import LabelReader, label_schema, label_text, reader_for, record_text
from .mentions import find_spans, gap_ranges, mention_pattern
from .options import RunOptions
from .prompts import judge_messages, label_messages, messages_for
from .sampling import SamplingError, draw_fields, get_path
from .scores import judge_score
from .seeding import record_seed, sub_rng
from .steps import run_steps

# requests worth having in flight before an engine is loaded (it may never be: every request
# may be cached); the engine's own number takes over once it is
IN_FLIGHT_UNLOADED = 64


class Attempts:
    def __init__(self, plan: Plan, options: RunOptions, dry: bool = False):
        """`dry`: answer from the cache only; a request it does not hold gives a PENDING
        candidate and no engine is ever loaded (`synthc plan`). Without `dry` a candidate is
        PENDING when its wave was served partly by the cache (see _generate)."""
        self.plan = plan
        self.opt = options
        self.dry = dry
        self.cache: ResultCache | None = None
        if options.cache_dir is not None:
            self.cache = (ResultCache.open_existing(options.cache_dir) if dry
                          else ResultCache(cache_folder(options), options.cache_max_bytes))
        self.engines: dict[str, Engine] = {}
        self._loaded_as: dict[str, str] = {}     # what an engine is loaded from -> the model that loaded it
        self._identities: dict[str, tuple[dict, str]] = {}
        self.schemas = plan.schemas.get
        self.drawn = DrawnRows(plan, options.spec_dir)   # the rows `~ draw(...)` takes values from
        self.engine_seconds = 0.0                # time inside engine calls
        self.startup_seconds = 0.0               # engine loading and conformance probes
        self._example_index: dict[str, dict[str, list[dict]]] = {}
        self._references: dict[str, dict[str, list[str]]] = {}
        self._seed_mentions: dict[str, list[str]] = {}
        self._grow_rows: dict[tuple[str, int], list[int]] = {}
        self._grown: dict[Attempt, Grown] = {}   # drawn, not yet evaluated
        self._label_readers: dict[str, list[tuple[ir.LabelRule, LabelReader]]] = {}

    # engines ----------------------------------------------------------------------------------
    def engine(self, model_name: str) -> Engine:
        if model_name not in self.engines:
            model = self.plan.models[model_name]
            # models that differ only in how they sample (sent with each request) share one
            # loaded engine: a dialogue's two sides on one model load it once
            same = self._loaded_as.get(_engine_key(model))
            if same is not None:
                self.engines[model_name] = self.engines[same]
                return self.engines[model_name]
            started = time.perf_counter()
            engine = (self.opt.engine_factory(model) if self.opt.engine_factory
                      else get_engine(model, self.opt.engine_options))
            # a model sent batch files is not probed: the probe would be a batch round trip of its
            # own (every output is still validated); the live models of the same run are
            if self.opt.probe and not isinstance(engine, BatchEngine):
                run_probe(engine, model.temperature, model.top_p)
                key = _engine_key(model)
                names = {n for n, m in self.plan.models.items() if _engine_key(m) == key}  # all it serves
                blocks = [b for b in self.plan.blocks
                          if b.model in names or any(st.model in names for st in b.steps)]
                judged = [b for b in self.plan.blocks if b.judge is not None and b.judge.model in names]
                check_capabilities(engine, blocks, judged)
            self.engines[model_name] = engine
            self._loaded_as[_engine_key(model)] = model_name
            self.startup_seconds += time.perf_counter() - started
        return self.engines[model_name]

    def close(self) -> None:
        try:
            for engine in {id(e): e for e in self.engines.values()}.values():
                engine.close()
        finally:
            if self.cache is not None:
                self.cache.close()

    def identity(self, model_name: str) -> dict:
        """What besides a request decides what this model's engine writes (engines/identity.py)."""
        if model_name not in self._identities:
            digest = self.cache.file_digest if self.cache is not None else sha256_file
            ident = model_identity(self.plan.models[model_name], self.opt.engine_options, digest,
                                   self.opt.engine_factory)
            self._identities[model_name] = (ident, identity_key(ident))
        return self._identities[model_name][0]

    def _generate(self, model_name: str, requests: list[GenerationRequest],
                  defer: int = 0) -> tuple[list[GenerationResult | None], list[bool]]:
        """A result per request, and whether it came from the cache. The engine is sent (and
        loaded for) only what the cache does not hold; in a dry run those results are None.

        `defer`: how many of the first requests are the wave's first attempt (0: defer none).
        When the cache holds all of them, the requests it does not hold are not sent either
        (None): the driver takes the cached attempts first and asks again, from the first one
        left, only for what it still needs. So a wave sized differently from the run that
        filled the cache sends nothing that run did not need, and the first attempt always
        completes (the driver's asking again makes progress, whatever part of an attempt with
        several requests the cache holds, or lost to an error or a prune)."""
        results: list[GenerationResult | None] = [None] * len(requests)
        keys: list[str] = []
        if self.cache is not None:
            ident = self.identity(model_name)
            keys = [request_key(ident, r) for r in requests]
            found = self.cache.get_many(keys)
            results = [found.get(k) for k in keys]
        reused = [r is not None for r in results]
        todo = [i for i, r in enumerate(results) if r is None]
        if not todo or self.dry or (defer and all(r is not None for r in results[:defer])):
            return results, reused
        engine = self.engine(model_name)  # loads on first use; timed as start-up, not engine work
        start = time.perf_counter()
        sent = engine.generate([requests[i] for i in todo])
        for _ in range(self.opt.retries):
            # only a transient error may go another way; a deterministic one comes back the same
            # for the same request and seed, and an exhausted one was retried by the engine
            failed = [j for j, r in enumerate(sent) if r.error is not None and r.error_kind == "transient"]
            if not failed:
                break
            again = engine.generate([requests[todo[j]] for j in failed])
            for j, r in zip(failed, again):
                sent[j] = r
        seconds = time.perf_counter() - start
        self.engine_seconds += seconds
        for i, r in zip(todo, sent):
            results[i] = r
        if self.cache is not None:
            self.cache.put_many((keys[i], r) for i, r in zip(todo, sent))
            self.cache.add_throughput(self._identities[model_name][1], sum(r.tokens for r in sent), seconds,
                                      len(todo))
        return results, reused

    def in_flight(self, model_name: str) -> int:
        """Requests worth sending to this model's engine at once. When the cache holds results
        of this model, a provisional number until the engine is loaded, so a run the cache
        serves never loads it; otherwise the engine's own (a first run's waves are sized as the
        engine wants them, and a batching engine's output depends on what shares its batch)."""
        engine = self.engines.get(model_name)
        if engine is None and (self.dry or self._has_run_before(model_name)):
            return IN_FLIGHT_UNLOADED
        return max(1, self.engine(model_name).in_flight)

    def _has_run_before(self, model_name: str) -> bool:
        if self.cache is None:
            return False
        self.identity(model_name)
        return self.cache.throughput(self._identities[model_name][1]) is not None

    # a batch of attempts -------------------------------------------------------------------------
    def run(self, block_id: str, work: list[tuple[int, list[int]]]) -> list[list[Candidate]]:
        """For each (cell, attempt numbers) of `work`, one candidate per attempt, in order."""
        block = self.plan.block(block_id)
        if block.steps:
            made = run_steps(self, block, [(ci, a) for ci, attempts in work for a in attempts])
            return self._finish(block, work, made)
        prepared = [(ci, a, *self.prepare(block, ci, a)) for ci, attempts in work for a in attempts]
        requests = [p[4] for p in prepared if isinstance(p[4], GenerationRequest)]
        results, reused = self._generate(block.model, requests, defer=1) if requests else ([], [])
        answers = iter(zip(results, reused))
        made = []
        for ci, attempt, seed, values, req_or_reason in prepared:
            at = Attempt(block.id, ci, attempt)
            if values is None:
                self._grown.pop(at, None)   # drawn from a row, but no request could be made
                made.append(Candidate(at, ok=False, why=str(req_or_reason)))
                continue
            if req_or_reason is None:   # grown from a row with nothing to rewrite: no request
                candidate = self.evaluate(block, at, seed, values, GenerationResult("{}"), None)
                made.append(replace(candidate, tokens=None, seconds=None))
                continue
            assert isinstance(req_or_reason, GenerationRequest)
            result, hit = next(answers)
            if result is None:
                self._grown.pop(at, None)
                made.append(Candidate(at, ok=False, why=PENDING))
            else:
                candidate = self.evaluate(block, at, seed, values, result, req_or_reason)
                made.append(replace(candidate, reused=int(hit), sent=int(not hit)))
        return self._finish(block, work, made)

    def _finish(self, block: Block, work: list[tuple[int, list[int]]], made: list[Candidate]) -> list[list[Candidate]]:
        """The model's reading of the labels and the judge's verdicts, then the candidates split
        back by cell."""
        if any(r.model for r in block.labels) and "off_label" not in block.allow:
            made = self._read_labels(block, made)
        if block.judge is not None:
            made = self._judge(block, made)
        out, start = [], 0
        for _, attempts in work:
            out.append(made[start:start + len(attempts)])
            start += len(attempts)
        return out

    def prepare(self, block: Block, ci: int, attempt: int) -> tuple[int, dict | None, GenerationRequest | str | None]:
        """(seed, values, request) or (seed, None, reason) when no request can be made, or
        (seed, values, None) for a record grown from a row that the model has nothing to write in."""
        seed, values, drawn = self.draw(block, ci, attempt)
        if values is None or isinstance(drawn, str):
            return seed, None, str(drawn)
        if block.grow is not None and not block.grow.rewrite:
            return seed, values, None
        context, schema = drawn
        try:
            messages = messages_for(block, context, schema)
        except Exception as exc:  # noqa: BLE001 - a template error fails this record, not the run
            return seed, None, f"prompt: {type(exc).__name__}: {exc}"
        model = self.plan.models[block.model]
        request = GenerationRequest(messages=messages, json_schema=schema, max_tokens=block.max_tokens,
                                    seed=seed, temperature=model.temperature, top_p=model.top_p)
        return seed, values, request

    def draw(self, block: Block, ci: int, attempt: int) -> tuple[int, dict | None, tuple[dict, dict] | str]:
        """(seed, values, (template context, JSON Schema with the mentions' patterns)) of an
        attempt, or (seed, None, reason) when its values cannot be drawn."""
        cell = block.cells[ci]
        seed = record_seed(self.plan.dataset.seed, block.id, cell.key, attempt)
        rng = sub_rng(seed, "sample")
        values: dict = {}
        try:
            for _ in range(20):
                values = draw_fields(block, rng, self.schemas, cell.key, self.drawn)
                values.update(cell.key)
                if block.grow is not None:
                    rows = self._grow_rows.get((block.id, ci))
                    if rows is None:
                        rows = self._grow_rows[(block.id, ci)] = cell_rows(self.plan, block, ci)
                    grown = grow_values(self.plan, block, ci, attempt, rows, values)
                    if isinstance(grown, str):
                        return seed, None, grown
                    values, self._grown[Attempt(block.id, ci, attempt)] = grown
                try:   # fields derived from drawn values alone: prompts and mentions see them
                    derive(block.derived, values, self.plan.schemas, self.plan.schemas[block.schema_name],
                           early_only=True)
                except DeriveError as exc:   # rejected as the derivation after generation would be
                    return seed, None, f"derived: {'.'.join(exc.path)}"
                schema = self._schema_with_mentions(block, values)
                if schema is not None:
                    break
            else:
                return seed, None, "mentions_do_not_fit"
        except SamplingError as exc:
            return seed, None, f"sampling: {exc}"
        examples = self._examples(block, values, seed)
        context = {**values, "examples": examples, "dataset": self.plan.dataset.dump()}
        grown_from = self._grown.get(Attempt(block.id, ci, attempt))
        if grown_from is not None:
            context["seed"] = copy.deepcopy(self.plan.seeds[grown_from.seeds].rows[grown_from.row])
        return seed, values, (context, schema)

    def _schema_with_mentions(self, block: Block, values: dict) -> dict | None:
        drawn = [sf for sf in block.sampled if sf.items and sf.path[0] in block.json_schema.get("properties", {})]
        if not block.mentions and not drawn:
            return block.json_schema
        schema = json.loads(json.dumps(block.json_schema))
        for sf in drawn:   # the model writes one object per drawn item
            n = len(values.get(sf.path[0]) or [])
            node = schema["properties"][sf.path[0]]
            node["minItems"] = node["maxItems"] = n
        for mc in block.mentions:
            if mc.path[0] not in schema.get("properties", {}):
                continue   # a text copied from a real row, not written by the model
            parent = get_path(values, mc.path[:-1]) if len(mc.path) > 1 else values
            vals = [text for _, text in mention_values(mc.values, mc.decimals, parent or {})]
            if not vals:
                continue   # a drawn list with no items, and nothing else mentioned
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

    def evaluate(self, block: Block, at: Attempt, seed: int, values: dict, result: GenerationResult,
                 request: GenerationRequest | None, parts: list[tuple[dict, str]] | None = None) -> Candidate:
        """Validate, test for plausibility, derive and check one generated record (the judge
        comes after, batched). `parts`: for a record written in steps, each step's JSON Schema
        and prompt, so a field is tested against the prompt that asked for it (a later step's
        prompt quotes it by design)."""
        tokens, seconds = result.tokens, round(result.seconds, 4)
        grown = self._grown.pop(at, None)
        labels: dict[str, dict] = {}

        def reject(why: str, err: str | None = None, score: int | None = None) -> Candidate:
            return Candidate(at, ok=False, why=why, err=err, score=score, tokens=tokens, seconds=seconds,
                             labels=labels)

        if result.error is not None:
            return reject(result.reason or "engine_error", result.error[:300])
        schema = self.plan.schemas[block.schema_name]
        try:
            written = load_json(result.text or "", max_depth=MAX_STORED_DEPTH)  # a server may ignore the schema
        except ValueError:
            return reject("invalid_output", (result.text or "")[:300])
        expected = set(block.json_schema.get("properties", {}))
        if not isinstance(written, dict) or set(written) != expected:
            return reject("invalid_output", (result.text or "")[:300])
        record = _merge(values, written)
        try:
            for name in expected:
                f = schema.require(name)
                if not (f.optional and record.get(name) is None):
                    check_value(f.type, record[name], self.schemas, name, require_generated=False)
        except ValueError_ as exc:
            return reject("invalid_output", f"{exc.path}: {exc.message}")
        spans: dict[str, list[tuple[int, int]]] = {}
        mentioned: dict[str, list[str]] = {}     # mentions field -> its mentioned values
        cut: list[str] = []
        span_fields: dict[str, tuple[str, ...]] = {}
        for mc in block.mentions:
            parent = get_path(record, mc.path[:-1]) if len(mc.path) > 1 else record
            labelled = mention_values(mc.values, mc.decimals, parent)
            vals = [v for _, v in labelled]
            text = str(parent.get(mc.path[-1]))
            label = ".".join(mc.path)
            if any(name != m for (name, _), m in zip(labelled, mc.values)) or len(labelled) != len(mc.values):
                span_fields[label] = tuple(name for name, _ in labelled)
            if mc.path[0] not in expected:   # copied from the row: its spans are known
                if grown is not None and label in grown.spans:
                    spans[label], span_fields[label] = grown.spans[label], grown.span_fields[label]
                else:
                    present = [m for m in mc.values if parent.get(m) is not None]
                    at_spans = find_in_order(text, [str(parent[m]) for m in present])
                    if at_spans is None:
                        return reject("mentions_missing")
                    spans[label], span_fields[label] = at_spans, tuple(present)
                mentioned[label] = vals
                continue
            found = find_spans(mc, text, vals) if vals else []
            if found is None:
                return reject("mentions_missing")
            spans[label], mentioned[label] = [(s, e) for s, e in found], vals
            ranges = gap_ranges(mc, vals) if vals else None
            if "truncated" not in block.allow and ranges is not None:  # the text after the values hit its room
                fixed = plausibility.cut_tail(text, found[-1][1], ranges[-1][1], mc.min_len)
                if fixed is None:
                    return reject(f"truncated: {label}")
                if fixed != text:
                    parent[mc.path[-1]] = fixed
                    cut.append(label)
        verdict = self._plausible(block, record, request, mentioned, parts)
        if verdict.reason is not None:
            return reject(verdict.reason, verdict.value)
        for label in verdict.trimmed:  # a mentions field cut back must keep every mentioned value
            text = get_path(record, tuple(label.split(".")))
            if label in spans and isinstance(text, str) and spans[label][-1][1] > len(text):
                return reject(f"truncated: {label}")
        try:
            derive(block.derived, record, self.plan.schemas, schema)
        except DeriveError as exc:
            return reject(f"derived: {'.'.join(exc.path)}", exc.message)
        try:
            record = check_record(schema, record, self.schemas, require_generated=True)
        except ValueError_ as exc:
            return reject("invalid_record", f"{exc.path}: {exc.message}")
        for check in block.checks:
            if not passes(check, record):
                return reject(f"check: {to_source(check)}")
        for rule, reader in self._readers(block):
            reading = reader.read(record_text(record, rule.text), label_text(record.get(rule.field)))
            if reading is None:
                continue
            labels[rule.field] = {"want": label_text(record.get(rule.field)), "read": reading.read,
                                  "margin": reading.margin}
            if reading.off and "off_label" not in block.allow:
                return reject(f"off_label: {rule.field}",
                              f"reads as {reading.read} (margin {reading.margin:.3f} > {reader.threshold:.3f})")
        return Candidate(at, ok=True, tokens=tokens, seconds=seconds, record=record, spans=spans, seed=seed,
                         trimmed=tuple(dict.fromkeys([*cut, *verdict.trimmed])), labels=labels,
                         span_fields=span_fields, meta={"from": grown.meta()} if grown is not None else {})

    def _readers(self, block: Block) -> list[tuple[ir.LabelRule, LabelReader]]:
        """The block's label check classifiers, fitted once on the real rows of its schema."""
        readers = self._label_readers.get(block.id)
        if readers is None:
            rows = self.plan.seed_rows(block.schema_name)
            readers = self._label_readers[block.id] = [(r, reader_for(rows, r.field, r.text)) for r in block.labels]
        return readers

    def _read_labels(self, block: Block, made: list[Candidate]) -> list[Candidate]:
        """`label check by MODEL`: the model reads each record's label blind, under an enum of
        the label's values, in one engine call per model; a different answer rejects it."""
        out = list(made)
        schema = self.plan.schemas[block.schema_name]
        for rule in block.labels:
            if rule.model is None:
                continue
            values = _label_values(self.plan, schema.require(rule.field).type)
            todo = [i for i, c in enumerate(out) if c.ok]
            requests = [GenerationRequest(messages=label_messages(record_text(out[i].record, rule.text), values),
                                          json_schema=label_schema(values), max_tokens=16 + max(map(len, values)),
                                          seed=out[i].seed ^ 0x1AB, temperature=0.0, top_p=1.0) for i in todo]
            results, reused = self._generate(rule.model, requests) if requests else ([], [])
            for i, result, hit in zip(todo, results, reused):
                c = replace(out[i], reused=out[i].reused + hit, sent=out[i].sent + (result is not None and not hit))
                if result is None:
                    out[i] = replace(c, ok=False, why=PENDING, record={}, spans={})
                    continue
                read = _read_label(result)
                want = label_text(c.record.get(rule.field))
                labels = {**c.labels, rule.field: {**c.labels.get(rule.field, {"want": want}),
                                                   "model": read or ""}}
                if read is None:
                    out[i] = replace(c, ok=False, why="label_error", err=(result.error or result.text or "")[:300],
                                     record={}, spans={}, labels=labels)
                elif read != want:
                    out[i] = replace(c, ok=False, why=f"off_label: {rule.field}",
                                     err=f"{rule.model} reads it as {read}", record={}, spans={}, labels=labels)
                else:
                    out[i] = replace(c, labels=labels)
        return out

    def step_problem(self, block: Block, written: dict, schema: dict, prompt: str) -> tuple[str, str] | None:
        """Plausibility of one step's fields as soon as they are written, on a copy, so later
        steps are not paid for: (reason, value), or None. The record's own test, with its
        repairs, comes when every step has run; for a plain step it would reject the same
        values (the same rules against the same prompt). A dialogue turn is tested here against
        all its model was shown, the conversation so far included, which catches a side that
        repeats the other. A step that writes a `mentions` field waits for the record's test,
        which knows the mentioned values."""
        if any(mc.path[0] in schema.get("properties", {}) for mc in block.mentions):
            return None
        verdict = plausibility.judge(copy.deepcopy(written), schema, self._plausibility_context(block, prompt, []),
                                     frozenset(block.allow))
        return None if verdict.reason is None else (verdict.reason, verdict.value or "")

    def _plausibility_context(self, block: Block, prompt: str, said: list[str]) -> plausibility.Context:
        references = self._references.get(block.id)
        if references is None:  # each free-text field's values in the seed rows, once per block
            references = self._references[block.id] = plausibility.references_for(
                self.plan.seed_rows(block.schema_name), block.json_schema)
        names = frozenset(f.name for f in self.plan.schemas[block.schema_name].fields)
        return plausibility.Context(prompt=prompt, field_names=names, references=references, mentioned=said)

    def _plausible(self, block: Block, record: dict, request: GenerationRequest | None,
                   mentioned: dict[str, list[str]], parts: list[tuple[dict, str]] | None = None
                   ) -> plausibility.Verdict:
        allow = frozenset(block.allow)
        said = [v for vs in mentioned.values() for v in vs]
        verdict = plausibility.Verdict()
        shown = "\n".join(m["content"] for m in request.messages) if request is not None else ""
        for schema, prompt in parts or [(block.json_schema, shown)]:
            part = plausibility.judge(record, schema, self._plausibility_context(block, prompt, said), allow)
            verdict.trimmed += part.trimmed
            if part.reason is not None:
                verdict.reason, verdict.value = part.reason, part.value
                break
        if verdict.reason is None:
            seed_values = self._seed_mentions.get(block.id)
            if seed_values is None:
                seed_values = self._seed_mentions[block.id] = [
                    str(row[v]) for row in self.plan.seed_rows(block.schema_name)
                    for mc in block.mentions for v in mc.values if row.get(v) is not None]
            for mc in block.mentions:
                if mc.path[0] not in block.json_schema.get("properties", {}):
                    continue   # copied from a real row
                parent = get_path(record, mc.path[:-1]) if len(mc.path) > 1 else record
                text, label = parent.get(mc.path[-1]), ".".join(mc.path)
                found = (plausibility.mentions_problem(text, mentioned[label], seed_values, allow)
                         if isinstance(text, str) else None)
                if found is not None:
                    verdict.reason = f"{found}: {label}"
                    break
        return verdict

    def _judge(self, block: Block, made: list[Candidate]) -> list[Candidate]:
        """The judge's score for every record that passed its checks, in one engine call."""
        judge = block.judge
        assert judge is not None and block.judge_schema is not None
        model = self.plan.models[judge.model]
        todo = [i for i, c in enumerate(made) if c.ok]
        requests = [GenerationRequest(messages=judge_messages(judge.rubric, made[i].record),
                                      json_schema=block.judge_schema, max_tokens=16, seed=made[i].seed ^ 0x5A5A,
                                      temperature=model.temperature, top_p=model.top_p) for i in todo]
        results, reused = self._generate(judge.model, requests) if requests else ([], [])
        out = list(made)
        for i, result, hit in zip(todo, results, reused):
            c = replace(made[i], reused=made[i].reused + hit, sent=made[i].sent + (result is not None and not hit))
            score = judge_score(result) if result is not None else None
            if result is None:
                out[i] = replace(c, ok=False, why=PENDING, record={}, spans={})
            elif score is None:
                out[i] = replace(c, ok=False, why="judge_error", record={}, spans={})
            elif score < judge.min_score:
                out[i] = replace(c, ok=False, why="judge", score=score, record={}, spans={})
            else:
                out[i] = replace(c, judge_score=score)
        return out


def _engine_key(model: ir.Model) -> str:
    """What a loaded engine depends on: the model's settings but its name and sampling ones."""
    return json.dumps(model.dump(mode="json", exclude={"name", "temperature", "top_p", "max_tokens"}),
                      sort_keys=True)


def cache_folder(options: RunOptions) -> Path:
    """The cache's folder, created. Inside the output tree it is held to that tree like every
    other file a run writes (a symlink on the way may not lead out); a folder named elsewhere
    is the user's own choice."""
    assert options.cache_dir is not None
    root = options.root or options.out_dir
    folder = Path(os.path.abspath(options.cache_dir))
    if folder.is_relative_to(os.path.abspath(root)):
        return ensure_dir(folder, root)
    return ensure_dir(folder, folder)


def _label_values(plan: Plan, t: ir.Type) -> list[str]:
    if isinstance(t, ir.BoolType):
        return ["true", "false"]
    if isinstance(t, ir.EnumType):
        return list(plan.enums[t.name].values) if t.name in plan.enums else list(t.values)
    assert isinstance(t, ir.LiteralType)
    return list(t.values)


def _read_label(result: GenerationResult) -> str | None:
    if result.error is not None:
        return None
    try:
        answer = load_json(result.text or "", max_depth=4)
    except ValueError:
        return None
    value = answer.get("label") if isinstance(answer, dict) else None
    return value if isinstance(value, str) else None


def _merge(values: dict, written: dict) -> dict:
    out = dict(values)
    for k, v in written.items():
        drawn = out.get(k)
        if isinstance(v, dict) and isinstance(drawn, dict):
            out[k] = _merge(drawn, v)
        elif isinstance(v, list) and isinstance(drawn, list) and len(v) == len(drawn) \
                and all(isinstance(a, dict) and isinstance(b, dict) for a, b in zip(drawn, v)):
            out[k] = [_merge(a, b) for a, b in zip(drawn, v)]   # a drawn list's items, and what the model wrote in them
        else:
            out[k] = v
    return out
