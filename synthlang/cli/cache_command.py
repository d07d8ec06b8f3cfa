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
    from datetime import datetime

    from ..runtime.cache import ResultCache

    folder = _cache_folder_of(args)
    if folder is None:
        return EXIT_ERRORS
    try:
        cache = (ResultCache.open_existing(folder) if args.cache_command == "info"
                 else ResultCache(folder) if (folder / "results.sqlite").is_file() else None)
    except OSError as exc:
        error(str(exc))
        return EXIT_ERRORS
    if cache is None:
        print(f"no result cache in {folder}", file=sys.stderr)
        return EXIT_OK
    try:
        if args.cache_command == "prune":
            if args.max_size is None and args.older_than is None and not args.all:
                error("say what to drop: --max-size SIZE, --older-than DAYS or --all")
                return EXIT_USAGE
            dropped = cache.prune(max_bytes=0 if args.all else args.max_size,
                                  older_than=args.older_than * 86400 if args.older_than is not None else None)
            print(f"dropped {dropped} entries", file=sys.stderr)
        info = cache.info()
    finally:
        cache.db.close()
    when = ""
    if info.oldest_use is not None and info.newest_use is not None:
        when = (f"; last used between {datetime.fromtimestamp(info.oldest_use):%Y-%m-%d} and "
                f"{datetime.fromtimestamp(info.newest_use):%Y-%m-%d}")
    print(f"{info.path}: {info.entries} results, {human_size(info.bytes)} of entries, "
          f"{human_size(info.file_bytes)} on disk{when}")
    return EXIT_OK
