"""The state that the semantic passes share, and through which they report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import ir
from ..diagnostics import DiagnosticSink
from ..source import SourceFile, Span
from ..syntax import ast


@dataclass
class Context:
    entry: Path            # the spec file given on the command line
    root: Path             # its folder: no file outside this tree is ever read
    sink: DiagnosticSink
    modules: list[ast.Module] = field(default_factory=list)
    module_dirs: dict[int, Path] = field(default_factory=dict)  # id(module.source) -> folder
    inputs: list[Path] = field(default_factory=list)  # every file the spec reads (resolved)
    # an editor's unsaved buffers (resolved path -> text), read in place of the files on disk
    overlay: dict[Path, str] = field(default_factory=dict)
    # parse past syntax errors (an editor's half-typed file); the declarations emptied for
    # their errors are kept here
    recover: bool = False
    skipped: list[Span] = field(default_factory=list)

    # declarations by name (after collect_declarations)
    dataset_ast: ast.SettingsBlock | None = None
    models_ast: dict[str, ast.SettingsBlock] = field(default_factory=dict)
    enums_ast: dict[str, ast.EnumDecl] = field(default_factory=dict)
    schemas_ast: dict[str, ast.SchemaDecl] = field(default_factory=dict)
    seeds_ast: dict[str, ast.SeedsDecl] = field(default_factory=dict)
    generates_ast: list[ast.GenerateDecl] = field(default_factory=list)
    output_ast: ast.OutputDecl | None = None
    evaluates_ast: list[ast.EvaluateDecl] = field(default_factory=list)

    # results
    dataset: ir.Dataset | None = None
    models: dict[str, ir.Model] = field(default_factory=dict)
    enums: dict[str, ir.Enum] = field(default_factory=dict)
    schemas: dict[str, ir.Schema] = field(default_factory=dict)
    seeds: dict[str, ir.SeedSet] = field(default_factory=dict)
    # where each kept seed row is: seed set -> its file and each row's line, for diagnostics
    seed_lines: dict[str, tuple[SourceFile, tuple[int, ...]]] = field(default_factory=dict)
    # what the draws from each seed set need to know of its rows (sema/check_draws.RowProfile)
    draw_profiles: dict[str, Any] = field(default_factory=dict)
    blocks: list[ir.Generate] = field(default_factory=list)
    output: ir.Output | None = None
    evaluates: list[ir.Evaluate] = field(default_factory=list)
    # schemas that nest past the depth limit, lie on a record cycle or contain such a schema
    # (each reported once): no pass may walk them recursively
    unwalkable: set[str] = field(default_factory=set)

    def schema(self, name: str) -> ir.Schema | None:
        return self.schemas.get(name)

    def dir_of(self, node_span: Span | None) -> Path:
        """The folder of the file a span is in (the spec's folder for a path with no span)."""
        if node_span is None:
            return self.root
        return self.module_dirs.get(id(node_span.source), self.root)

    def resolve_path(self, text: str, span: Span | None, code: str, what: str) -> Path | None:
        """A user-given path, relative to the file that names it, kept inside the spec's folder tree."""
        base = self.dir_of(span)
        if "\0" in text or not text.strip():
            self.sink.error(code, f"{what} path is empty or holds a NUL character", span)
            return None
        if any(len(part.encode("utf-8", "surrogatepass")) > 255 for part in Path(text).parts):
            self.sink.error(code, f"{what} path has a part longer than 255 bytes, which no file system allows", span)
            return None
        if Path(text).is_absolute():
            self.sink.error(code, f"{what} path `{text}` is absolute", span,
                            help="write it relative to the spec file")
            return None
        try:
            resolved = (base / text).resolve()
        except (OSError, RuntimeError, ValueError) as exc:
            self.sink.error(code, f"{what} path `{text}` cannot be resolved: {exc}", span)
            return None
        try:
            resolved.relative_to(self.root.resolve())
        except ValueError:
            self.sink.error(code, f"{what} path `{text}` leaves the spec's folder tree", span,
                            help=f"specs read and write only below {self.root.name}/")
            return None
        return resolved

    def rel(self, path: Path) -> str:
        """A path relative to the spec's folder, with forward slashes (stable across machines)."""
        return path.resolve().relative_to(self.root.resolve()).as_posix()
