"""Reading a spec's folder as it was at a git revision, for `synthc diff REV:path`. The only
place synthc starts a subprocess: every argument that comes from the user is an operand, checked
and placed after `--end-of-options`, so it can never be read as a git option."""

from __future__ import annotations

import re
import subprocess
import tarfile
from pathlib import Path, PurePosixPath

# A revision as users write one (a name, a hash, HEAD~2, main^, v1.0, origin/main, @{u}), and
# nothing that begins like an option.
_REVISION = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9_@{}~^./+-]*")


class RevisionError(Exception):
    """Why REV:path cannot be read; the message is for the user."""


def _git(*args: str, operands: tuple[str, ...] = (), paths: tuple[str, ...] = ()) -> bytes:
    """The standard output of `git ARGS --end-of-options OPERANDS -- PATHS` (ARGS are synthc's
    own; OPERANDS and PATHS may come from the user)."""
    argv = ["git", *args, *(("--end-of-options", *operands) if operands else ())]
    if paths:
        argv += ["--", *paths]
    try:
        return subprocess.run(argv, capture_output=True, check=True, stdin=subprocess.DEVNULL).stdout
    except OSError as exc:
        raise RevisionError(f"cannot run git: {exc}") from None
    except subprocess.CalledProcessError as exc:
        raise RevisionError((exc.stderr or b"").decode(errors="replace").strip() or str(exc)) from None


def _no_links(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
    """Regular files and folders only, as tarfile's `data` filter keeps them; links are left
    out (one to an absolute path or out of the tree would stop the whole extraction), so a spec
    that is itself a link is `not in` the revision."""
    if member.issym() or member.islnk():
        return None
    return tarfile.data_filter(member, path)


def split_revision(arg: str) -> tuple[str, PurePosixPath]:
    """REV and the path relative to the repository's root, from `REV:path`; RevisionError for a
    revision that could be read as an option or a path that leaves the repository."""
    rev, _, rel = arg.partition(":")
    if len(rev) > 1000 or not _REVISION.fullmatch(rev):
        shown = rev if len(rev) <= 100 else rev[:100] + "..."
        raise RevisionError(f"not a git revision: {shown!r} (write REV:path, e.g. HEAD:specs/x.synth)")
    path = PurePosixPath(rel)
    if not rel or path.is_absolute() or ".." in path.parts or "\\" in rel:
        raise RevisionError(f"{rel!r} in {arg!r} must be a path relative to the repository's root, "
                            f"without '..' (e.g. HEAD:specs/x.synth)")
    return rev, path


def extract_revision(arg: str, work: Path) -> Path:
    """The spec file of `REV:path` inside `work`, with its folder extracted as it was at REV."""
    rev, rel = split_revision(arg)
    root = _git("rev-parse", "--show-toplevel").decode(errors="replace").strip()
    try:
        commit = _git("-C", root, "rev-parse", "--verify", "--quiet", operands=(f"{rev}^{{commit}}",))
    except RevisionError:
        raise RevisionError(f"no commit `{rev}` in this repository") from None
    commit_id = commit.decode().strip()
    if not re.fullmatch(r"[0-9a-f]{40,64}", commit_id):
        raise RevisionError(f"not a commit: {rev}")
    folder = rel.parent.as_posix()
    # the commit is a hash rev-parse gave back; git archive reads `--end-of-options` as a path
    archive = _git("-C", root, "archive", "--format=tar", commit_id, paths=(folder,))
    target = work / commit_id
    target.mkdir(parents=True, exist_ok=True)
    tar_path = work / f"{commit_id}.tar"
    tar_path.write_bytes(archive)
    try:
        with tarfile.open(tar_path) as tar:
            tar.extractall(target, filter=_no_links)
    except (tarfile.TarError, OSError) as exc:
        raise RevisionError(f"cannot unpack {rel.parent} at {rev}: {exc}") from None
    spec = target / rel
    if not spec.is_file():
        raise RevisionError(f"{rel} is not in {rev}")
    return spec
