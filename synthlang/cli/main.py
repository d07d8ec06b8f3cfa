"""synthc: the command line. Exit codes: 0 clean (warnings allowed), 1 errors, 2 usage, 3 the
engine failed, 70 an internal error."""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
from collections.abc import Callable

from .common import (
    EXIT_ERRORS,
    EXIT_INTERNAL,
    EXIT_OK,
    Parser,
    allow_endpoint_arguments,
    batch_arguments,
    cache_arguments,
    count,
    days,
    parse_size,
    seconds,
)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="synthc", description="Compile and run .synth dataset specs.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    c = sub.add_parser("check", help="report diagnostics for one or more specs")
    c.add_argument("spec", nargs="+")
    c.add_argument("--format", choices=("text", "json"), default="text")
    f = sub.add_parser("fmt", help="rewrite specs in the canonical layout (comments and strings kept)")
    f.add_argument("paths", nargs="*", default=["."], metavar="PATH",
                   help="spec files, or folders searched for .synth files (default: the current folder)")
    f.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is not formatted")
    f.add_argument("--diff", action="store_true", help="change nothing; print what would change as a diff")
    df = sub.add_parser("diff", help="what a change to a spec does to its dataset (exit 0 same, 1 different, "
                                     "2 error)")
    df.add_argument("old", help="a spec, a plan .json, or REV:path (the spec at a git revision)")
    df.add_argument("new", help="the same kinds")
    df.add_argument("--format", choices=("text", "json"), default="text")
    k = sub.add_parser("compile", help="compile a spec into a generation plan")
    k.add_argument("spec")
    k.add_argument("-o", "--output", help="write the plan here instead of standard output")
    k.add_argument("--format", choices=("text", "json"), default="text", help="diagnostics format")
    r = sub.add_parser("run", help="generate the dataset of a spec or a compiled plan")
    r.add_argument("spec", help="a .synth spec or a plan .json")
    r.add_argument("--out", help="output folder (default: the spec's `output` path)")
    r.add_argument("--fresh", action="store_true", help="discard an earlier run in the output folder")
    r.add_argument("--batch", type=count, default=None,
                   help="sequences decoded together on llama.cpp (default: from the model's context and the "
                        "memory, at most 16), requests in flight on vLLM (default 64) and on a server "
                        "(default: 2 x its concurrency)")
    r.add_argument("--max-attempts", type=count, default=None,
                   help="attempts per quota cell before giving up (default: max(50, 20 x its count))")
    r.add_argument("--threads", type=count, default=None, help="engine threads (default: all cores)")
    r.add_argument("--format", choices=("text", "json"), default="text", help="diagnostics format")
    r.add_argument("--fake-engine", action="store_true",
                   help="replace every model with a fake engine that writes random schema-valid values "
                        "(tests the pipeline, not the model)")
    r.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="spread the attempts over a Ray cluster (a local one without ADDRESS)")
    r.add_argument("--workers", type=count, default=None, help="Ray workers, one engine each (default: the CPUs)")
    r.add_argument("--progress", choices=("auto", "bar", "log"), default="auto",
                   help="a live bar on a terminal (auto), always a bar, or plain log lines")
    batch_arguments(r)
    r.add_argument("--batch-wait", type=seconds, default=None, metavar="SECONDS",
                   help="with --batch-files: how long to wait for a batch before stopping (the batch stays "
                        "journaled; the same command later collects it); default: until it is done")
    r.add_argument("--batch-poll", type=seconds, default=None, metavar="SECONDS",
                   help="with --batch-files: seconds between looks at a batch (default: 30 for api, 1 offline)")
    r.add_argument("--verbose", action="store_true",
                   help="let vLLM and llama.cpp print their own logs here (default: to .synth/engine.log in "
                        "the output folder, quoted when something goes wrong)")
    cache_arguments(r)
    allow_endpoint_arguments(r)
    pl = sub.add_parser("plan", help="what a run would reuse, generate and drop, and what it would cost "
                                     "(sends nothing to an engine)")
    pl.add_argument("spec", help="a .synth spec or a plan .json")
    pl.add_argument("--out", help="output folder (default: the spec's `output` path)")
    pl.add_argument("--max-attempts", type=count, default=None, help="as for `run`")
    pl.add_argument("--format", choices=("text", "json"), default="text")
    pl.add_argument("--fake-engine", action="store_true", help="as for `run` (its results are cached apart)")
    batch_arguments(pl)
    cache_arguments(pl, run=False)
    pr = sub.add_parser("preview", help="generate a few records per block and show them (the run reuses them)")
    pr.add_argument("spec", help="a .synth spec or a plan .json")
    pr.add_argument("-n", type=count, default=5, help="records per block, spread over its quota cells (default 5)")
    pr.add_argument("--block", action="append", help="only this block (repeatable)")
    pr.add_argument("--out", help="output folder whose cache is used (default: the spec's `output` path)")
    pr.add_argument("--max-attempts", type=count, default=None, help="as for `run`")
    pr.add_argument("--threads", type=count, default=None, help="engine threads (default: all cores)")
    pr.add_argument("--fake-engine", action="store_true", help="as for `run`")
    pr.add_argument("--verbose", action="store_true", help="as for `run`")
    pr.add_argument("--format", choices=("text", "json"), default="text",
                    help="a table per block, or the records as JSON lines")
    cache_arguments(pr)
    allow_endpoint_arguments(pr)
    ca = sub.add_parser("cache", help="show the size of a result cache, or prune it")
    ca_sub = ca.add_subparsers(dest="cache_command", required=True, parser_class=Parser)
    for name, text in (("info", "entries and size"), ("prune", "drop entries: least recently used first")):
        cp = ca_sub.add_parser(name, help=text)
        cp.add_argument("where", nargs="?", default=None,
                        help="a spec (its output's cache), an output folder, or a cache folder")
        cp.add_argument("--cache", metavar="DIR", help="the cache folder itself")
        if name == "prune":
            cp.add_argument("--max-size", type=parse_size, default=None, metavar="SIZE",
                            help="keep at most this much (K, M, G suffixes)")
            cp.add_argument("--older-than", type=days, default=None, metavar="DAYS",
                            help="drop entries unused for this many days")
            cp.add_argument("--all", action="store_true", help="drop every entry")
    e = sub.add_parser("eval", help="measure what the synthetic data contributes (the spec's evaluate blocks)")
    e.add_argument("spec")
    e.add_argument("--out", help="the run's output folder (default: the spec's `output` path)")
    e.add_argument("--format", choices=("text", "json"), default="text")
    rp = sub.add_parser("report", help="write the dataset card and HTML report of a finished run")
    rp.add_argument("output_dir")
    pv = sub.add_parser("prepare-vllm", help="convert the embedded model once into a folder vLLM can load")
    pv.add_argument("--force", action="store_true", help="convert again even if the folder exists")
    sub.add_parser("lsp", help="run the language server over stdio (for editors; see docs/editors.md)")
    return p


# command -> the module (in this package) and function that run it, imported only when run: a
# check or a keystroke's hook does not pay for what a run or a diff imports
COMMANDS = {"prepare-vllm": "output_commands:cmd_prepare_vllm", "check": "compile_commands:cmd_check",
            "fmt": "format_command:cmd_fmt", "diff": "diff_command:cmd_diff", "lsp": "lsp_command:cmd_lsp",
            "compile": "compile_commands:cmd_compile", "run": "run_commands:cmd_run",
            "plan": "run_commands:cmd_plan", "preview": "run_commands:cmd_preview", "cache": "cache_command:cmd_cache",
            "eval": "output_commands:cmd_eval", "report": "output_commands:cmd_report"}


def command(name: str) -> Callable[[argparse.Namespace], int]:
    module, function = COMMANDS[name].split(":")
    run: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(f".{module}", __package__), function)
    return run


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's own flush at exit does not fail again."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = command(args.command)(args)
        if not sys.stdout.closed:  # the language server's exit closes it
            sys.stdout.flush()  # a full disk or a closed pipe is found here, not at exit where it is lost
        return code
    except KeyboardInterrupt:
        print("synthc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG):
            _drop_stdout()
            print(f"synthc: error: cannot write the output: {exc.strerror}", file=sys.stderr)
            return EXIT_ERRORS
        return _internal_error(exc)
    except Exception as exc:  # noqa: BLE001 - a bug must still not show a user a traceback
        return _internal_error(exc)


def _internal_error(exc: Exception) -> int:
    from ..diagnostics import printable

    print(f"synthc: internal error: {type(exc).__name__}: {printable(str(exc))}\n"
          "This is a bug in synthc; please report it with the spec that triggered it.", file=sys.stderr)
    return EXIT_INTERNAL

