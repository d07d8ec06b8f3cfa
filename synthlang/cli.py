"""synthc: the command line. Exit codes: 0 clean (warnings allowed), 1 errors, 2 usage."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors exit 2 with a short message
        self.print_usage(sys.stderr)
        print(f"synthc: error: {message}", file=sys.stderr)
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
    return p


def _emit_diagnostics(result, fmt: str) -> None:
    from .diagnostics import render_all_json, render_all_text

    if fmt == "json":
        print(render_all_json(result.diagnostics))
    elif result.diagnostics:
        print(render_all_text(result.diagnostics), file=sys.stderr)


def _spec_path(arg: str) -> Path | None:
    path = Path(arg)
    if not path.is_file():
        print(f"synthc: error: no such spec file: {arg}", file=sys.stderr)
        return None
    return path


def cmd_check(args) -> int:
    from .compiler import check

    path = _spec_path(args.spec)
    if path is None:
        return EXIT_USAGE
    result = check(path)
    _emit_diagnostics(result, args.format)
    if args.format == "text" and not result.diagnostics:
        print(f"{args.spec}: ok", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_ERRORS


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
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, out)
        except OSError as exc:
            print(f"synthc: error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_ERRORS
        print(f"wrote {out} ({result.plan.hash})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


COMMANDS = {"check": cmd_check, "compile": cmd_compile}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("synthc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
