"""`synthc check` and `synthc compile`: a spec's diagnostics, and its plan."""

from __future__ import annotations

import sys
from pathlib import Path

from ..diagnostics import printable
from .common import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, emit_diagnostics, error, one_line, print_network, spec_path


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
                print(one_line(f"{arg}: ok"), file=sys.stderr)
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

        problem = _plan_target_problem(out, [path, *result.context.inputs])
        if problem:
            error(f"cannot write the plan to {args.output}: {problem}")
            return EXIT_USAGE
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(out, text)
        except OSError as exc:
            error(f"cannot write {out}: {exc.strerror or exc}")
            return EXIT_ERRORS
        print(f"wrote {printable(str(out))} ({result.plan.hash})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _plan_target_problem(out: Path, reads: list[Path]) -> str | None:
    """Why `-o` must not be written, or None: a name that cannot be shown as written, a file the
    spec reads (the spec itself, an import, a seed), or something that is not a regular file (a
    device, a FIFO, a folder), which would be replaced by a regular file."""
    import os
    import stat

    from ..files import path_text_problem

    problem = path_text_problem(str(out))
    if problem:
        return problem
    try:
        info = os.stat(out)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc.strerror or str(exc)
    if not stat.S_ISREG(info.st_mode):
        return "it exists and is not a regular file"
    if any(os.path.exists(r) and os.path.samefile(out, r) for r in reads):
        return "the spec reads this file; write the plan elsewhere, e.g. -o plan.json"
    return None
