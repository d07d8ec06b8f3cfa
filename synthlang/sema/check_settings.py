"""check_settings: the `dataset` and `model` blocks, validated key by key."""

from __future__ import annotations

from typing import Any

from .. import ir
from ..diagnostics import did_you_mean
from ..endpoints import model_problems
from ..files import MODEL_PATH_ENV, model_file, readable_name
from ..syntax import ast
from .context import Context

DEFAULT_MODEL = "embedded"
MAX_COUNT_SETTING = 10_000_000  # max_tokens, concurrency, n_ctx, threads: what a plan may hold
ENGINES, BACKENDS, SCHEMA_FORMATS = ir.ENGINES, ir.BACKENDS, ir.SCHEMA_FORMATS

# key -> (kinds of literal accepted, description)
DATASET_KEYS = {"version": ("str",), "seed": ("int",), "description": ("str",)}
MODEL_KEYS = {
    "engine": ("ident",), "name": ("str",), "temperature": ("int", "float"), "top_p": ("int", "float"),
    "max_tokens": ("int",), "endpoint": ("str",), "api_key_env": ("str",), "backend": ("ident", "str"),
    "concurrency": ("int",), "n_ctx": ("int",), "threads": ("int",), "schema_format": ("ident", "str"),
    "gpu_memory_utilization": ("float", "int"),
}


def _value_kind(value: ast.Lit | ast.Str) -> str:
    return "str" if isinstance(value, ast.Str) else value.kind


def _settings(ctx: Context, block: ast.SettingsBlock, allowed: dict[str, Any]) -> dict[str, Any]:
    seen: dict[str, ast.Setting] = {}
    out: dict[str, Any] = {}
    for s in block.settings:
        key = s.key.value
        if key not in allowed:
            ctx.sink.error("E0106", f"unknown {block.keyword} setting `{key}`", s.key.span,
                           help=did_you_mean(key, allowed) or f"known settings: {', '.join(allowed)}")
            continue
        if key in seen:
            ctx.sink.error("E0102", f"setting `{key}` is given twice", s.key.span)
            continue
        seen[key] = s
        kind = _value_kind(s.value)
        if kind not in allowed[key]:
            want = " or ".join({"str": "a string", "int": "an integer", "float": "a number",
                                "ident": "a name"}[k] for k in allowed[key])
            ctx.sink.error("E0107", f"`{key}` takes {want}", s.value.span)
            continue
        out[key] = (s.value.value, s.value.span)
    return out


def check_settings(ctx: Context) -> None:
    name = readable_name(ctx.entry.stem)
    fields: dict[str, Any] = {"name": name}
    if ctx.dataset_ast is not None:
        vals = _settings(ctx, ctx.dataset_ast, DATASET_KEYS)
        fields["name"] = ctx.dataset_ast.name.value
        for key, (value, span) in vals.items():
            if key == "seed" and not (0 <= value < 2**63):
                ctx.sink.error("E0107", "`seed` must be a non-negative integer", span)
                continue
            fields[key] = value
    ctx.dataset = ir.Dataset(**fields)

    ctx.models[DEFAULT_MODEL] = ir.Model(name=DEFAULT_MODEL)
    for mname, block in ctx.models_ast.items():
        vals = _settings(ctx, block, MODEL_KEYS)
        spec: dict[str, Any] = {"name": mname, "span": block.name.span}
        for key, (value, span) in vals.items():
            match key:
                case "engine":
                    if value not in ENGINES:
                        ctx.sink.error("E0107", f"unknown engine `{value}`", span,
                                       help=did_you_mean(value, ENGINES) or f"engines: {', '.join(ENGINES)}")
                        continue
                case "name":
                    key = "model"
                case "temperature":
                    if not 0 <= value <= 5:
                        ctx.sink.error("E0107", "`temperature` must lie in 0..5", span)
                        continue
                case "top_p":
                    if not 0 < value <= 1:
                        ctx.sink.error("E0107", "`top_p` must lie in (0, 1]", span)
                        continue
                case "max_tokens" | "concurrency" | "n_ctx" | "threads":
                    if not 0 < value <= MAX_COUNT_SETTING:
                        ctx.sink.error("E0107", f"`{key}` must be a whole number from 1 to {MAX_COUNT_SETTING:,}", span)
                        continue
                case "gpu_memory_utilization":
                    if not 0 < value <= 1:
                        ctx.sink.error("E0107", "`gpu_memory_utilization` lies in (0, 1]", span)
                        continue
                    value = float(value)
                case "schema_format":
                    if value not in SCHEMA_FORMATS:
                        ctx.sink.error("E0107", f"unknown schema format `{value}`", span,
                                       help=did_you_mean(value, SCHEMA_FORMATS) or
                                       "json_schema (OpenAI, vLLM), structured_outputs (vLLM), "
                                       "json_object (llama-cpp-python)")
                        continue
                case "backend":
                    if value not in BACKENDS:
                        ctx.sink.error("E0107", f"unknown structured-output backend `{value}`", span,
                                       help=did_you_mean(value, BACKENDS) or f"backends: {', '.join(BACKENDS)}")
                        continue
            spec[key] = value
        for setting, problem in model_problems(spec.get("endpoint"), spec.get("api_key_env")):
            ctx.sink.error("E0107", f"`{setting}`: {problem}", vals[setting][1])
        if spec.get("engine") == "openai" and "endpoint" not in spec:
            ctx.sink.error("E0105", f"model `{mname}` uses engine openai but has no `endpoint`",
                           block.name.span, help='add e.g. `endpoint "http://127.0.0.1:8000/v1"`')
        engine = spec.get("engine", ir.DEFAULT_ENGINE)
        if engine == "openai" and "name" not in vals:  # the server serves models by name
            ctx.sink.error("E0105", f"model `{mname}` needs a `name`", block.name.span,
                           help="the name the server serves the model under, e.g. `name \"Qwen/Qwen2.5-7B-Instruct\"`")
        backend = spec.get("backend")
        if backend is not None and backend in BACKENDS and backend not in ir.ENGINE_BACKENDS[engine]:
            usable = [b for b in ir.ENGINE_BACKENDS[engine] if b != "auto"]
            ctx.sink.error("E0107", f"engine {engine} has no `{backend}` backend", vals["backend"][1],
                           help=f"use one of {', '.join(usable)}, or leave `backend` out (auto)" if usable else
                           "an OpenAI-compatible server picks its own backend; say how the schema is sent "
                           "with `schema_format` instead")
        if "schema_format" in vals and engine != "openai":
            ctx.sink.error("E0107", f"`schema_format` is for engine openai; engine {engine} takes the schema directly",
                           vals["schema_format"][1])
        if engine == "llamacpp" and "name" in vals and not ir.is_embedded(spec["model"]):
            _, unusable = model_file(spec["model"], ctx.root)
            if unusable:
                ctx.sink.error("E0107", unusable, vals["name"][1],
                               help=f"put the .gguf file below the spec's folder, or list its folder in "
                                    f"${MODEL_PATH_ENV}")
        ctx.models[mname] = ir.Model(**spec)
