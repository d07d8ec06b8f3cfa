"""`synthc run`, `synthc plan` and `synthc preview`: a spec's dataset, what making it would do, and a
few of its records."""

from __future__ import annotations

import sys

from ..diagnostics import printable
from .common import (
    EXIT_ENGINE,
    EXIT_ERRORS,
    EXIT_OK,
    EXIT_USAGE,
    batch_options,
    engine_stopped,
    error,
    load_plan,
    one_line,
    print_network,
    run_options,
)


def _network(plan, args) -> tuple[str, ...] | None:
    """The servers the user lets API keys go to (--allow-endpoint, then $SYNTHC_ALLOW_ENDPOINTS),
    after printing where the plan's models send requests; None after printing why nothing may be
    sent: a model would send a key to a server the user did not allow. Runs before any request."""
    import os

    from ..endpoints import allowed_endpoints, key_consent_problem

    try:
        allowed = allowed_endpoints(getattr(args, "allow_endpoint", None) or (), os.environ)
    except ValueError as exc:
        error(str(exc))
        return None
    if getattr(args, "fake_engine", False):  # nothing leaves this machine
        return allowed
    print_network(plan.models.values())
    refused = [problem for m in plan.models.values() if m.endpoint and m.api_key_env
               and (problem := key_consent_problem(m.name, m.endpoint, m.api_key_env, allowed))]
    for problem in refused:
        error(problem)
    return None if refused else allowed


def cmd_run(args) -> int:
    loaded = load_plan(args.spec, args.format)
    if loaded is None:
        return EXIT_ERRORS
    plan, base = loaded
    key_endpoints = _network(plan, args)
    if key_endpoints is None:
        return EXIT_USAGE
    from ..engines.base import ConstraintNotEnforced, EngineDead
    from ..engines.capabilities import UnsupportedFeature
    from ..runtime.driver import CellFailed, run_plan
    from ..runtime.journal import JournalMismatch, RunBusy

    options = run_options(args, plan, base)
    options.engine_options.key_endpoints = key_endpoints
    options.fresh = args.fresh
    options.progress = {"auto": None, "bar": True, "log": False}[args.progress]
    options.ray, options.workers = args.ray, args.workers
    problem = batch_options(args, plan, options)
    if problem:
        error(problem)
        return EXIT_USAGE
    try:
        report = run_plan(plan, options)
    except CellFailed as exc:
        error(str(exc))
        return EXIT_ERRORS
    except (ConstraintNotEnforced, UnsupportedFeature) as exc:
        error(str(exc))
        return EXIT_ENGINE
    except EngineDead as exc:
        engine_stopped(exc, ". Everything generated so far is kept; run the same command again to resume.")
        return EXIT_ENGINE
    except (JournalMismatch, RunBusy) as exc:
        error(str(exc))
        return EXIT_ERRORS
    except OSError as exc:  # UnsafePath among them: a symlink leading out, a file where a folder goes
        error(f"cannot write the dataset: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        return EXIT_ERRORS
    from ..evaluate.data import EvalInputError
    from ..report import write_report

    try:
        write_report(report.out_dir)
    except (EvalInputError, ValueError) as exc:
        error(f"the dataset is written, but its report is not: {str(exc).splitlines()[0]}")
        return EXIT_ERRORS
    m = report.manifest
    if m["journal_restarted"]:
        print("the spec changed since the last run in this folder: its records were rebuilt, with what the "
              "engine wrote before reused from the cache", file=sys.stderr)
    for bid, b in m["blocks"].items():
        splits = ", ".join(f"{k} {v['rows']}" for k, v in b["splits"].items())
        # reasons and names come from the journal, the plan and the engine: one escaped line each
        print(one_line(f"{bid}: {b['accepted']} records from {b['attempts']} attempts "
                       f"(acceptance {b['acceptance_rate']:.0%}); {splits}; engine requests: {b['requests_sent']} "
                       f"sent, {b['requests_reused']} reused from the cache"), file=sys.stderr)
        if b["rejection_rates"]:
            print(one_line("  rejected: " + ", ".join(f"{k} {v:.0%}" for k, v in b["rejection_rates"].items())
                           + " of attempts" + (f"; {b['trimmed']} records had a value cut back to a sentence or "
                                               "word end" if b["trimmed"] else "")), file=sys.stderr)
        origins = b.get("origins", {})
        if set(origins) - {"generated"}:   # say plainly what grew from real rows
            print(one_line("  made: " + ", ".join(f"{n} {how}" for how, n in origins.items())
                           + " (rewritten, resampled and copied records grew from real rows)"), file=sys.stderr)
        for name, table in b.get("label_check", {}).items():
            read = sum(n for reads in table.values() for n in reads.values())
            off = sum(n for want, reads in table.items() for got, n in reads.items() if got != want)
            rejected = sum(n for why, n in b["rejections"].items() if why == f"off_label: {name}")
            print(one_line(f"  label check on {name}: {read} records read, {off} read as another label, "
                           f"{rejected} rejected as off label"), file=sys.stderr)
    print(one_line(f"wrote {', '.join(m['files'])}, manifest.json, README.md (dataset card) and report.html "
                   f"to {report.out_dir}"), file=sys.stderr)
    return EXIT_OK


def cmd_plan(args) -> int:
    loaded = load_plan(args.spec, "text")
    if loaded is None:
        return EXIT_ERRORS
    plan, base = loaded
    from ..runtime.estimate import estimate, render_text
    from ..runtime.journal import JournalMismatch

    options = run_options(args, plan, base)
    problem = batch_options(args, plan, options)
    if problem:
        error(problem)
        return EXIT_USAGE
    try:
        result = estimate(plan, options)
    except (JournalMismatch, OSError) as exc:
        error(str(exc))
        return EXIT_ERRORS
    sys.stdout.write(result.to_json() if args.format == "json" else printable(render_text(result)))
    return EXIT_OK


def cmd_preview(args) -> int:
    loaded = load_plan(args.spec, "text")
    if loaded is None:
        return EXIT_ERRORS
    plan, base = loaded
    unknown = [b for b in args.block or [] if b not in {x.id for x in plan.blocks}]
    if unknown:
        error(f"no block named {', '.join(unknown)} (the blocks: {', '.join(b.id for b in plan.blocks)})")
        return EXIT_USAGE
    if args.n < 1:
        error("-n must be at least 1")
        return EXIT_USAGE
    key_endpoints = _network(plan, args)
    if key_endpoints is None:
        return EXIT_USAGE
    import json
    import shutil

    from ..engines.base import ConstraintNotEnforced, EngineDead
    from ..engines.capabilities import UnsupportedFeature
    from ..report.table import render_table
    from ..runtime.preview import preview

    width = shutil.get_terminal_size((120, 40)).columns

    def show(p) -> None:
        block = plan.block(p.id)
        if args.format == "json":
            for r in p.records:
                print(json.dumps(r, ensure_ascii=False))
        else:
            fields = [f.name for f in plan.schemas[block.schema_name].fields]
            print(one_line(p.id))
            print(printable(render_table(fields, [[r.get(f) for f in fields] for r in p.records], width)))
        rejected = ", ".join(f"{k} {v}" for k, v in p.rejections.most_common())
        print(one_line(f"{p.id}: {len(p.records)} records from {p.attempts} attempts"
                       + (f"; rejected: {rejected}" if rejected else "")
                       + f"; engine requests: {p.requests_sent} sent, {p.requests_reused} reused from the cache"
                       + (f"; no record could be made for {'; '.join(p.unfilled)}" if p.unfilled else "")),
              file=sys.stderr)

    options = run_options(args, plan, base)
    options.engine_options.key_endpoints = key_endpoints
    try:
        preview(plan, options, args.n, args.block, on_block=show)
    except (ConstraintNotEnforced, UnsupportedFeature) as exc:
        error(str(exc))
        return EXIT_ENGINE
    except EngineDead as exc:
        engine_stopped(exc)
        return EXIT_ENGINE
    except OSError as exc:
        error(f"cannot use the cache: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        return EXIT_ERRORS
    return EXIT_OK
