"""Choosing the next token of one sequence: temperature and nucleus (top-p) sampling over the
tokens its grammar allows, from the sequence's own random stream.

A sequence's stream is seeded by its request's seed and draws one number per token, so the
tokens chosen depend on that seed and on the logits alone: never on which other sequences
share the batch or in what order they are sampled."""

from __future__ import annotations

import numpy as np


class TokenSampler:
    def __init__(self, seed: int, temperature: float, top_p: float):
        self.rng = np.random.default_rng(seed % (2**63))
        self.temperature = temperature
        self.top_p = top_p

    def sample(self, logits: np.ndarray, allowed: np.ndarray | None) -> int | None:
        """The next token id; `allowed` holds the token ids the constraint permits (None: all).
        None when nothing is allowed."""
        ids = allowed
        x = logits if ids is None else logits[ids]
        if x.size == 0:
            return None
        if self.temperature <= 0:
            best = int(np.argmax(x))
            return best if ids is None else int(ids[best])
        z = x.astype(np.float32) / np.float32(self.temperature)
        weights = np.exp(z - z.max())
        keep = self._nucleus(weights)
        cumulative = np.cumsum(weights[keep], dtype=np.float64)
        u = self.rng.random() * cumulative[-1]
        pick = int(keep[min(int(np.searchsorted(cumulative, u, side="right")), keep.size - 1)])
        return pick if ids is None else int(ids[pick])

    def _nucleus(self, weights: np.ndarray) -> np.ndarray:
        """Indices of the smallest set of most likely tokens holding top_p of the mass, most
        likely first (ties broken by index). Only tokens of weight >= (1 - top_p) x total / n
        can be in it: all the others together hold less than 1 - top_p of the mass, so the
        few candidates are sorted instead of the whole vocabulary."""
        if self.top_p >= 1.0:
            return np.arange(weights.size)
        total = float(weights.sum(dtype=np.float64))
        candidates = np.flatnonzero(weights >= (1.0 - self.top_p) * total / weights.size)
        order = candidates[np.lexsort((candidates, -weights[candidates]))]
        cumulative = np.cumsum(weights[order], dtype=np.float64)
        cut = int(np.searchsorted(cumulative, self.top_p * total)) + 1
        return order[:min(cut, order.size)]
