"""The Engine protocol: constrained generation of JSON for a batch of requests."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

ErrorKind = Literal["transient", "deterministic", "exhausted"]


@dataclass(frozen=True)
class GenerationRequest:
    messages: tuple[dict, ...]      # chat messages: {"role": ..., "content": ...}
    json_schema: dict               # the constraint; strings carry their patterns
    max_tokens: int
    seed: int
    temperature: float
    top_p: float
    logprobs: int = 0               # how many likely tokens to report at each step (0: none)


# One generated token: its text and the log-probabilities of the most likely tokens at its place
# (the constraint's allowed tokens where the engine can tell), its own among them where it can.
TokenChoices = tuple[str, dict[str, float]]


def merge_pieces(pairs: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Token texts and log-probabilities to one entry per text (two tokens can read the same);
    tokens the constraint ruled out (-inf, as vLLM reports them) are left out."""
    merged: dict[str, float] = {}
    for text, lp in pairs:
        if lp == -math.inf:
            continue
        if text in merged:
            hi, lo = max(merged[text], lp), min(merged[text], lp)
            lp = hi + math.log1p(math.exp(lo - hi))
        merged[text] = lp
    return merged


@dataclass
class GenerationResult:
    text: str | None                # the raw output; None on error
    tokens: int = 0
    error: str | None = None
    seconds: float = 0.0
    logprobs: list[TokenChoices] | None = None  # per generated token, when the request asked for them
    # what an error means for asking again: "transient" (a dropped connection, an overloaded
    # server: the same request may succeed), "deterministic" (the same request and seed fail
    # the same way: output cut at max_tokens, a prompt past the context, a refused schema, a
    # malformed reply) or "exhausted" (transient, but the engine already retried it to its limit)
    error_kind: ErrorKind = "transient"
    reason: str | None = None       # a deterministic error's name in the manifest (`max_tokens`)


def deterministic(error: str, reason: str, tokens: int = 0, seconds: float = 0.0) -> GenerationResult:
    """A failed result that asking again cannot change, named `reason` among rejections."""
    return GenerationResult(None, tokens=tokens, error=error, seconds=seconds, error_kind="deterministic",
                            reason=reason)


class EngineDead(Exception):
    """The engine cannot go on (crashed, out of memory): the run stops, resumably."""


class ConstraintNotEnforced(Exception):
    """The conformance probe saw output that breaks its constraint."""


# The JSON Schema features a plan may rely on; an engine states which of them it enforces.
FEATURES = ("pattern", "enum", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems",
            "patternWithLength")
ALL = frozenset(FEATURES)


class Engine(Protocol):
    name: str
    # the features its constrained decoding enforces; None when unknown (they are probed)
    capabilities: frozenset[str] | None
    # requests one generate() call should carry to keep the engine busy
    in_flight: int

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """One result per request, in order. A failing request gives a result with `error`."""

    def close(self) -> None: ...


@dataclass
class EngineOptions:
    constrained: bool = True        # off only for benchmarks and the probe's own test
    threads: int | None = None
    batch: int | None = None        # sequences decoded together (llama.cpp); None: from memory and context
    key_endpoints: tuple[str, ...] = ()  # servers the user lets an API key go to (--allow-endpoint)
    spec_dir: Path | None = None    # the spec's (or plan's) folder: local model files are relative to it
    log_file: Path | None = None    # where vLLM's and llama.cpp's own output goes (None: the terminal)
    verbose: bool = False           # let the engine libraries print everything they would (--verbose)
    extra: dict = field(default_factory=dict)
