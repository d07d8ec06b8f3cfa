"""Continuous batching on one llama.cpp context.

The context holds `slots` sequences, each in its own KV-cache stream (llama.cpp's non-unified
cache), so a sequence attends to its own tokens only. Every step evaluates the prompt of each
sequence just admitted (one by one), then one token of every running sequence in one
`llama_decode`; the grammar masks of all sequences that need a token are computed in one call; each sequence then
samples from its own random stream. A sequence that finishes leaves at once and the next queued
job takes its slot, so a long record never holds up short ones.

Prefix reuse: a slot keeps the prompt its cache holds. A job evaluates only the part of its
prompt after the longest prefix it shares with its slot's cache, or with another slot's (then
copied over): the system prompt and the block's template text up to the first sampled value
are evaluated once, not once per record.

What a job's tokens depend on: its prompt, its grammar and its seed, and, through floating
point only, the other sequences decoded in the same steps. Sampling draws from the job's own
stream and attention sees the job's own cache stream; but llama.cpp's CPU kernels round a
matrix product differently with the number of rows it has, so a token near a tie can come out
differently in another batch. The same jobs in the same order on a decoder of the same size
give the same tokens, whatever its cache held before (tests/test_engine_llamacpp.py)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import EngineDead
from .grammars import Grammars, Matcher, allocate_bitmask, allowed_tokens
from .token_sampling import TokenSampler

# a prompt prefix is copied from another slot when that saves at least this many tokens: the
# copy moves a whole cache stream, which costs about as much as evaluating a few dozen tokens
MIN_COPY_GAIN = 32


@dataclass
class Job:
    prompt: list[int]
    max_tokens: int
    sampler: TokenSampler
    matcher: Matcher | None             # None: unconstrained
    logprobs: int = 0                   # report the k most likely allowed tokens at each step


@dataclass
class Done:
    tokens: list[int] = field(default_factory=list)
    error: str | None = None
    reason: str | None = None           # set when the error is deterministic (see GenerationResult)
    seconds: float = 0.0                # this job's share of the decoding steps it took part in
    prompt_reused: int = 0              # prompt tokens served from the slot's cache
    # per generated token, when the job asked: the k most likely allowed tokens and their
    # log-probabilities (temperature 1, over what the constraint allows)
    choices: list[list[tuple[int, float]]] = field(default_factory=list)


@dataclass
class _Running:
    index: int
    job: Job
    feed: list[int]                     # tokens to evaluate in the next step
    pos: int                            # position of feed[0]
    done: Done
    logits: np.ndarray | None = None


@dataclass
class DecodeStats:
    steps: int = 0
    tokens_generated: int = 0
    prompt_tokens: int = 0
    prompt_reused: int = 0
    decode_seconds: float = 0.0
    mask_seconds: float = 0.0
    sample_seconds: float = 0.0
    moves: int = 0                      # sequences moved into a lower slot
    prefix_copies: int = 0              # prompts started from another slot's cache


class BatchDecoder:
    def __init__(self, lib: Any, model_ptr: Any, n_vocab: int, stop_tokens: set[int], slots: int,
                 ctx_per_slot: int, threads: int, grammars: Grammars):
        self.C = lib
        self.n_vocab = n_vocab
        self.stop_tokens = stop_tokens
        self.slots = slots
        self.grammars = grammars
        params = lib.llama_context_default_params()
        params.n_seq_max = slots
        params.kv_unified = False            # one cache stream per sequence
        params.n_ctx = ctx_per_slot * slots
        params.n_batch = params.n_ubatch = self.n_ubatch = 512
        params.n_threads = params.n_threads_batch = threads
        # llama.cpp's CPU flash attention evaluates a prompt chunk differently from a single
        # token, so reusing a cached prefix would change the text; plain attention does not
        params.flash_attn_type = lib.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self.ctx = lib.llama_init_from_model(model_ptr, params)
        if not self.ctx:
            raise EngineDead(f"llama.cpp could not make a context for {slots} sequences of {ctx_per_slot} "
                             "tokens (out of memory?); set a smaller --batch")
        self.ctx_per_slot = lib.llama_n_ctx(self.ctx) // slots
        self.memory = lib.llama_get_memory(self.ctx)
        self.batch = lib.llama_batch_init(max(self.n_ubatch, slots), 0, 1)
        self.cached: list[list[int]] = [[] for _ in range(slots)]  # tokens each slot's cache holds
        self.bitmask = allocate_bitmask(slots, n_vocab)
        self.stats = DecodeStats()

    def close(self) -> None:
        if self.ctx:
            self.C.llama_batch_free(self.batch)
            self.C.llama_free(self.ctx)
            self.ctx = None

    # the loop ----------------------------------------------------------------------------------
    def run(self, jobs: list[Job]) -> list[Done]:
        results: list[Done | None] = [None] * len(jobs)
        queue = deque(range(len(jobs)))
        running: dict[int, _Running] = {}
        while queue or running:
            self._admit(jobs, queue, running, results)
            if not running:
                continue
            if not queue:
                self._compact(running)
            started = time.perf_counter()
            members = [r.done for r in running.values()]
            self._decode(running)
            self._sample(running, results)
            share = (time.perf_counter() - started) / len(members)
            for done in members:
                done.seconds += share
        return [r if r is not None else Done(error="not decoded") for r in results]

    def _admit(self, jobs: list[Job], queue: deque[int], running: dict[int, _Running],
               results: list[Done | None]) -> None:
        free = [s for s in range(self.slots) if s not in running]
        while queue and free:
            index = queue.popleft()
            job = jobs[index]
            if not job.prompt:
                results[index] = Done(error="empty prompt", reason="request_refused")
                continue
            if len(job.prompt) + job.max_tokens > self.ctx_per_slot:
                results[index] = Done(error=f"the prompt ({len(job.prompt)} tokens) and max_tokens "
                                            f"({job.max_tokens}) exceed the context of {self.ctx_per_slot} "
                                            "tokens per sequence; raise the model's n_ctx",
                                      reason="context_exceeded")
                continue
            # the lowest free slot: llama.cpp evaluates a run of neighbouring sequences in one
            # pass, scattered ones in several
            slot = min(free)
            free.remove(slot)
            # at least two prompt tokens are evaluated, so a reused prefix leaves the rest on the
            # same kernels as a whole prompt (see _decode); the last one's logits start the output
            keep = max(0, min(_common(self.cached[slot], job.prompt), len(job.prompt) - 2))
            self.C.llama_memory_seq_rm(self.memory, slot, keep, -1)
            self.cached[slot] = job.prompt[:keep]
            done = Done(prompt_reused=keep)
            self.stats.prompt_tokens += len(job.prompt)
            self.stats.prompt_reused += keep
            running[slot] = _Running(index, job, feed=job.prompt[keep:], pos=keep, done=done)

    def _compact(self, running: dict[int, _Running]) -> None:
        """Move the last sequences into the holes finished ones left, so the running ones are
        neighbours again (once nothing is queued to fill the holes). llama.cpp copies the
        whole cache stream; the sequence's values are unchanged, only where they live."""
        for hole in range(len(running)):
            if hole in running:
                continue
            last = max(running)
            if last < hole:
                break
            self.C.llama_memory_seq_cp(self.memory, last, hole, -1, -1)
            self.C.llama_memory_seq_rm(self.memory, last, -1, -1)
            running[hole] = running.pop(last)
            self.cached[hole], self.cached[last] = self.cached[last], []
            self.stats.moves += 1

    def _decode(self, running: dict[int, _Running]) -> None:
        """Evaluate every running sequence's feed; keep the logits of each one's last token.

        A prompt is evaluated on its own, in chunks of two tokens or more (llama.cpp multiplies
        a lone token with other kernels than two or more, and the two round differently, so a
        prompt gives the same cache whatever prefix of it was reused); the sequences that are
        generating are evaluated together, one token each."""
        started = time.perf_counter()
        step = []
        for slot, r in sorted(running.items()):  # in slot order, or llama.cpp splits the batch
            if len(r.feed) == 1:
                step.append((r.feed[0], r.pos, slot, True))
                continue
            self._share_prefix(slot, r)
            at = 0
            for size in _chunks(len(r.feed), self.n_ubatch):
                self._call([(tok, r.pos + at + i, slot, at + i == len(r.feed) - 1)
                            for i, tok in enumerate(r.feed[at:at + size])], running)
                at += size
            self._advance(slot, r)
        if step:
            self._call(step, running)
        self.stats.decode_seconds += time.perf_counter() - started
        self.stats.steps += 1
        for slot, r in running.items():
            self._advance(slot, r)

    def _advance(self, slot: int, r: _Running) -> None:
        self.cached[slot].extend(r.feed)
        r.pos += len(r.feed)
        r.feed = []

    def _share_prefix(self, slot: int, r: _Running) -> None:
        """Before a prompt is evaluated: when another slot holds a longer prefix of it than
        this one (a prompt evaluated earlier in this step or still running), copy that
        slot's cache here instead of evaluating the prefix again. llama.cpp copies a whole
        cache stream, so it is done only when it saves enough tokens."""
        prompt = r.job.prompt
        best, source = r.pos, None
        for s in range(self.slots):
            if s != slot:
                n = min(_common(self.cached[s], prompt), len(prompt) - 2)
                if n > best:
                    best, source = n, s
        if source is None or best - r.pos < MIN_COPY_GAIN:
            return
        self.C.llama_memory_seq_cp(self.memory, source, slot, -1, -1)
        self.C.llama_memory_seq_rm(self.memory, slot, best, -1)
        self.cached[slot] = prompt[:best]
        self.stats.prompt_reused += best - r.pos
        self.stats.prefix_copies += 1
        r.done.prompt_reused += best - r.pos
        r.feed, r.pos = prompt[best:], best

    def _call(self, entries: list[tuple[int, int, int, bool]], running: dict[int, _Running]) -> None:
        b = self.batch
        b.n_tokens = len(entries)
        for i, (tok, pos, slot, wants) in enumerate(entries):
            b.token[i] = tok
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = slot
            b.logits[i] = wants
        rc = self.C.llama_decode(self.ctx, b)
        if rc != 0:
            raise EngineDead(f"llama_decode failed (code {rc}) on a batch of {len(entries)} tokens")
        for i, (_, _, slot, wants) in enumerate(entries):
            if wants:
                ptr = self.C.llama_get_logits_ith(self.ctx, i)
                running[slot].logits = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()

    def _sample(self, running: dict[int, _Running], results: list[Done | None]) -> None:
        started = time.perf_counter()
        constrained: list[tuple[Matcher, int]] = [(r.job.matcher, slot) for slot, r in running.items()
                                                  if r.job.matcher is not None]
        if constrained:
            self.grammars.fill(constrained, self.bitmask)
        masked = time.perf_counter()
        self.stats.mask_seconds += masked - started
        finished = []
        for slot, r in running.items():
            assert r.logits is not None
            allowed = allowed_tokens(self.bitmask[slot], self.n_vocab) if r.job.matcher is not None else None
            token = r.job.sampler.sample(r.logits, allowed)
            if r.job.logprobs and token is not None and token not in self.stop_tokens:
                r.done.choices.append(top_logprobs(r.logits, allowed, r.job.logprobs))
            r.logits = None
            if token is None:
                r.done.error = "the constraint allows no token here"
                finished.append(slot)
                continue
            if r.job.matcher is not None and not r.job.matcher.consume(token):
                r.done.error = f"the constraint refused token {token}"
                finished.append(slot)
                continue
            if token in self.stop_tokens:
                finished.append(slot)
                continue
            r.done.tokens.append(token)
            self.stats.tokens_generated += 1
            if len(r.done.tokens) >= r.job.max_tokens or (r.job.matcher is not None and r.job.matcher.finished()):
                finished.append(slot)
            else:
                r.feed = [token]
        for slot in finished:
            r = running.pop(slot)
            results[r.index] = r.done
            # only a prompt can be shared with the next one: the output leaves the cache, so
            # an idle slot does not widen the attention of the running ones
            keep = len(r.job.prompt)
            self.C.llama_memory_seq_rm(self.memory, slot, keep, -1)
            del self.cached[slot][keep:]
        self.stats.sample_seconds += time.perf_counter() - masked


def top_logprobs(logits: np.ndarray, allowed: np.ndarray | None, k: int) -> list[tuple[int, float]]:
    """The k most likely of the allowed tokens (all tokens when None), with their
    log-probabilities among the allowed ones, most likely first."""
    ids = np.arange(logits.size) if allowed is None else allowed
    x = logits[ids].astype(np.float64)
    norm = x.max() + np.log(np.exp(x - x.max()).sum())
    top = np.argsort(-x, kind="stable")[:k]
    return [(int(ids[i]), float(x[i] - norm)) for i in top]


def _chunks(n: int, most: int) -> list[int]:
    """Sizes of at most `most` summing to n (n >= 2), none of them 1."""
    sizes = [most] * (n // most) + ([n % most] if n % most else [])
    if sizes[-1] == 1:
        sizes[-1] = 2
        sizes[-2] -= 1
    return sizes


def _common(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    x = np.asarray(a[:n])
    y = np.asarray(b[:n])
    diff = np.flatnonzero(x != y)
    return int(diff[0]) if diff.size else n
