"""The Engine protocol: constrained generation of JSON for a batch of requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .. import ir


@dataclass(frozen=True)
class GenerationRequest:
    messages: tuple[dict, ...]      # chat messages: {"role": ..., "content": ...}
    json_schema: dict               # the constraint; strings carry their patterns
    max_tokens: int
    seed: int
    temperature: float
    top_p: float


@dataclass
class GenerationResult:
    text: str | None                # the raw output; None on error
    tokens: int = 0
    error: str | None = None
    seconds: float = 0.0


class EngineDead(Exception):
    """The engine cannot go on (crashed, out of memory): the run stops, resumably."""


class ConstraintNotEnforced(Exception):
    """The conformance probe saw output that breaks its constraint."""


class Engine(Protocol):
    name: str

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """One result per request, in order. A failing request gives a result with `error`."""

    def close(self) -> None: ...


@dataclass
class EngineOptions:
    constrained: bool = True        # off only for benchmarks and the probe's own test
    threads: int | None = None
    extra: dict = field(default_factory=dict)


def get_engine(model: ir.Model, options: EngineOptions | None = None) -> Engine:
    options = options or EngineOptions()
    match model.engine:
        case "llamacpp":
            from .llamacpp import LlamaCppEngine
            return LlamaCppEngine(model, options)
        case "openai":
            from .openai_compat import OpenAICompatEngine
            return OpenAICompatEngine(model, options)
        case "vllm":
            from .vllm_engine import VLLMEngine
            return VLLMEngine(model, options)
    raise EngineDead(f"engine `{model.engine}` is not available in this installation")
