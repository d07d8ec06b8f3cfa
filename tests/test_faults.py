"""The fault campaign (tests/fault_campaign.py), small enough for CI: SIGKILLs at random points,
damaged journal and cache, two runs at once, a prune during a run, edits between runs (counts,
quotas, prompts, steps, a seeds file) and a failing or stalling server, each ending in a resume
that holds exactly the uninterrupted run's records; and the openai engine against a stalled
server on its own."""

import sys
import threading
import time
from pathlib import Path

import pytest

from synthlang.engines.base import EngineDead

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fault_campaign import Server, campaign


def test_every_fault_ends_in_a_clean_resume_with_nothing_lost_duplicated_or_hung():
    figures = campaign(kills_n=2, seed=7, edit_names=("count", "quota", "prompt"),
                       step_edit_names=("step added with its field", "step removed"),
                       seed_edit_names=("seeds row edited",))
    print(figures.line())
    assert figures.failures == [], figures.failures
    assert figures.cases >= 20 and figures.faults >= 20 and figures.records_compared >= 200
    assert (figures.lost, figures.duplicated, figures.hung) == (0, 0, 0)


# ---- a server that stalls: the engine on its own, with short timeouts --------------------------

def _openai_engine(url, timeout=0.5):
    from synthlang import ir
    from synthlang.engines.base import EngineOptions
    from synthlang.engines.openai_compat import OpenAICompatEngine

    model = ir.Model(name="m", engine="openai", model="m", endpoint=url, concurrency=4)
    return OpenAICompatEngine(model, EngineOptions(), timeout=timeout, backoff=0.05)


def _request(seed):
    from synthlang.engines.base import GenerationRequest

    schema = {"type": "object", "properties": {"b": {"type": "string", "minLength": 3, "maxLength": 40}},
              "required": ["b"], "additionalProperties": False}
    return GenerationRequest(messages=({"role": "user", "content": "Write b."},), json_schema=schema,
                             max_tokens=64, seed=seed, temperature=1.0, top_p=1.0)


@pytest.mark.parametrize("kind", ["stall", "stall_headers", "trickle"])
def test_a_server_that_stalls_stops_the_engine_within_its_timeouts(kind):
    """A server that takes the requests and never answers (nothing, or the headers and then
    nothing, or a byte now and then): the engine gives up within about two timeouts, saying so,
    instead of asking every request six times, call after call."""
    srv = Server(lambda n, seed: kind)
    engine = _openai_engine(srv.url)
    outcome: list = []

    def call():
        try:
            outcome.append(engine.generate([_request(i) for i in range(8)]))
        except EngineDead as exc:
            outcome.append(exc)

    started = time.perf_counter()
    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout=20)
    took = time.perf_counter() - started
    srv.stop()
    engine.close()
    assert not worker.is_alive(), f"still waiting on a stalled server after {took:.0f} s"
    assert isinstance(outcome[0], EngineDead), outcome
    assert "no reply" in str(outcome[0]) and "0.5 s" in str(outcome[0])
    assert took < 5


def test_a_request_that_stalls_once_is_retried_and_the_rest_go_on():
    """One stalled try is transient: retried, and the retry's answer is the healthy one."""
    seen: set[int] = set()

    def fault(n, seed):
        first = seed not in seen
        seen.add(seed)
        return "stall" if first and seed % 2 == 0 else "ok"

    srv = Server(fault)
    engine = _openai_engine(srv.url)
    try:
        results = engine.generate([_request(i) for i in range(6)])
    finally:
        srv.stop()
        engine.close()
    assert all(r.error is None for r in results), [r.error for r in results]
    healthy = Server(lambda n, seed: "ok")
    engine = _openai_engine(healthy.url)
    try:
        assert [r.text for r in engine.generate([_request(i) for i in range(6)])] == [r.text for r in results]
    finally:
        healthy.stop()
        engine.close()
