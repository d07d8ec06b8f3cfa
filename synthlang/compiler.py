"""The compiler: spec text -> diagnostics and a Plan. Imports no engine.

    check(path)   -> Result with diagnostics (and the IR in its context)
    compile(path) -> Result with diagnostics and, when clean, the Plan
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .diagnostics import Diagnostic, DiagnosticSink, Severity
from .plan.build_plan import build_plan
from .plan.model import Plan
from .sema.check_draws import check_draws
from .sema.check_generates import check_generates
from .sema.check_output import check_output
from .sema.check_settings import check_settings
from .sema.collect_declarations import collect_declarations
from .sema.context import Context
from .sema.load_modules import load_modules
from .sema.load_seeds import load_seeds
from .sema.resolve_schemas import resolve_schemas

# The semantic passes, in order. Each takes the context and reports through its sink.
PASSES = (
    load_modules,
    collect_declarations,
    check_settings,
    resolve_schemas,
    load_seeds,
    check_draws,
    check_generates,
    check_output,
)


@dataclass
class Result:
    diagnostics: list[Diagnostic]
    context: Context
    plan: Plan | None = None

    @property
    def ok(self) -> bool:
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)


def _analyse(path: Path, overlay: dict[Path, str] | None = None, recover: bool = False) -> Context:
    path = Path(path)
    ctx = Context(entry=path.resolve(), root=path.resolve().parent, sink=DiagnosticSink(),
                  overlay=overlay or {}, recover=recover)
    for run_pass in PASSES:
        run_pass(ctx)
        if run_pass is load_modules and ctx.sink.has_errors and not ctx.modules:
            break
    return ctx


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Compiling builds a large tree of small acyclic objects; the cyclic collector's passes
    over it cost more than the compilation (half of the time on a 1 MB spec). Reference
    counting still frees everything; the collector runs again afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def check(path: Path) -> Result:
    """Diagnostics only. The plan is built too: infeasible quota cells need the allocation."""
    return compile(path)


def compile(path: Path, overlay: dict[Path, str] | None = None, recover: bool = False) -> Result:
    """overlay: unsaved editor buffers (resolved path -> text) read in place of those files;
    recover: go on past syntax errors with what parses (see syntax/recover.py)."""
    with _no_cyclic_gc():  # the verb of the tool, though it shadows a builtin
        ctx = _analyse(path, overlay, recover)
        plan = build_plan(ctx) if ctx.modules else None  # blocks that checked clean are still planned
    return Result(ctx.sink.sorted(), ctx, plan)
