"""The fault campaign's real-engine case (tests/fault_campaign.py, `engine_raises`): the
embedded model on llama.cpp failing in the middle of a batch, the run stopping as an engine
failure (exit 3 on the command line) with its journal kept, and a resume on the healthy engine
ending in exactly the records of an uninterrupted run; and the same model on vLLM raising in
the middle of a batch (`vllm_raises`). Marked `engine`; CI runs them. (A SIGKILL of a
real-engine run and its resume: test_engine_llamacpp.py.)"""

import os
import sys
import time
from pathlib import Path

import pytest

from synthlang import ir
from synthlang.engines.base import EngineOptions

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fault_campaign import Figures, engine_raises, vllm_raises

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def engine():
    from synthlang.engines.llamacpp import LlamaCppEngine

    eng = LlamaCppEngine(ir.Model(name="embedded"), EngineOptions(batch=3, threads=1))
    yield eng
    eng.close()


@pytest.mark.parametrize("kind", ["exception", "error code"])
def test_llama_cpp_failing_mid_batch_stops_the_run_and_the_resume_makes_the_same_records(tmp_path, engine, kind):
    figures = Figures()
    started = time.perf_counter()
    engine_raises(tmp_path, figures, engine, kinds=(kind,))
    print(figures.line(), f"({time.perf_counter() - started:.0f} s)")
    assert figures.failures == [], figures.failures
    assert (figures.cases, figures.faults, figures.resumes) == (2, 1, 1)
    assert figures.records_compared == 6 and (figures.lost, figures.duplicated, figures.hung) == (0, 0, 0)


def _vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.fixture(scope="module")
def vllm_engine():
    from synthlang.engines.vllm_engine import VLLMEngine

    eng = VLLMEngine(ir.Model(name="embedded", engine="vllm"), EngineOptions())
    yield eng
    eng.close()


@pytest.mark.skipif(not _vllm_available() and not os.environ.get("SYNTHLANG_REQUIRE_VLLM"),
                    reason="vLLM is not installed (the README's test command installs its CPU build)")
def test_vllm_failing_mid_batch_leaves_nothing_behind_and_the_run_makes_the_same_records(tmp_path, vllm_engine):
    figures = Figures()
    started = time.perf_counter()
    same = vllm_raises(tmp_path, figures, vllm_engine)
    print(figures.line(), f"({time.perf_counter() - started:.0f} s); identical in full to the uninterrupted "
          f"run's: {same}")
    assert figures.failures == [], figures.failures
    assert (figures.cases, figures.faults, figures.resumes) == (3, 2, 1)
    assert figures.records_compared == 24 and (figures.lost, figures.duplicated, figures.hung) == (0, 0, 0)
