"""`synthc diff OLD NEW`: what a change to a spec does to its dataset (plan/diff.py). OLD and NEW
are specs, compiled plans, or `REV:path` for a spec as it was at a git revision."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from .common import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, error, load_plan


def _from_git(arg: str, work: Path):
    """The spec at REV:path, with its folder as it was at REV, compiled; None after an error."""
    rev, _, rel = arg.partition(":")
    try:
        root = Path(subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                                   check=True).stdout.strip())
        folder = str(Path(rel).parent.as_posix()) if Path(rel).parent != Path(".") else "."
        archive = subprocess.run(["git", "-C", str(root), "archive", "--format=tar", rev, "--", folder],
                                 capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        stderr = getattr(exc, "stderr", b"") or b""
        detail = stderr.decode(errors="replace").strip() if isinstance(stderr, bytes) else str(stderr)
        error(f"cannot read {arg} from git: {detail or exc}")
        return None
    target = work / rev.replace("/", "_")
    target.mkdir(parents=True, exist_ok=True)
    tar_path = work / "rev.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(target, filter="data")
    spec = target / rel
    if not spec.is_file():
        error(f"{rel} is not in {rev}")
        return None
    return load_plan(str(spec), "text")


def cmd_diff(args) -> int:
    from ..plan.diff import diff_plans, render_text

    with tempfile.TemporaryDirectory() as tmp:
        plans = []
        for arg in (args.old, args.new):
            from_git = ":" in arg and not Path(arg).exists()
            loaded = _from_git(arg, Path(tmp)) if from_git else load_plan(arg, "text")
            if loaded is None:  # the reason is printed
                return EXIT_USAGE
            plans.append(loaded[0])
    diff = diff_plans(plans[0], plans[1])
    sys.stdout.write(diff.to_json() if args.format == "json" else render_text(diff))
    return EXIT_ERRORS if diff.changes else EXIT_OK
