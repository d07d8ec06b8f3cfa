"""Files from and to the outside, handled safely: every other module reads inputs and writes
outputs through here.

Reading: regular files only (a FIFO or a device would be read forever), with a size limit.
Writing: inside a confined folder tree only. Folders are created one component at a time and a
symbolic link on the way must stay inside the tree; files are created with O_NOFOLLOW and
O_EXCL under a temporary name, fsynced, and renamed into place, so a symlink planted in an
output folder is replaced, never followed, and a killed run never leaves a half-written file
under a final name."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class UnsafePath(OSError):
    """A path that would read or write outside what the user allowed, or is not a plain file."""


def readable_name(name: str) -> str:
    """A file name as text every format can hold: bytes that are not UTF-8 (read as lone
    surrogates) become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def path_text_problem(text: str) -> str | None:
    """Why a path the user or a spec gave cannot name an output, or None: a control character
    (ESC, a newline, NUL, ...) or a bidirectional override (U+202E, ...) would be created as a
    folder name and then printed, rewriting the user's terminal or hiding what is written where."""
    import unicodedata

    from .diagnostics import BIDI_CONTROLS

    for ch in text:
        # control characters, line and paragraph separators and the bidirectional controls;
        # other format characters (a zero-width non-joiner in a Persian word) are letters' kin
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in BIDI_CONTROLS:
            name = unicodedata.name(ch, "a control character")
            return f"the path holds U+{ord(ch):04X} ({name.lower()}), which cannot be shown as written"
    return None


MODEL_PATH_ENV = "SYNTHC_MODEL_PATH"  # folders of model files the user lets specs name


def model_file(name: str, spec_dir: Path, environ=os.environ) -> tuple[Path | None, str | None]:
    """The .gguf file a spec's model `name` means, relative to the spec's folder, and None; or
    None and why it cannot be used. Like every file a spec reads it lies in the spec's folder
    tree, or in a folder the user (not the spec) listed in $SYNTHC_MODEL_PATH (os.pathsep
    between folders), symlinks resolved; and it is a regular file."""
    if "\0" in name or not name.strip():
        return None, "the model path is empty or holds a NUL character"
    path = Path(os.path.realpath(spec_dir / os.path.expanduser(name)))
    allowed = [spec_dir, *(Path(p).expanduser() for p in environ.get(MODEL_PATH_ENV, "").split(os.pathsep) if p)]
    if not any(inside(path, folder) for folder in allowed):
        return None, (f"`{name}` lies outside the spec's folder tree; a spec reads only below its folder, "
                      f"or below a folder you list in ${MODEL_PATH_ENV}")
    if path.suffix.lower() != ".gguf":
        return None, f"`{name}` is neither the embedded model nor a .gguf file"
    if not is_regular_file(path):
        return None, f"the model file `{name}` is missing, or not a regular file"
    return path, None


def is_regular_file(path: Path) -> bool:
    """True for an existing regular file (after symlinks); never raises."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def read_bytes(path: Path, limit: int) -> bytes:
    """The file's bytes. Raises UnsafePath for anything but a regular file or a file larger
    than `limit`, OSError when it cannot be read."""
    fd = os.open(path, os.O_RDONLY | _NONBLOCK)  # O_NONBLOCK: opening a FIFO must not wait
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePath(errno.EINVAL, "not a regular file")
        if info.st_size > limit:
            raise UnsafePath(errno.EFBIG, f"larger than the limit of {human_size(limit)} ({human_size(info.st_size)})")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:  # grew while being read
                raise UnsafePath(errno.EFBIG, f"larger than the limit of {human_size(limit)}")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def user_cache_dir() -> Path:
    """synthlang's folder in the user's cache (`$SYNTHLANG_CACHE`, else `$XDG_CACHE_HOME/synthlang`,
    else `~/.cache/synthlang`): what is derived once from installed packages and reused."""
    base = os.environ.get("SYNTHLANG_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "synthlang")
    return Path(base)


def human_size(n: int) -> str:
    """A size in bytes for people: `1.5 GiB`, `16.0 MiB`, `12.4 KiB`, `512 bytes`."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def inside(path: Path, root: Path) -> bool:
    """True when path, with every symlink resolved, lies in root's tree (root resolved too)."""
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(root))
        return True
    except ValueError:
        return False


def ensure_dir(folder: Path, root: Path) -> Path:
    """Create folder (and its parents) inside root's tree. A component that exists must be a
    folder, or a symlink to a folder inside the tree. Raises UnsafePath otherwise."""
    root_real = Path(os.path.realpath(root))
    folder = Path(os.path.abspath(folder))
    try:
        rel = folder.relative_to(Path(os.path.abspath(root)))
    except ValueError:
        if not inside(folder, root):
            raise UnsafePath(errno.EPERM, f"{folder} is outside {root}") from None
        rel = Path(os.path.realpath(folder)).relative_to(root_real)
    if root_real.exists() and not root_real.is_dir():
        raise UnsafePath(errno.ENOTDIR, f"{root} exists and is not a folder")
    root_real.mkdir(parents=True, exist_ok=True)
    current = root_real
    for part in rel.parts:
        if part in ("", "."):
            continue
        if part == "..":
            raise UnsafePath(errno.EPERM, f"{folder}: `..` leaves {root}")
        current = current / part
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            try:
                os.mkdir(current)
                continue
            except FileExistsError:  # another run made it at the same moment: checked as found
                info = os.lstat(current)
        if stat.S_ISLNK(info.st_mode):
            target = Path(os.path.realpath(current))
            if not inside(target, root_real):
                raise UnsafePath(errno.EPERM, f"{current} is a symbolic link that leads out of {root_real} "
                                 f"(to {target}); remove it or choose another output folder")
            if not target.is_dir():
                raise UnsafePath(errno.ENOTDIR, f"{current} is a symbolic link to something that is not a folder")
            current = target
        elif not stat.S_ISDIR(info.st_mode):
            raise UnsafePath(errno.ENOTDIR, f"{current} exists and is not a folder")
    return current


def open_new(path: Path, binary: bool = False, newline: str | None = None):
    """A new file at path opened for writing: an existing file or symlink at that name is
    removed first, and the open never follows a symlink (O_NOFOLLOW | O_EXCL)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
    if binary:
        return os.fdopen(fd, "wb")
    return os.fdopen(fd, "w", encoding="utf-8", newline=newline)


def open_append(path: Path):
    """An append-only text handle that refuses to follow a symlink at path."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o644)
    return os.fdopen(fd, "a", encoding="utf-8")


def open_update(path: Path):
    """A binary read-write handle on a file this program wrote; refuses a symlink at path."""
    return os.fdopen(os.open(path, os.O_RDWR | _NOFOLLOW), "rb+")


def open_read(path: Path):
    """A text handle for reading a file this program wrote; refuses a symlink at path. Bytes
    that are not UTF-8 (a damaged file) read as lone surrogates, which no JSON value synthc
    accepts holds, so a reader reports them as damage instead of raising UnicodeDecodeError."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    return os.fdopen(fd, "r", encoding="utf-8", errors="surrogateescape")


def temp_name(path: Path) -> Path:
    return path.with_name("." + path.name + ".tmp")


def replace_into_place(tmp: Path, path: Path) -> None:
    """Rename a finished temporary file onto its final name (a symlink there is replaced)."""
    os.replace(tmp, path)


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write a whole file: temporary name, fsync, rename. The folder must already be safe
    (see ensure_dir)."""
    tmp = temp_name(path)
    with open_new(tmp, binary=True) as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    replace_into_place(tmp, path)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: dict) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
