"""Regex helpers: compile checks, match-length bounds, features engines cannot enforce,
and drawing a random string that matches (the `~ regex` sampler)."""

from __future__ import annotations

import random
import re
import string
from functools import lru_cache

try:  # Python 3.11+
    from re import _constants as C  # type: ignore[attr-defined]
    from re import _parser as P  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants as C  # type: ignore[no-redef]
    import sre_parse as P  # type: ignore[no-redef]

UNBOUNDED = int(C.MAXREPEAT)
# How far `~ regex` sampling goes past the minimum of an unbounded repeat.
SAMPLE_UNBOUNDED_EXTRA = 8


def strip_anchors(pattern: str) -> str:
    """Patterns are matched in full; a leading ^ and trailing $ add nothing."""
    if pattern.startswith("^"):
        pattern = pattern[1:]
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1]
    return pattern


@lru_cache(maxsize=2048)
def matcher(pattern: str):
    """The pattern compiled for matching values. Every match of a user's regex against data
    (seed values, quota values, picked constants, checks) runs on RE2, which never backtracks:
    no pattern can make `check` or a run hang (Python's `re` only parses patterns here)."""
    import re2

    options = re2.Options()
    options.log_errors = False  # the reason is reported as a diagnostic, not on stderr
    return re2.compile(pattern, options)


def fullmatch(pattern: str, text: str) -> bool:
    return matcher(pattern).fullmatch(text) is not None


def search(pattern: str, text: str) -> bool:
    return matcher(pattern).search(text) is not None


def compile_error(pattern: str) -> str | None:
    """None if the pattern compiles (in Python's syntax, and for RE2), else the reason."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    except (OverflowError, RecursionError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    import re2

    try:
        matcher(pattern)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        feature = unsupported_feature(pattern)
        return (f"{feature} are not supported" if feature and feature != "word-boundary assertions" else reason) + \
            " (regexes are matched by RE2, which never backtracks: no lookaround, backreferences " \
            "or possessive repeats, and counted repeats up to 1000)"
    return None


def unsupported_feature(pattern: str) -> str | None:
    """Features a decoding constraint cannot express (lookaround, backreferences)."""
    try:
        tree = P.parse(pattern)
    except Exception:  # noqa: BLE001 - compile_error reports it
        return None
    stack = [tree]
    while stack:
        node = stack.pop()
        for op, av in node:
            if op in (C.ASSERT, C.ASSERT_NOT):
                return "lookaround assertions"
            if op in (C.GROUPREF, C.GROUPREF_EXISTS):
                return "backreferences"
            if op == C.AT and av not in (C.AT_BEGINNING, C.AT_END, C.AT_BEGINNING_STRING, C.AT_END_STRING):
                return "word-boundary assertions"
            stack.extend(_children(op, av))
    return None


def _children(op, av) -> list:
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None)):
        return [av[2]]
    if op == C.SUBPATTERN:
        return [av[-1]]
    if op == C.BRANCH:
        return list(av[1])
    if op == getattr(C, "ATOMIC_GROUP", None):
        return [av]
    return []


def width(pattern: str) -> tuple[int, int | None]:
    """Shortest and longest match length; None for unbounded."""
    lo, hi = P.parse(pattern).getwidth()
    return int(lo), (None if hi >= UNBOUNDED else int(hi))


_CATEGORY = {
    C.CATEGORY_DIGIT: string.digits,
    C.CATEGORY_NOT_DIGIT: string.ascii_letters + " _-.,",
    C.CATEGORY_SPACE: " ",
    C.CATEGORY_NOT_SPACE: string.ascii_letters + string.digits,
    C.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    C.CATEGORY_NOT_WORD: " -.,!?",
}
_PRINTABLE = [chr(c) for c in range(32, 127)]


def _class_chars(items, alphabet: list[str] | None = None) -> list[str]:
    negate = False
    chars: set[str] = set()
    for op, av in items:
        if op == C.NEGATE:
            negate = True
        elif op == C.LITERAL:
            chars.add(chr(av))
        elif op == C.RANGE:
            lo, hi = av
            chars.update(chr(c) for c in range(lo, min(hi, lo + 2000) + 1))
        elif op == C.CATEGORY:
            chars.update(_CATEGORY.get(av, string.ascii_letters))
    if negate:
        return [c for c in alphabet or _PRINTABLE if c not in chars]
    return sorted(chars)


def literal_runs(pattern: str) -> list[str]:
    """The runs of literal characters at the top level of a pattern (a `mentions` pattern's
    values, in order)."""
    runs, current = [], []
    for op, av in P.parse(pattern):
        if op == C.LITERAL:
            current.append(chr(av))
        else:
            if current:
                runs.append("".join(current))
            current = []
    if current:
        runs.append("".join(current))
    return runs


def sample(pattern: str, rng: random.Random, min_len: int | None = None, max_len: int | None = None,
           tries: int = 200, alphabet: str | None = None) -> str:
    """A random string fully matching pattern, within the length bounds where possible.
    `alphabet`, if given, is what negated classes and `.` draw from."""
    chars = list(alphabet) if alphabet else None
    tree = P.parse(pattern)
    last = ""
    cap = min(max_len, MAX_SAMPLE_CHARS) if max_len is not None else MAX_SAMPLE_CHARS
    for _ in range(tries):
        out: list[str] = []
        try:
            _emit(tree, rng, out, chars, _Budget(cap))
        except _OverBudget:  # nested repeats grow exponentially: (((a*)*)*)* draws billions
            continue
        last = "".join(out)
        if (min_len is None or len(last) >= min_len) and (max_len is None or len(last) <= max_len) \
                and fullmatch(pattern, last):
            return last
    raise ValueError(f"could not draw a string matching /{pattern}/ within the length bounds")


MAX_SAMPLE_CHARS = 10_000   # a drawn string; a longer draw is tried again
MAX_SAMPLE_STEPS = 200_000  # pattern nodes visited for one draw


class _OverBudget(Exception):
    pass


class _Budget:
    """What one draw may still emit and visit."""

    def __init__(self, chars: int):
        self.chars, self.steps = chars, MAX_SAMPLE_STEPS

    def spend(self, out: list[str]) -> None:
        self.steps -= 1
        if self.steps < 0 or len(out) > self.chars:
            raise _OverBudget


def _emit(tree, rng: random.Random, out: list[str], alphabet: list[str] | None, budget: _Budget) -> None:
    for op, av in tree:
        budget.spend(out)
        if op == C.LITERAL:
            out.append(chr(av))
        elif op == C.NOT_LITERAL:
            out.append(rng.choice([c for c in alphabet or _PRINTABLE if c != chr(av)]))
        elif op == C.ANY:
            out.append(rng.choice(alphabet or string.ascii_letters + string.digits + " "))
        elif op == C.IN:
            choices = _class_chars(av, alphabet)
            if choices:
                out.append(rng.choice(choices))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT) or op == getattr(C, "POSSESSIVE_REPEAT", None):
            lo, hi, sub = av
            hi = lo + SAMPLE_UNBOUNDED_EXTRA if hi >= UNBOUNDED else hi
            for _ in range(rng.randint(lo, hi)):
                _emit(sub, rng, out, alphabet, budget)
        elif op == C.SUBPATTERN:
            _emit(av[-1], rng, out, alphabet, budget)
        elif op == C.BRANCH:
            _emit(rng.choice(av[1]), rng, out, alphabet, budget)
        elif op == getattr(C, "ATOMIC_GROUP", None):
            _emit(av, rng, out, alphabet, budget)
        # AT (anchors) emit nothing
