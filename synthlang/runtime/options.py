"""How a run runs: what the CLI (or a caller) chooses, read by the driver, the attempts and the
pools."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import ir
from ..engines.base import Engine, EngineOptions
from .cache import DEFAULT_MAX_BYTES


@dataclass
class RunOptions:
    out_dir: Path
    root: Path | None = None                 # nothing is written outside this tree (default: out_dir)
    spec_dir: Path | None = None             # the spec's (or plan's) folder: never the output folder
    reads: tuple[Path, ...] = ()             # the files the dataset comes from: never under the output folder
    fresh: bool = False
    max_attempts: int | None = None          # per cell; default max(50, 20 x its count)
    retries: int = 3                         # per request, on engine errors
    probe: bool = True
    progress: bool | None = None             # None: live line on a terminal, log lines otherwise
    engine_factory: Callable[[ir.Model], Engine] | None = None
    engine_options: EngineOptions = field(default_factory=EngineOptions)
    ray: str | None = None                   # None: this process; "local" or a cluster address
    workers: int | None = None               # Ray workers, one engine each (default: the cluster's CPUs)
    cache_dir: Path | None = None            # the result cache's folder; None: no cache
    cache_max_bytes: int = DEFAULT_MAX_BYTES
    batch_files: str | None = None           # "api" or "offline": requests as batch files (batch_engine.py)
    batch_poll: float | None = None          # seconds between polls of a batch (default: 30 api, 1 offline)
    batch_wait: float | None = None          # seconds to wait for a batch before stopping, resumably (None: until done)
