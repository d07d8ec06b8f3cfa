"""`synthc check` and `synthc compile`: a spec's diagnostics, and its plan."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, emit_diagnostics, error, print_network, spec_path


def cmd_check(args) -> int:
    """Each spec in turn (a hook passes several); exit 1 when any has an error."""
    from ..compiler import check
    from ..diagnostics import render_all_json

    worst = EXIT_OK
    found = []
    for arg in args.spec:
        path = spec_path(arg)
        if path is None:
            return EXIT_USAGE
        result = check(path)
        if args.format == "json":
            found += result.diagnostics
        else:
            emit_diagnostics(result, args.format)
            print_network(result.context.models.values())
            if not result.diagnostics:
                print(f"{arg}: ok", file=sys.stderr)
        worst = max(worst, EXIT_OK if result.ok else EXIT_ERRORS)
    if args.format == "json":
        print(render_all_json(found))
    return worst


def cmd_compile(args) -> int:
    from ..compiler import compile

    path = spec_path(args.spec)
    if path is None:
        return EXIT_USAGE
    result = compile(path)
    emit_diagnostics(result, args.format)
    if result.plan is None:
        return EXIT_ERRORS
    text = result.plan.to_json()
    if args.output:
        out = Path(args.output)
        from ..files import write_text_atomic

        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(out, text)
        except OSError as exc:
            error(f"cannot write {out}: {exc.strerror or exc}")
            return EXIT_ERRORS
        print(f"wrote {out} ({result.plan.hash})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK
