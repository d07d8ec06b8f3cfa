"""Batched decoding without a model: token sampling, prompt chunks, the GGUF header, and the
driver keeping the engine full across quota cells without changing a record."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from synthlang.compiler import compile
from synthlang.engines.embedded import embedded_model_path
from synthlang.engines.fake import FakeEngine
from synthlang.engines.gguf_weights import UNBATCHED_FILE_TYPES, file_type
from synthlang.engines.llama_batch import _chunks, top_logprobs
from synthlang.engines.token_sampling import TokenSampler
from synthlang.runtime.driver import run_plan
from synthlang.runtime.options import RunOptions
from synthlang.runtime.pool import LocalPool

ROOT = Path(__file__).resolve().parents[1]


def _logits(seed, n=5000, scale=3.0):
    return (np.random.default_rng(seed).normal(size=n) * scale).astype(np.float32)


def test_a_sequence_draws_from_its_own_stream():
    logits = _logits(1)
    alone = TokenSampler(7, 0.8, 0.95)
    tokens_alone = [alone.sample(logits, None) for _ in range(60)]
    # the same seed, sampled while another sequence draws between its tokens
    shared, other = TokenSampler(7, 0.8, 0.95), TokenSampler(8, 0.8, 0.95)
    tokens_shared = []
    for _ in range(60):
        other.sample(logits, None)
        tokens_shared.append(shared.sample(logits, None))
    assert tokens_alone == tokens_shared
    different = TokenSampler(8, 0.8, 0.95)
    assert tokens_alone != [different.sample(logits, None) for _ in range(60)]


def test_only_allowed_tokens_are_drawn_and_temperature_zero_is_greedy():
    logits = _logits(2)
    allowed = np.array([3, 17, 400, 4999])
    sampler = TokenSampler(3, 1.5, 1.0)
    assert {sampler.sample(logits, allowed) for _ in range(200)} <= set(allowed.tolist())
    assert TokenSampler(3, 0.0, 1.0).sample(logits, allowed) == int(allowed[np.argmax(logits[allowed])])
    assert TokenSampler(3, 0.8, 0.9).sample(logits, np.array([], dtype=np.int64)) is None


@pytest.mark.parametrize("scale", [0.3, 3.0, 12.0])  # flat, usual, peaked distributions
@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.99])
def test_nucleus_from_the_candidates_equals_the_full_sort(scale, top_p):
    for seed in range(5):
        logits = _logits(seed, scale=scale)
        weights = np.exp(logits - logits.max())
        ids = np.arange(weights.size)
        order = ids[np.lexsort((ids, -weights))]
        cumulative = np.cumsum(weights[order], dtype=np.float64)
        cut = int(np.searchsorted(cumulative, top_p * weights.sum(dtype=np.float64))) + 1
        got = TokenSampler(0, 1.0, top_p)._nucleus(weights)
        assert got.tolist() == order[:cut].tolist()


def test_top_logprobs_are_over_the_allowed_tokens_most_likely_first():
    logits = _logits(3, n=50)
    allowed = np.array([4, 9, 17, 30, 41])
    top = top_logprobs(logits, allowed, 3)
    assert [t for t, _ in top] == sorted(allowed.tolist(), key=lambda t: -logits[t])[:3]
    every = top_logprobs(logits, allowed, 10)
    assert len(every) == 5 and np.isclose(sum(np.exp(lp) for _, lp in every), 1.0)
    whole = top_logprobs(logits, None, 1)
    assert whole[0][0] == int(np.argmax(logits)) and whole[0][1] < 0


def test_prompt_chunks_are_never_a_single_token():
    for n in range(2, 1600):
        sizes = _chunks(n, 512)
        assert sum(sizes) == n and all(2 <= s <= 512 for s in sizes), (n, sizes)


def test_the_embedded_model_file_type_is_read_from_its_header(tmp_path):
    assert UNBATCHED_FILE_TYPES[file_type(embedded_model_path())] == "Q4_1"
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 30)
    assert file_type(junk) is None
    (tmp_path / "empty.gguf").write_bytes(b"")
    assert file_type(tmp_path / "empty.gguf") is None


class SpyPool(LocalPool):
    def __init__(self, plan, options):
        super().__init__(plan, options)
        self.calls = []

    def run(self, block_id, work):
        self.calls.append([(ci, len(attempts)) for ci, attempts in work])
        return super().run(block_id, work)


def _run(tmp_path, name, batch):
    folder = tmp_path / name
    shutil.copytree(ROOT / "specs/support_tickets", folder)
    plan = compile(folder / "tickets.synth").plan
    options = RunOptions(out_dir=tmp_path / name / "out", engine_factory=lambda m: FakeEngine(batch=batch),
                         progress=False)
    pool = SpyPool(plan, options)
    run_plan(plan, options, pool=pool)
    rows = [json.loads(line) for split in ("train", "test")
            for line in (tmp_path / name / "out" / f"{split}.jsonl").read_text().splitlines()]
    return rows, pool.calls


def test_waves_span_cells_and_change_no_record(tmp_path):
    one_at_a_time, small_calls = _run(tmp_path, "one", batch=1)
    wide, wide_calls = _run(tmp_path, "wide", batch=32)
    assert all(len(call) == 1 and call[0][1] == 1 for call in small_calls)
    # the wide engine is sent later cells' attempts along with the current cell's
    assert any(len(call) > 1 for call in wide_calls)
    assert max(sum(n for _, n in call) for call in wide_calls) > max(c.count for c in
                                                                     compile(tmp_path / "wide/tickets.synth").plan.blocks[0].cells)
    assert len(wide_calls) < len(small_calls) / 4
    assert wide == one_at_a_time
