"""`synthc fmt [--check] [--diff] PATH...`: specs in their canonical layout (syntax/format.py).

The canonical form is also one encoding: UTF-8 without a byte order mark, lines ending in LF.
A spec that starts with a BOM is read as `synthc check` reads it (the BOM ignored) and written
without it, as a spec with CRLF line ends is written with LF: so `fmt --check` passes on a file
only when its bytes are the canonical ones, and a file keeps no invisible first character that
some tools show and others do not."""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path

from .common import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, error, one_line

MAX_SPEC_BYTES = 16 * 2**20
BOM = "\ufeff"
SKIP = {"node_modules", "out", "__pycache__"}   # folders a search does not enter (and hidden ones)


def spec_files(paths: list[str]) -> list[Path] | None:
    """The .synth files named or found under the folders named, in order; None after an error."""
    found: list[Path] = []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP)
                found += [Path(folder) / f for f in sorted(files) if f.endswith(".synth")]
        elif path.is_file():
            found.append(path)
        else:
            error(f"no such file or folder: {arg}")
            return None
    return found


def cmd_fmt(args) -> int:
    from ..diagnostics import DiagnosticSink, render_all_text
    from ..files import read_bytes, write_text_atomic
    from ..source import SourceFile
    from ..syntax.format import format_text
    from ..syntax.parser import parse_source

    files = spec_files(args.paths)
    if files is None:
        return EXIT_USAGE
    changed, broken = 0, 0
    for path in files:
        try:
            text = read_bytes(path, MAX_SPEC_BYTES).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            error(f"cannot read {path}: {exc}")
            broken += 1
            continue
        body = text.removeprefix(BOM)  # ignored, as `check` ignores it, and not written back
        sink = DiagnosticSink()
        if parse_source(SourceFile(str(path), body), sink) is None:
            print(render_all_text(sink.items), file=sys.stderr)
            broken += 1
            continue
        formatted = format_text(body)
        if formatted == text:
            continue
        changed += 1
        if args.diff:
            sys.stdout.writelines(difflib.unified_diff(text.splitlines(keepends=True),
                                                       formatted.splitlines(keepends=True),
                                                       f"{path} (as written)", f"{path} (formatted)"))
        elif args.check:
            print(one_line(f"would reformat {path}"), file=sys.stderr)
        else:
            write_text_atomic(path, formatted)
            print(one_line(f"reformatted {path}"), file=sys.stderr)
    if broken:
        return EXIT_ERRORS
    if changed and (args.check or args.diff):
        return EXIT_ERRORS
    if not (args.check or args.diff):
        print(f"{len(files)} files, {changed} reformatted", file=sys.stderr)
    return EXIT_OK
