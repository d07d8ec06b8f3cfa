"""A fake engine for tests of the runtime and memory benchmarks: it writes random values that
satisfy the request's JSON Schema (patterns included), deterministically from the seed.
It is never used as evidence that generation works; the real engines are."""

from __future__ import annotations

import json
import math
import os
import random
import string
import time

from ..regexes import fullmatch as regex_fullmatch
from ..regexes import literal_runs
from ..regexes import sample as sample_regex
from .base import ALL, GenerationRequest, GenerationResult, TokenChoices

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo",
         "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor",
         "whiskey", "xray", "yankee", "zulu"]

PROSE = string.ascii_lowercase + "      "   # what free-text gaps (e.g. around mentions) are drawn from


def _value(schema: dict, rng: random.Random, broken: bool):
    if "anyOf" in schema:
        return _value(schema["anyOf"][0], rng, broken)
    if "enum" in schema:
        return "not-an-option" if broken else rng.choice(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        return {k: _value(v, rng, broken) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        n = rng.randint(schema.get("minItems", 0), schema.get("maxItems", 3))
        return [_value(schema["items"], rng, broken) for _ in range(n)]
    if kind == "integer":
        return (schema.get("maximum", 10) + 1000) if broken else rng.randint(schema.get("minimum", 0),
                                                                           schema.get("maximum", 10))
    if kind == "number":
        return rng.uniform(schema.get("minimum", 0.0), schema.get("maximum", 1.0))
    if kind == "boolean":
        return rng.random() < 0.5
    if "pattern" in schema and not broken:
        return _sentence(schema["pattern"][1:-1], rng) or sample_regex(
            schema["pattern"][1:-1], rng, schema.get("minLength"), schema.get("maxLength"), alphabet=PROSE)
    lo, hi = schema.get("minLength", 0), schema.get("maxLength", 40)
    if broken:
        return "hello there"
    target = rng.randint(lo, hi)
    words: list[str] = []
    while len(" ".join(words)) < target:
        words.append(rng.choice(WORDS) + "".join(rng.choice(string.ascii_lowercase) for _ in range(3)))
        if rng.random() < 0.4:  # English's small words, as in prose
            words.append(rng.choice(SMALL_WORDS))
    # a sentence, ended as a model ends one: text stopped by its cap mid-phrase is cut (plausibility)
    body = target - 1 if target >= 2 else target
    text = " ".join(words)[:body].rstrip()
    return text + "x" * (body - len(text)) + ("." if body < target else "")


SMALL_WORDS = ["the", "and", "to", "of", "with", "for", "in", "on", "is", "was", "it", "we"]
FILLER = ["please", "send", "it", "to", "the", "office", "and", "thanks", "for", "your", "help", "with", "this", "now"]


def _sentence(pattern: str, rng: random.Random) -> str | None:
    """Text that mentions a pattern's literal values in sentences, as a model writes it; None
    when the pattern does not take it (then the pattern is sampled)."""
    values = literal_runs(pattern)
    if not values:
        return None
    for _ in range(20):
        words = [rng.choice(FILLER) for _ in range(rng.randint(0, 3))]
        text = " ".join([*words, values[0]]) if words else values[0]
        for v in values[1:]:
            text += rng.choice([" ", ", "]) + v
        tail = " ".join(rng.choice(FILLER) for _ in range(12))
        for cut in range(len(tail), 0, -1):
            candidate = text + ", " + tail[:cut].rstrip() + "."
            if regex_fullmatch(pattern, candidate):  # RE2: a pattern from a spec never backtracks
                return candidate
    return None


def _choices(text: str, rng: random.Random) -> list[TokenChoices]:
    """One token per character; a digit's place also holds its neighbours, less likely, as a
    model unsure between two scores would have it."""
    out: list[TokenChoices] = []
    for ch in text:
        choices = {ch: math.log(0.5 + 0.4 * rng.random())}
        if ch.isdigit():
            for near in (int(ch) - 1, int(ch) + 1):
                if 0 <= near <= 9:
                    choices[str(near)] = math.log(0.2 * rng.random() + 1e-6)
        out.append((ch, choices))
    return out


class FakeEngine:
    """`broken=True` ignores the constraint, as a misconfigured real engine would."""

    def __init__(self, broken: bool = False, delay: float | None = None, batch: int | None = None):
        self.name = "fake" + ("-broken" if broken else "")
        self.in_flight = batch or 4
        self.broken = broken
        self.capabilities = None if broken else ALL
        self.delay = float(os.environ.get("SYNTHLANG_FAKE_DELAY", "0")) if delay is None else delay

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        out = []
        for r in requests:
            if self.delay:
                time.sleep(self.delay)
            rng = random.Random(r.seed)
            value = _value(r.json_schema, rng, self.broken)
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            out.append(GenerationResult(text, tokens=len(text) // 4, seconds=self.delay,
                                        logprobs=_choices(text, rng) if r.logprobs else None))
        return out

    def close(self) -> None:
        return None


class FakeFactory:
    """A picklable engine factory (Ray workers build their engine from it)."""

    def __init__(self, broken: bool = False, delay: float | None = None, batch: int | None = None):
        self.broken, self.delay, self.batch = broken, delay, batch

    @property
    def identity(self) -> dict:
        """What the result cache keys a fake engine's results on (engines/identity.py)."""
        return {"engine": "fake", "broken": self.broken}

    def __call__(self, model) -> FakeEngine:
        return FakeEngine(broken=self.broken, delay=self.delay, batch=self.batch)
