"""A judge's score out of its reply `{"score": N}`, N from 1 to 5.

`judge_score` reads the score the judge wrote. `graded_score` is the expected score under the
judge's own probabilities for the score's token, where the engine reported them: a judge that
writes 4 with 55% and 3 with 40% gives 3.6. Candidates are ranked by it, so two answers a small
judge rates with the same digit are still told apart by how sure it was, and a tie is rare
(the reply's digit is the fallback for an engine that reports no probabilities)."""

from __future__ import annotations

import math
import re

from ..engines.base import GenerationResult
from ..values import MAX_STORED_DEPTH, load_json

SCORES = ("1", "2", "3", "4", "5")
_SCORE_AT = re.compile(r'"score"\s*:\s*([1-5])')


def judge_score(result: GenerationResult) -> int | None:
    try:
        score = load_json(result.text or "", max_depth=MAX_STORED_DEPTH)["score"]
    except (TypeError, KeyError, ValueError):
        return None
    return score if isinstance(score, int) and not isinstance(score, bool) and 1 <= score <= 5 else None


def graded_score(result: GenerationResult) -> float | None:
    """The expected score (3 decimals) from the probabilities at the score's token; the written
    score when there are none; None when the reply holds no score."""
    written = judge_score(result)
    if written is None:
        return None
    at = _SCORE_AT.search(result.text or "")
    if not result.logprobs or at is None:
        return float(written)
    offset = 0
    for piece, choices in result.logprobs:
        if offset + len(piece) > at.start(1):
            weights = {s: 0.0 for s in SCORES}
            for text, lp in choices.items():
                if text.strip() in weights:
                    weights[text.strip()] += math.exp(lp)
            total = sum(weights.values())
            if total <= 0:
                return float(written)
            return round(sum(int(s) * w for s, w in weights.items()) / total, 3)
        offset += len(piece)
    return float(written)
