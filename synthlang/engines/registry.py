"""Engine names -> implementations. The names are the IR's (`ir.ENGINES`); each implementation
is imported only when a plan uses it, so heavy libraries load on demand."""

from __future__ import annotations

import importlib

from .. import ir
from .base import Engine, EngineDead, EngineOptions
from .engine_log import LOGGED_ENGINES, EngineLog, start_logged

IMPLEMENTATIONS: dict[str, str] = {
    "llamacpp": "synthlang.engines.llamacpp:LlamaCppEngine",
    "openai": "synthlang.engines.openai_compat:OpenAICompatEngine",
    "vllm": "synthlang.engines.vllm_engine:VLLMEngine",
}


def get_engine(model: ir.Model, options: EngineOptions | None = None) -> Engine:
    target = IMPLEMENTATIONS.get(model.engine)
    if target is None:
        raise EngineDead(f"engine `{model.engine}` is not available in this installation")
    options = options or EngineOptions()
    module_name, class_name = target.split(":")
    # the engine libraries' output goes to the run's log file (engine_log.py), import included
    log = EngineLog(options.log_file) if options.log_file is not None and model.engine in LOGGED_ENGINES else None

    def make() -> Engine:
        engine_class = getattr(importlib.import_module(module_name), class_name)
        engine: Engine = engine_class(model, options)
        return engine

    return start_logged(make, log)
