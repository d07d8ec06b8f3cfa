"""Weights in a form llama.cpp multiplies in batches.

llama.cpp's CPU backend has batched matrix kernels for F16 weights (and Q8_0, Q4_0) but
multiplies Q4_1 and Q5_1 weights one token at a time, so a batch of sequences costs about as
much as decoding them one after another. A small model in one of those types (the embedded
SmolLM2-135M is Q4_1) is converted once to F16, which holds every Q4_1/Q5_1 weight exactly up
to F16 rounding, and the copy is kept in the model cache next to its source's digest."""

from __future__ import annotations

import ctypes
import hashlib
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO

from .embedded import cache_dir

# llama.cpp's file types (enum llama_ftype) without batched CPU kernels, and F16's
UNBATCHED_FILE_TYPES = {3: "Q4_1", 9: "Q5_1"}
F16 = 1
# beyond this the F16 copy would cost more memory than batching saves time
MAX_SOURCE_BYTES = 512 << 20


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


def file_type(path: Path) -> int | None:
    """The GGUF header's `general.file_type`, read without loading the model; None if absent."""
    try:
        with path.open("rb") as f:
            if f.read(4) != b"GGUF":
                return None
            version, _, n_kv = struct.unpack("<IQQ", f.read(20))
            if version < 2:
                return None
            for _ in range(n_kv):
                length = struct.unpack("<Q", f.read(8))[0]
                if length > 1 << 16:  # not a key: a damaged or foreign file
                    return None
                key = f.read(length)
                kind = struct.unpack("<I", f.read(4))[0]
                if key == b"general.file_type" and kind in (4, 5):
                    return int(struct.unpack("<" + _SCALARS[kind], f.read(4))[0])
                _skip(f, kind)
    except (OSError, struct.error, KeyError, ValueError, OverflowError):
        return None
    return None


def _skip(f: BinaryIO, kind: int) -> None:
    if kind == _STRING:
        f.seek(struct.unpack("<Q", f.read(8))[0], 1)
    elif kind == _ARRAY:
        item, count = struct.unpack("<IQ", f.read(12))
        if item in _SCALARS:
            f.seek(struct.calcsize(_SCALARS[item]) * count, 1)
        else:
            for _ in range(count):
                _skip(f, item)
    else:
        f.seek(struct.calcsize(_SCALARS[kind]), 1)


def batched_weights(lib: Any, path: Path) -> Path:
    """The file to load: `path`, or its F16 copy when its weights have no batched kernels."""
    kind = file_type(path)
    if kind not in UNBATCHED_FILE_TYPES or path.stat().st_size > MAX_SOURCE_BYTES:
        return path
    target = cache_dir() / f"{path.stem}-{digest(path)[:16]}-f16.gguf"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    params = lib.llama_model_quantize_default_params()
    params.ftype = F16
    params.allow_requantize = True
    params.nthread = os.cpu_count() or 1
    from llama_cpp._utils import suppress_stdout_stderr

    try:
        with suppress_stdout_stderr(disable=False):  # llama.cpp logs every tensor it converts
            rc = lib.llama_model_quantize(str(path).encode(), str(tmp).encode(), ctypes.byref(params))
        if rc != 0 or not tmp.is_file():
            return path  # keep the original: slower, not wrong
        os.replace(tmp, target)  # concurrent runs each write their own file; the last one wins
    finally:
        tmp.unlink(missing_ok=True)
    return target
