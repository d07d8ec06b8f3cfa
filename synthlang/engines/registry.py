"""Engine names -> implementations. The names are the IR's (`ir.ENGINES`); each implementation
is imported only when a plan uses it, so heavy libraries load on demand."""

from __future__ import annotations

import importlib

from .. import ir
from .base import Engine, EngineDead, EngineOptions

IMPLEMENTATIONS: dict[str, str] = {
    "llamacpp": "synthlang.engines.llamacpp:LlamaCppEngine",
    "openai": "synthlang.engines.openai_compat:OpenAICompatEngine",
    "vllm": "synthlang.engines.vllm_engine:VLLMEngine",
}


def get_engine(model: ir.Model, options: EngineOptions | None = None) -> Engine:
    target = IMPLEMENTATIONS.get(model.engine)
    if target is None:
        raise EngineDead(f"engine `{model.engine}` is not available in this installation")
    module_name, class_name = target.split(":")
    engine_class = getattr(importlib.import_module(module_name), class_name)
    engine: Engine = engine_class(model, options or EngineOptions())
    return engine
