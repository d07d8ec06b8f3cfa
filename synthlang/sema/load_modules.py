"""load_modules: parse the entry file and everything it imports; report import cycles."""

from __future__ import annotations

from pathlib import Path

from ..diagnostics import Note
from ..files import is_regular_file, read_bytes
from ..source import SourceFile, Span
from ..syntax import ast
from ..syntax.parser import parse_source
from ..syntax.recover import parse_recovering
from ..syntax.size import MAX_SPEC_TOKENS, count_tokens
from .context import Context

MAX_SPEC_BYTES = 8 * 2**20  # a spec or import; larger ones are refused with a diagnostic


def _read(ctx: Context, path: Path, span: Span | None) -> SourceFile | None:
    shown = _shown(ctx, path)
    if path in ctx.overlay:
        return SourceFile(shown, _normalise(ctx.overlay[path]))
    try:
        data = read_bytes(path, MAX_SPEC_BYTES)
    except OSError as exc:
        ctx.sink.error("E0104" if span else "E0003", f"cannot read `{shown}`: {exc.strerror or exc}", span)
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        src = SourceFile(shown, data.decode("utf-8", errors="replace"))
        ctx.sink.error("E0003", "file is not valid UTF-8 text", src.span(exc.start, exc.start + 1))
        return None
    return SourceFile(shown, _normalise(text))


def _normalise(text: str) -> str:
    if text.startswith("\ufeff"):
        text = text[1:]
    # CRLF (or CR) line ends read as LF: the same spec gives the same plan on every platform,
    # and no \r reaches a prompt
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _shown(ctx: Context, path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def load_modules(ctx: Context) -> None:
    done: dict[Path, ast.Module | None] = {}
    active: list[tuple[Path, Span | None]] = []  # the import chain being followed, with import spans
    tokens_left = MAX_SPEC_TOKENS  # shared by the spec and its imports

    def visit(path: Path, via_span: Span | None) -> None:
        nonlocal tokens_left
        key = path.resolve()
        chain = [p for p, _ in active]
        if key in chain:
            start = chain.index(key)
            names = " -> ".join(_shown(ctx, p) for p in chain[start:] + [key])
            notes = [Note(s, "imported here") for _, s in active[start + 1:] if s is not None]
            ctx.sink.error("E0103", f"import cycle: {names}", via_span, notes=notes,
                           help="move the shared declarations into a file that both import")
            return
        if key in done:
            return
        ctx.inputs.append(key)
        source = _read(ctx, key, via_span)
        if source is None:
            done[key] = None
            return
        count, past = count_tokens(source.text, tokens_left)
        if past is not None:
            whole = "the spec and its imports have" if active else "the spec has"
            ctx.sink.error("E0005", f"spec too large: {whole} more than {MAX_SPEC_TOKENS:,} tokens",
                           source.span(past, past + 1),
                           help="checking time grows with the number of tokens; split the dataset into "
                                "several specs")
            done[key] = None
            tokens_left = 0
            return
        tokens_left -= count
        if ctx.recover:
            module, skipped = parse_recovering(source, ctx.sink)
            ctx.skipped.extend(skipped)
        else:
            module = parse_source(source, ctx.sink)
        done[key] = module
        if module is None:
            return
        ctx.module_dirs[id(source)] = key.parent
        active.append((key, via_span))
        for decl in module.decls:
            if isinstance(decl, ast.Import):
                target = ctx.resolve_path(decl.path.value, decl.path.span, "E0104", "import")
                if target is None:
                    continue
                if target not in ctx.overlay and not is_regular_file(target):
                    ctx.sink.error("E0104", f"imported file `{decl.path.value}` not found, or not a regular file",
                                   decl.path.span)
                    continue
                visit(target, decl.path.span)
        active.pop()
        ctx.modules.append(module)

    visit(ctx.entry, None)
