"""What the commands share: exit codes, messages on stderr, loading a spec or a plan, and the
options of the commands that run one (run, plan, preview)."""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import NoReturn

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_ENGINE, EXIT_INTERNAL = 0, 1, 2, 3, 70

class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors exit 2 with a short message
        self.print_usage(sys.stderr)
        error(message)
        raise SystemExit(EXIT_USAGE)


def cache_arguments(p: argparse.ArgumentParser, run: bool = True) -> None:
    p.add_argument("--cache", metavar="DIR",
                   help="the result cache's folder (default: .synth/cache in the output folder)")
    p.add_argument("--no-cache", action="store_true",
                   help="send every request to the engine and keep no result (the journal still resumes)"
                   if run else "as if there were no result cache")
    if run:
        p.add_argument("--cache-max-size", type=parse_size, default=None, metavar="SIZE",
                       help="drop the least recently used results past this size (default 2G; K, M, G suffixes)")


def allow_endpoint_arguments(p: argparse.ArgumentParser) -> None:
    from ..endpoints import ALLOW_ENV, ALLOW_FLAG

    p.add_argument(ALLOW_FLAG, action="append", default=[], type=allow_endpoint, metavar="URL_OR_HOST",
                   help="let API keys go to this server: a URL allows its scheme, host and port, HOST:PORT "
                        f"that port, HOST every port (repeatable; also ${ALLOW_ENV}, comma-separated). A key "
                        "goes to no other server, this machine's included")


def allow_endpoint(text: str) -> str:
    from ..endpoints import parse_allowance

    try:
        parse_allowance(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} allows nothing: {exc}") from None
    return text.strip()


MAX_COUNT = 10_000_000   # the largest count a command line takes (attempts, threads, records)


def count(text: str) -> int:
    """A whole number from 1 to MAX_COUNT, for argparse: `--batch 0`, `--threads -3` or
    `--max-attempts 0` would each be a run that cannot progress or a value an engine rejects."""
    digits = text.strip()  # ASCII digits only: int() also reads `1_0` and `٣`
    value = int(digits) if re.fullmatch(r"\+?[0-9]{1,9}", digits) else None
    if value is None or not 1 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"not a whole number from 1 to {MAX_COUNT:,}: {text!r}")
    return value


def days(text: str) -> float:
    """A finite, non-negative number of days, for argparse."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}")
    return value


def seconds(text: str) -> float:
    """A finite, non-negative number of seconds (at most a week), for argparse."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= 7 * 86400:
        raise argparse.ArgumentTypeError(f"not a number of seconds from 0 to 604800: {text!r}")
    return value


def batch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-files", choices=("api", "offline"), default=None,
                   help="send requests as OpenAI-format batch files instead of live calls: to the Batch API "
                        "at an `engine openai` model's endpoint (api), or left in .synth/batches for an offline "
                        "runner such as vLLM's run_batch, for `engine vllm` and `engine openai` models (offline)")


def batch_options(args, plan, options) -> str | None:
    """Set the batch-file options of a run (or a dry run) from --batch-files and its companions;
    what is wrong with them, or None."""
    mode = getattr(args, "batch_files", None)
    if mode is None:
        if getattr(args, "batch_wait", None) is not None or getattr(args, "batch_poll", None) is not None:
            return "--batch-wait and --batch-poll go with --batch-files"
        return None
    from ..runtime.batch_engine import batched_models

    if not batched_models(plan.models, mode):
        engines = "engine openai" if mode == "api" else "engine vllm or engine openai"
        return f"--batch-files {mode}: no model of this plan has {engines}, so nothing would go in a batch file"
    if getattr(args, "ray", None) is not None:
        return "--batch-files sends and collects batches from this process: it cannot be combined with --ray"
    options.batch_files = mode
    options.batch_wait = getattr(args, "batch_wait", None)
    options.batch_poll = getattr(args, "batch_poll", None)
    return None


def parse_size(text: str) -> int:
    """A size in bytes from `500M`, `2G`, `1.5GiB`, `4096`, for argparse; refuses what is not a
    finite size up to 1 PiB (`1e999` is infinity)."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 2G)") from None
    if not math.isfinite(value) or not 0 <= value <= 1 << 50:
        raise argparse.ArgumentTypeError(f"not a size from 0 to 1P: {text!r} (e.g. 500M, 2G)")
    return int(value)


def cache_dir_for(args, out_dir: Path) -> Path | None:
    """The result cache a command uses: `--cache DIR`, none with `--no-cache`, else the one in
    the output folder."""
    from ..runtime.driver import CACHE_DIR, RUN_DIR

    if getattr(args, "no_cache", False):
        return None
    return Path(args.cache) if args.cache else out_dir / RUN_DIR / CACHE_DIR


def emit_diagnostics(result, fmt: str) -> None:
    from ..diagnostics import render_all_json, render_all_text

    if fmt == "json":
        print(render_all_json(result.diagnostics))
    elif result.diagnostics:
        print(render_all_text(result.diagnostics), file=sys.stderr)


def one_line(text: str) -> str:
    """Text safe for a terminal that stays on one line: printable() keeps TAB and LF for the
    messages that span lines, but a LF from a spec or a plan in a one-line message would print
    a line of the spec's choosing (a forged `network:` or `error:` line)."""
    from ..diagnostics import printable

    return printable(text).replace("\t", "\\x09").replace("\n", "\\x0a")


def error(message: str) -> None:
    """One line on stderr; text from specs, seeds, plans or engines cannot reach the terminal
    as an escape sequence or as a line of its own."""
    print(f"synthc: error: {one_line(message)}", file=sys.stderr)


def engine_stopped(exc: Exception, after: str = "") -> None:
    """An engine failure: synthc's message, then the engine's last relevant log lines (an
    EngineLogged carries them), each on its own line behind a quote mark."""
    error(f"the engine stopped: {exc}{after}")
    for line in getattr(exc, "lines", ()):
        print(one_line(f"    | {line}"), file=sys.stderr)


def print_network(models) -> None:
    """What a reviewer, and whoever runs a spec, must see first: where each model (anything with
    `name`, `endpoint` and `api_key_env`) sends requests and which secret goes along. One line
    each, whatever the endpoint holds."""
    for model in models:
        if model.endpoint or model.api_key_env:
            key = f", with the key in ${model.api_key_env}" if model.api_key_env else ", with no key"
            where = model.endpoint or "(no endpoint)"
            print(one_line(f"network: model `{model.name}` sends requests to {where}{key}"), file=sys.stderr)


def spec_path(arg: str) -> Path | None:
    from ..files import is_regular_file

    path = Path(arg)
    if not is_regular_file(path):
        error(f"no such spec file: {arg}")
        return None
    return path


def load_plan(arg: str, fmt: str):
    """(plan, folder its relative paths start from) or None after printing why."""
    path = spec_path(arg)
    if path is None:
        return None
    if path.suffix == ".json":
        from ..files import read_bytes
        from ..plan.model import Plan
        from ..plan.validate_plan import validate_plan
        from ..values import MAX_STORED_BYTES

        try:
            plan = Plan.from_json(read_bytes(path, MAX_STORED_BYTES).decode("utf-8"))
        except (ValueError, OSError, RecursionError) as exc:
            error(f"{path} is not a valid plan: {(str(exc).splitlines() or [type(exc).__name__])[0]}")
            return None
        problems = validate_plan(plan)
        if problems:
            error(f"{path} is not a plan this synthc runs: " + "; ".join(problems[:5])
                   + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
            return None
        from ..runtime.drawn_rows import file_problems

        problems = file_problems(plan, path.resolve().parent)
        if problems:
            error(f"{path}: " + "; ".join(problems))
            return None
        return plan, path.resolve().parent
    from ..compiler import compile

    result = compile(path)
    emit_diagnostics(result, fmt)
    if result.plan is None or not result.ok:
        return None
    return result.plan, path.resolve().parent


def run_options(args, plan, base: Path):
    """RunOptions from the arguments `run`, `plan` and `preview` share. Nothing is written
    outside the spec's (or the plan's) folder tree, or outside --out."""
    from ..engines.base import EngineOptions
    from ..runtime.options import RunOptions

    out_dir = Path(args.out) if args.out else base / plan.output.path
    batch = getattr(args, "batch", None)
    batch = max(1, batch) if batch else None
    reads = (base / plan.source, *(base / s.path for s in plan.seeds.values()), *(base / e.test for e in plan.evaluate))
    options = RunOptions(out_dir=out_dir, root=out_dir if args.out else base, max_attempts=args.max_attempts,
                         engine_options=EngineOptions(threads=getattr(args, "threads", None), batch=batch,
                                                      spec_dir=base),
                         cache_dir=cache_dir_for(args, out_dir), spec_dir=base, reads=reads)
    if getattr(args, "cache_max_size", None) is not None:
        options.cache_max_bytes = args.cache_max_size
    if getattr(args, "verbose", False):  # the engine libraries' own output on the terminal
        options.engine_options.verbose = True
    else:  # ... or in a file, quoted when something goes wrong
        from ..runtime.driver import ENGINE_LOG, RUN_DIR

        options.engine_options.log_file = out_dir / RUN_DIR / ENGINE_LOG
    if getattr(args, "fake_engine", False):
        from ..engines.fake import FakeFactory

        options.engine_factory = FakeFactory(batch=batch)
    return options
