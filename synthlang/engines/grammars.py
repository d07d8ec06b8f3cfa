"""Decoding constraints for the batched llama.cpp engine: a JSON Schema compiled once per schema,
one matcher per sequence, and the token masks of a whole batch computed in one call.

Two libraries can do it: llguidance (`LLMatcher`; masks for the batch computed in parallel in
native code) and outlines_core (an `Index` built once per schema, a `Guide` per sequence). Both
write the same bitmask layout: bit t of the row is set when token t is allowed."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Protocol

import numpy as np


class Matcher(Protocol):
    def consume(self, token: int) -> bool:
        """Advance by one token; False when the grammar refuses it."""

    def finished(self) -> bool:
        """Nothing more may follow (the value is complete)."""


class Grammars(Protocol):
    def matcher(self, schema: dict) -> Matcher:
        """A fresh matcher for one sequence (the schema's grammar is compiled once and cached)."""

    def fill(self, work: list[tuple[Matcher, int]], bitmask: np.ndarray) -> None:
        """Write each matcher's allowed next tokens into its row of `bitmask`."""


def allocate_bitmask(rows: int, n_vocab: int) -> np.ndarray:
    return np.full((rows, (n_vocab + 31) // 32), -1, dtype=np.int32)


def allowed_tokens(row: np.ndarray, n_vocab: int) -> np.ndarray:
    """The token ids whose bit is set in one bitmask row."""
    bits = np.unpackbits(row.view(np.uint8), bitorder="little")[:n_vocab]
    return np.flatnonzero(bits)


class _Cache:
    """Compiled grammars by schema, the most recently used kept."""

    def __init__(self, size: int = 64):
        self.items: OrderedDict[str, Any] = OrderedDict()
        self.size = size

    def get(self, schema: dict, build: Any) -> Any:
        key = json.dumps(schema, sort_keys=True)
        found = self.items.get(key)
        if found is not None:
            self.items.move_to_end(key)
            return found
        made = self.items[key] = build(schema)
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return made


# llguidance ------------------------------------------------------------------------------------
class _LLGuidanceMatcher:
    def __init__(self, inner: Any):
        self.inner = inner

    def consume(self, token: int) -> bool:
        return bool(self.inner.consume_token(token)) and not self.inner.is_error()

    def finished(self) -> bool:
        return bool(self.inner.is_stopped())


class LLGuidanceGrammars:
    def __init__(self, vocab_ptr: Any):
        import llguidance
        from llguidance.llamacpp import lltokenizer_from_vocab

        self.llg = llguidance
        self.tokenizer = lltokenizer_from_vocab(vocab_ptr)
        self.executor = llguidance.LLExecutor()
        self.cache = _Cache()

    def _compile(self, schema: dict) -> Any:
        # compact JSON: no free whitespace the model could fill until max_tokens
        text = json.dumps({**schema, "x-guidance": {"whitespace_flexible": False}})
        grammar = self.llg.grammar_from("json_schema", text)
        problem = self.llg.LLMatcher.validate_grammar(grammar)
        if problem:
            raise ValueError(f"llguidance cannot build this constraint: {problem[:300]}")
        template = self.llg.LLMatcher(self.tokenizer, grammar)
        if template.is_error():
            raise ValueError(f"llguidance cannot build this constraint: {template.get_error()[:300]}")
        return template

    def matcher(self, schema: dict) -> Matcher:
        return _LLGuidanceMatcher(self.cache.get(schema, self._compile).deep_copy())

    def fill(self, work: list[tuple[Matcher, int]], bitmask: np.ndarray) -> None:
        if not work:
            return
        import llguidance.numpy as lln

        lln.fill_next_token_bitmask_par(self.executor, [(m.inner, row) for m, row in work],  # type: ignore[attr-defined]
                                        bitmask)


# outlines_core ---------------------------------------------------------------------------------
class _GuideMatcher:
    def __init__(self, guide: Any, eos: int):
        self.guide = guide
        self.eos = eos

    def consume(self, token: int) -> bool:
        if token == self.eos:
            return True
        try:
            self.guide.advance(token_id=token, return_tokens=False)
        except ValueError:
            return False
        return True

    def finished(self) -> bool:
        # a finished guide still allows EOS; its value is complete when nothing else is allowed
        return bool(self.guide.is_finished()) and self.guide.get_tokens() == [self.eos]


class OutlinesCoreGrammars:
    def __init__(self, llm: Any, eos: int):
        import outlines
        from outlines.backends.outlines_core import OutlinesCoreBackend

        self.vocabulary = OutlinesCoreBackend(outlines.from_llamacpp(llm)).vocabulary
        self.eos = eos
        self.cache = _Cache()

    def _compile(self, schema: dict) -> Any:
        from outlines_core import Index

        from .json_regex import json_regex

        # compact JSON (no free whitespace to fill until max_tokens), numbers within their bounds
        return Index(json_regex(schema), self.vocabulary)

    def matcher(self, schema: dict) -> Matcher:
        from outlines_core import Guide

        return _GuideMatcher(Guide(self.cache.get(schema, self._compile)), self.eos)

    def fill(self, work: list[tuple[Matcher, int]], bitmask: np.ndarray) -> None:
        for m, row in work:
            assert isinstance(m, _GuideMatcher)
            view = bitmask[row:row + 1]
            m.guide.write_mask_into(view.ctypes.data, view.size, view.itemsize)
