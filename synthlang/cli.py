"""synthc: the command line. Exit codes: 0 clean (warnings allowed), 1 errors, 2 usage."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_ENGINE, EXIT_INTERNAL = 0, 1, 2, 3, 70
MAX_PLAN_BYTES = 512 * 2**20  # plans embed their seed rows


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors exit 2 with a short message
        self.print_usage(sys.stderr)
        _error(message)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="synthc", description="Compile and run .synth dataset specs.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    c = sub.add_parser("check", help="report diagnostics for a spec")
    c.add_argument("spec")
    c.add_argument("--format", choices=("text", "json"), default="text")
    k = sub.add_parser("compile", help="compile a spec into a generation plan")
    k.add_argument("spec")
    k.add_argument("-o", "--output", help="write the plan here instead of standard output")
    k.add_argument("--format", choices=("text", "json"), default="text", help="diagnostics format")
    r = sub.add_parser("run", help="generate the dataset of a spec or a compiled plan")
    r.add_argument("spec", help="a .synth spec or a plan .json")
    r.add_argument("--out", help="output folder (default: the spec's `output` path)")
    r.add_argument("--fresh", action="store_true", help="discard an earlier run in the output folder")
    r.add_argument("--batch", type=int, default=None,
                   help="sequences decoded together on llama.cpp (default: from the model's context and the "
                        "memory, at most 16), requests in flight on vLLM (default 64) and on a server "
                        "(default: 2 x its concurrency)")
    r.add_argument("--max-attempts", type=int, default=None,
                   help="attempts per quota cell before giving up (default: max(50, 20 x its count))")
    r.add_argument("--threads", type=int, default=None, help="engine threads (default: all cores)")
    r.add_argument("--format", choices=("text", "json"), default="text", help="diagnostics format")
    r.add_argument("--fake-engine", action="store_true",
                   help="replace every model with a fake engine that writes random schema-valid values "
                        "(tests the pipeline, not the model)")
    r.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="spread the attempts over a Ray cluster (a local one without ADDRESS)")
    r.add_argument("--workers", type=int, default=None, help="Ray workers, one engine each (default: the CPUs)")
    r.add_argument("--progress", choices=("auto", "bar", "log"), default="auto",
                   help="a live bar on a terminal (auto), always a bar, or plain log lines")
    _cache_arguments(r)
    e = sub.add_parser("eval", help="measure what the synthetic data contributes (the spec's evaluate blocks)")
    e.add_argument("spec")
    e.add_argument("--out", help="the run's output folder (default: the spec's `output` path)")
    e.add_argument("--format", choices=("text", "json"), default="text")
    rp = sub.add_parser("report", help="write the dataset card and HTML report of a finished run")
    rp.add_argument("output_dir")
    pv = sub.add_parser("prepare-vllm", help="convert the embedded model once into a folder vLLM can load")
    pv.add_argument("--force", action="store_true", help="convert again even if the folder exists")
    return p


def _cache_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", metavar="DIR",
                   help="the result cache's folder (default: .synth/cache in the output folder)")
    p.add_argument("--no-cache", action="store_true",
                   help="send every request to the engine and keep no result (the journal still resumes)")
    p.add_argument("--cache-max-size", type=_size, default=None, metavar="SIZE",
                   help="drop the least recently used results past this size (default 2G; K, M, G suffixes)")


def _size(text: str) -> int:
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 2G)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(value)


def _cache_dir(args, out_dir: Path) -> Path | None:
    from .runtime.driver import CACHE_DIR, RUN_DIR

    if args.no_cache:
        return None
    return Path(args.cache) if args.cache else out_dir / RUN_DIR / CACHE_DIR


def _emit_diagnostics(result, fmt: str) -> None:
    from .diagnostics import render_all_json, render_all_text

    if fmt == "json":
        print(render_all_json(result.diagnostics))
    elif result.diagnostics:
        print(render_all_text(result.diagnostics), file=sys.stderr)


def _error(message: str) -> None:
    """One line on stderr; text from specs, seeds, plans or engines cannot reach the terminal
    as an escape sequence."""
    from .diagnostics import printable

    print(f"synthc: error: {printable(message)}", file=sys.stderr)


def _spec_path(arg: str) -> Path | None:
    from .files import is_regular_file

    path = Path(arg)
    if not is_regular_file(path):
        _error(f"no such spec file: {arg}")
        return None
    return path


def cmd_check(args) -> int:
    from .compiler import check

    path = _spec_path(args.spec)
    if path is None:
        return EXIT_USAGE
    result = check(path)
    _emit_diagnostics(result, args.format)
    if args.format == "text":
        _print_network(result)
        if not result.diagnostics:
            print(f"{args.spec}: ok", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_ERRORS


def _print_network(result) -> None:
    """What a reviewer must see in a spec: where it sends requests and which secret goes along."""
    from .diagnostics import printable

    for model in result.context.models.values():
        if model.endpoint or model.api_key_env:
            key = f", with the key in ${model.api_key_env}" if model.api_key_env else ", with no key"
            where = model.endpoint or "(no endpoint)"
            print(printable(f"network: model `{model.name}` sends requests to {where}{key}"), file=sys.stderr)


def cmd_compile(args) -> int:
    from .compiler import compile

    path = _spec_path(args.spec)
    if path is None:
        return EXIT_USAGE
    result = compile(path)
    _emit_diagnostics(result, args.format)
    if result.plan is None:
        return EXIT_ERRORS
    text = result.plan.to_json()
    if args.output:
        out = Path(args.output)
        from .files import write_text_atomic

        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(out, text)
        except OSError as exc:
            _error(f"cannot write {out}: {exc.strerror or exc}")
            return EXIT_ERRORS
        print(f"wrote {out} ({result.plan.hash})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _load_plan(arg: str, fmt: str):
    """(plan, folder its relative paths start from) or None after printing why."""
    path = _spec_path(arg)
    if path is None:
        return None
    if path.suffix == ".json":
        from .files import read_bytes
        from .plan.model import Plan
        from .plan.validate_plan import validate_plan

        try:
            plan = Plan.from_json(read_bytes(path, MAX_PLAN_BYTES).decode("utf-8"))
        except (ValueError, OSError, RecursionError) as exc:
            _error(f"{path} is not a valid plan: {(str(exc).splitlines() or [type(exc).__name__])[0]}")
            return None
        problems = validate_plan(plan)
        if problems:
            _error(f"{path} is not a plan this synthc runs: " + "; ".join(problems[:5])
                   + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
            return None
        return plan, path.resolve().parent
    from .compiler import compile

    result = compile(path)
    _emit_diagnostics(result, fmt)
    if result.plan is None or not result.ok:
        return None
    return result.plan, path.resolve().parent


def cmd_run(args) -> int:
    loaded = _load_plan(args.spec, args.format)
    if loaded is None:
        return EXIT_ERRORS
    plan, base = loaded
    from .engines.base import ConstraintNotEnforced, EngineDead, EngineOptions
    from .engines.capabilities import UnsupportedFeature
    from .runtime.driver import CellFailed, run_plan
    from .runtime.journal import JournalMismatch, RunBusy
    from .runtime.options import RunOptions

    # nothing is written outside the spec's (or the plan's) folder tree, or outside --out
    out_dir = Path(args.out) if args.out else base / plan.output.path
    batch = max(1, args.batch) if args.batch else None
    options = RunOptions(out_dir=out_dir, root=out_dir if args.out else base, fresh=args.fresh,
                         max_attempts=args.max_attempts,
                         engine_options=EngineOptions(threads=args.threads, batch=batch),
                         progress={"auto": None, "bar": True, "log": False}[args.progress],
                         ray=args.ray, workers=args.workers, cache_dir=_cache_dir(args, out_dir))
    if args.cache_max_size is not None:
        options.cache_max_bytes = args.cache_max_size
    if args.fake_engine:
        from .engines.fake import FakeFactory

        options.engine_factory = FakeFactory(batch=batch)
    try:
        report = run_plan(plan, options)
    except CellFailed as exc:
        _error(str(exc))
        return EXIT_ERRORS
    except (ConstraintNotEnforced, UnsupportedFeature) as exc:
        _error(str(exc))
        return EXIT_ENGINE
    except EngineDead as exc:
        _error(f"the engine stopped: {exc}. Everything generated so far is kept; "
               "run the same command again to resume.")
        return EXIT_ENGINE
    except (JournalMismatch, RunBusy) as exc:
        _error(str(exc))
        return EXIT_ERRORS
    except OSError as exc:  # UnsafePath among them: a symlink leading out, a file where a folder goes
        _error(f"cannot write the dataset: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        return EXIT_ERRORS
    from .evaluate.data import EvalInputError
    from .report import write_report

    try:
        write_report(report.out_dir)
    except (EvalInputError, ValueError) as exc:
        _error(f"the dataset is written, but its report is not: {str(exc).splitlines()[0]}")
        return EXIT_ERRORS
    m = report.manifest
    if m["journal_restarted"]:
        print("the spec changed since the last run in this folder: its records were rebuilt, with what the "
              "engine wrote before reused from the cache", file=sys.stderr)
    for bid, b in m["blocks"].items():
        splits = ", ".join(f"{k} {v['rows']}" for k, v in b["splits"].items())
        print(f"{bid}: {b['accepted']} records from {b['attempts']} attempts "
              f"(acceptance {b['acceptance_rate']:.0%}); {splits}; engine requests: {b['requests_sent']} sent, "
              f"{b['requests_reused']} reused from the cache", file=sys.stderr)
        if b["rejection_rates"]:
            print("  rejected: " + ", ".join(f"{k} {v:.0%}" for k, v in b["rejection_rates"].items())
                  + " of attempts" + (f"; {b['trimmed']} records had a value cut back to a sentence or word end"
                                      if b["trimmed"] else ""), file=sys.stderr)
    print(f"wrote {', '.join(m['files'])}, manifest.json, README.md (dataset card) and report.html "
          f"to {report.out_dir}", file=sys.stderr)
    return EXIT_OK


def cmd_eval(args) -> int:
    loaded = _load_plan(args.spec, "text")
    if loaded is None:
        return EXIT_ERRORS
    plan, base = loaded
    if not plan.evaluate:
        _error(f"{args.spec} has no `evaluate` block")
        return EXIT_ERRORS
    from .evaluate.data import EvalInputError
    from .evaluate.run_eval import render_eval_text, run_eval
    from .report import write_report

    out_dir = Path(args.out) if args.out else base / plan.output.path
    try:
        result = run_eval(plan, base, out_dir)
        write_report(out_dir)
    except EvalInputError as exc:
        _error(str(exc))
        return EXIT_ERRORS
    if args.format == "json":
        import json

        print(json.dumps(result, indent=2))
    else:
        sys.stdout.write(render_eval_text(result))
        print(f"wrote eval.json, README.md and report.html to {out_dir}", file=sys.stderr)
    return EXIT_OK


def cmd_report(args) -> int:
    from .evaluate.data import EvalInputError
    from .report import write_report

    try:
        card, page = write_report(Path(args.output_dir))
    except (EvalInputError, ValueError) as exc:
        _error(str(exc).splitlines()[0])
        return EXIT_ERRORS
    print(f"wrote {card} and {page}", file=sys.stderr)
    return EXIT_OK


def cmd_prepare_vllm(args) -> int:
    from .engines.base import EngineDead
    from .engines.prepare_vllm import prepare_embedded

    try:
        path = prepare_embedded(force=args.force)
    except EngineDead as exc:
        _error(str(exc))
        return EXIT_ENGINE
    print(path)
    return EXIT_OK


COMMANDS = {"prepare-vllm": cmd_prepare_vllm, "check": cmd_check, "compile": cmd_compile, "run": cmd_run,
            "eval": cmd_eval, "report": cmd_report}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("synthc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - a bug must still not show a user a traceback
        from .diagnostics import printable

        print(f"synthc: internal error: {type(exc).__name__}: {printable(str(exc))}\n"
              "This is a bug in synthc; please report it with the spec that triggered it.", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
