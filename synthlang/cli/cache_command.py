"""`synthc cache info|prune`: the size of a result cache, and dropping entries from it."""

from __future__ import annotations

import sys
from pathlib import Path

from ..files import human_size
from .common import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, cache_dir_for, error, load_plan


def _cache_folder_of(args) -> Path | None:
    """`--cache DIR`; or the cache of a spec's output folder, of an output folder, or a cache
    folder itself."""
    from ..runtime.cache import CACHE_FILE

    where = Path(args.where or ".")
    if args.cache or not where.is_file():
        if not args.cache and (where / CACHE_FILE).is_file():
            return where
        return cache_dir_for(args, where)
    loaded = load_plan(str(where), "text")
    if loaded is None:
        return None
    plan, base = loaded
    return cache_dir_for(args, base / plan.output.path)


def cmd_cache(args) -> int:
    from ..runtime.cache import CacheDamaged

    if args.cache_command == "prune" and args.max_size is None and args.older_than is None and not args.all:
        error("say what to drop: --max-size SIZE, --older-than DAYS or --all")
        return EXIT_USAGE
    folder = _cache_folder_of(args)
    if folder is None:
        return EXIT_ERRORS
    try:
        return _info_or_prune(folder, args)
    except CacheDamaged as exc:
        return _damaged(folder, exc, args)
    except OSError as exc:
        error(str(exc))
        return EXIT_ERRORS


def _info_or_prune(folder: Path, args) -> int:
    """Prints the cache's size (after pruning it); raises CacheDamaged for a damaged cache."""
    from ..runtime.cache import CACHE_FILE, ResultCache, remove_damaged, set_aside_files

    if not (folder / CACHE_FILE).is_file():
        if args.cache_command == "prune" and args.all:
            _say_removed(remove_damaged(folder))
        print(f"no result cache in {folder}", file=sys.stderr)
        return EXIT_OK
    cache = ResultCache(folder, readonly=args.cache_command == "info", recover=False)
    try:
        if args.cache_command == "prune":
            dropped = cache.prune(max_bytes=0 if args.all else args.max_size,
                                  older_than=args.older_than * 86400 if args.older_than is not None else None)
            print(f"dropped {dropped} entries", file=sys.stderr)
            if args.all:  # a damaged cache a run moved aside goes too
                _say_removed([p for p in set_aside_files(folder) if _removed(p)])
        info = cache.info()
    finally:
        cache.db.close()
    print(_describe(info))
    return EXIT_OK


def _describe(info) -> str:
    """One line: where the cache is, what it holds, and when it was last used."""
    from datetime import datetime

    when = ""
    if isinstance(info.oldest_use, (int, float)) and isinstance(info.newest_use, (int, float)):
        when = (f"; last used between {datetime.fromtimestamp(info.oldest_use):%Y-%m-%d} and "
                f"{datetime.fromtimestamp(info.newest_use):%Y-%m-%d}")
    aside = (f"; a damaged cache moved aside holds {human_size(info.set_aside_bytes)} (`prune --all` removes it)"
             if info.set_aside_bytes else "")
    return (f"{info.path}: {info.entries} results, {human_size(info.bytes)} of entries, "
            f"{human_size(info.file_bytes)} on disk{when}{aside}")


def _damaged(folder: Path, exc, args) -> int:
    """A damaged cache: `prune --all` removes it, anything else says so and what to do."""
    from ..runtime.cache import remove_damaged

    if args.cache_command == "prune" and args.all:
        _say_removed(remove_damaged(folder))
        return EXIT_OK
    if args.cache_command == "info":
        print(f"{exc.path}: damaged ({exc.reason}); `synthc cache prune --all` removes it, and a run moves it "
              "aside and starts a new one")
    else:
        error(f"{exc}; `synthc cache prune --all` removes it, and a run moves it aside and starts a new one")
    return EXIT_ERRORS


def _removed(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _say_removed(paths: list[Path]) -> None:
    for p in paths:
        print(f"removed {p}", file=sys.stderr)
