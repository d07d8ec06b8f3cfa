"""One check of a spec as the editor has it: the compiler run on the open buffers (saved or
not), past syntax errors, with its diagnostics sorted by file and the index of its names.

A file that another spec imports (a shared `common.synth`) is checked through the spec that
imports it, so its declarations are checked where they are used and its problems show in it."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .. import compiler
from ..diagnostics import Diagnostic
from ..files import is_regular_file, read_bytes
from ..sema.load_modules import MAX_SPEC_BYTES
from ..source import SourceFile, Span
from .index import Index

# what reading and parsing a file says (E00xx: syntax, malformed tokens, NUL bytes, numbers out
# of range, size) is about the text as the user has it, even inside a declaration emptied for
# it; the family is named, not its members, so that a code the parser gains is not dropped
TEXT_CODE_PREFIX = "E00"
_IMPORT = re.compile(r'^\s*import\s+"([^"\n]+)"', re.M)


@dataclass
class Analysis:
    entry: Path
    result: compiler.Result
    index: Index
    sources: dict[Path, SourceFile]          # each file read (specs and seed files), as checked
    diagnostics: dict[Path, list[Diagnostic]] = field(default_factory=dict)
    seconds: float = 0.0

    def path_of(self, span: Span) -> Path:
        return self._paths.get(span.path) or _resolve_shown(self.result.context.root, span.path)

    def source_of(self, path: Path) -> SourceFile | None:
        return self.sources.get(path)

    def __post_init__(self) -> None:
        self._paths = {src.path: p for p, src in self.sources.items()}


def _resolve_shown(root: Path, shown: str) -> Path:
    """Spec files are shown relative to the current folder, seed files to the spec's folder."""
    here = Path(shown).resolve()
    return here if here.exists() else (root / shown).resolve()


def analyse(entry: Path, overlay: dict[Path, str]) -> Analysis:
    started = time.perf_counter()
    result = compiler.compile(entry, overlay=overlay, recover=True)
    ctx = result.context
    sources: dict[Path, SourceFile] = {}
    for module in ctx.modules:
        sources[_resolve_shown(ctx.root, module.source.path)] = module.source
    kept: list[Diagnostic] = []
    for d in result.diagnostics:
        if d.span is not None and not d.code.startswith(TEXT_CODE_PREFIX) and any(
                s.path == d.span.path and s.start <= d.span.start < s.end for s in ctx.skipped):
            continue  # said about a declaration emptied for its syntax error, not about the user's text
        kept.append(d)
        for span in [d.span, *(n.span for n in d.notes)]:
            if span is not None:
                path = _resolve_shown(ctx.root, span.path)
                sources.setdefault(path, span.source)
    analysis = Analysis(entry, result, Index(ctx), sources)
    by_file: dict[Path, list[Diagnostic]] = defaultdict(list)
    for path in sources:
        by_file[path] = []
    for d in kept:
        by_file[analysis.path_of(d.span) if d.span else entry].append(d)
    analysis.diagnostics = dict(by_file)
    analysis.seconds = time.perf_counter() - started
    return analysis


def entry_for(path: Path, overlay: dict[Path, str]) -> Path:
    """The spec to check for a file: a spec in its folder or the two above that imports it,
    else the file itself."""
    path = path.resolve()
    for folder in [path.parent, *list(path.parents)[1:3]]:
        try:
            candidates = sorted(p for p in folder.glob("*.synth") if p.resolve() != path)
        except OSError:
            continue
        for candidate in candidates:
            text = overlay.get(candidate.resolve())
            if text is None:
                if not is_regular_file(candidate):
                    continue
                try:
                    text = read_bytes(candidate, MAX_SPEC_BYTES).decode("utf-8", errors="replace")
                except OSError:
                    continue
            for m in _IMPORT.finditer(text):
                if (candidate.parent / m.group(1)).resolve() == path:
                    return candidate.resolve()
    return path
