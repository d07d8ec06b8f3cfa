"""`synthc diff OLD NEW`: what a change to a spec does to its dataset (plan/diff.py). OLD and NEW
are specs, compiled plans, or `REV:path` for a spec as it was at a git revision."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ..diagnostics import printable
from .common import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, error, load_plan


def _from_git(arg: str, work: Path):
    """The spec at REV:path, with its folder as it was at REV, compiled; None after an error."""
    from .git_revision import RevisionError, extract_revision

    try:
        spec = extract_revision(arg, work)
    except RevisionError as exc:
        shown = arg if len(arg) <= 200 else arg[:200] + "..."
        error(f"cannot read {shown} from git: {exc}")
        return None
    return load_plan(str(spec), "text")


def _exists(arg: str) -> bool:
    try:
        return Path(arg).exists()
    except (OSError, ValueError):  # a name too long for the file system is no file
        return False


def cmd_diff(args) -> int:
    from ..plan.diff import diff_plans, render_text

    with tempfile.TemporaryDirectory() as tmp:
        plans = []
        for arg in (args.old, args.new):
            from_git = ":" in arg and not _exists(arg)
            loaded = _from_git(arg, Path(tmp)) if from_git else load_plan(arg, "text")
            if loaded is None:  # the reason is printed
                return EXIT_USAGE
            plans.append(loaded[0])
    diff = diff_plans(plans[0], plans[1])
    sys.stdout.write(diff.to_json() if args.format == "json" else printable(render_text(diff)))
    return EXIT_ERRORS if diff.changes else EXIT_OK
