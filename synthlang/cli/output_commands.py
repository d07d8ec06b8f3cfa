"""`synthc eval`, `synthc report` and `synthc prepare-vllm`: what a finished run's data is worth, its
card and report, and the embedded model made ready for vLLM."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import EXIT_ENGINE, EXIT_ERRORS, EXIT_OK, error, load_plan


def cmd_eval(args) -> int:
    loaded = load_plan(args.spec, "text")
    if loaded is None:
        return EXIT_ERRORS
    plan, base = loaded
    if not plan.evaluate:
        error(f"{args.spec} has no `evaluate` block")
        return EXIT_ERRORS
    from ..evaluate.data import EvalInputError
    from ..evaluate.run_eval import render_eval_text, run_eval
    from ..report import write_report

    out_dir = Path(args.out) if args.out else base / plan.output.path
    try:
        result = run_eval(plan, base, out_dir)
        write_report(out_dir)
    except EvalInputError as exc:
        error(str(exc))
        return EXIT_ERRORS
    if args.format == "json":
        import json

        print(json.dumps(result, indent=2))
    else:
        sys.stdout.write(render_eval_text(result))
        print(f"wrote eval.json, README.md and report.html to {out_dir}", file=sys.stderr)
    return EXIT_OK


def cmd_report(args) -> int:
    from ..evaluate.data import EvalInputError
    from ..report import write_report

    try:
        card, page = write_report(Path(args.output_dir))
    except (EvalInputError, ValueError) as exc:
        error(str(exc).splitlines()[0])
        return EXIT_ERRORS
    print(f"wrote {card} and {page}", file=sys.stderr)
    return EXIT_OK


def cmd_prepare_vllm(args) -> int:
    from ..engines.base import EngineDead
    from ..engines.prepare_vllm import prepare_embedded

    try:
        path = prepare_embedded(force=args.force)
    except EngineDead as exc:
        error(str(exc))
        return EXIT_ENGINE
    print(path)
    return EXIT_OK
