"""Prompt templates: one Jinja environment, sandboxed and bounded, for the checker that reads
templates and the runtime that renders them.

A spec can come from anyone, so a template must not escape the sandbox, and it must not be able
to hang or exhaust the machine: no constant folding while a template is only being checked (the
optimizer would evaluate `{{ [1] * 500000000 }}` at parse time), sequences built by `*` and `+`,
`range()` and width arguments capped, a budget of loop iterations per render, a time limit where
a timer can interrupt the render, and a cap on the rendered text."""

from __future__ import annotations

import re
import signal
import string
import threading
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

MAX_RENDERED_CHARS = 200_000   # one rendered prompt
MAX_SEQUENCE = 100_000         # items or characters a `*`, `+` or range() may produce
MAX_WIDTH = 10_000             # width and count arguments of filters and format specs
MAX_ITERATIONS = 200_000       # range() items per render, summed over every loop
MAX_SECONDS = 5.0              # one render, where a timer can interrupt it (the main thread)


class TemplateLimit(Exception):
    """A template went past one of the bounds above."""


_budget = threading.local()


def _count(n: int) -> None:
    left = getattr(_budget, "left", None)
    if left is None:
        return
    if n > left:
        raise TemplateLimit(f"the template loops more than {MAX_ITERATIONS:,} times in one render")
    _budget.left = left - n


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, list, tuple)) else None


def _make_env():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

    class BoundedSandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(["*", "**", "+"])

        def call_binop(self, context, operator, left, right):
            if operator == "**" and isinstance(right, (int, float)) and not isinstance(right, bool) \
                    and (abs(right) > 64 or (isinstance(left, (int, float)) and abs(left) > 2**64)):
                raise SecurityError("`**` with an exponent over 64 is not allowed in a template")
            if operator == "*":
                for seq, n in ((left, right), (right, left)):
                    size = _size(seq)
                    if size is not None and isinstance(n, int) and size * n > MAX_SEQUENCE:
                        raise SecurityError(f"`*` would build a sequence of over {MAX_SEQUENCE:,} items")
            left_size, right_size = _size(left), _size(right)
            if operator == "+" and left_size is not None and right_size is not None \
                    and left_size + right_size > MAX_SEQUENCE:
                raise SecurityError(f"`+` would build a sequence of over {MAX_SEQUENCE:,} items")
            return super().call_binop(context, operator, left, right)

        def wrap_str_format(self, value):
            wrapped = super().wrap_str_format(value)  # str.format and format_map, sandboxed
            if wrapped is None:
                return None
            fmt = getattr(value, "__self__", "")

            def checked(*args, **kwargs):
                _check_format_spec(str(fmt))
                return wrapped(*args, **kwargs)

            return checked

    # Sandboxed and immutable: templates cannot call unsafe attributes or mutate data, and no
    # loader is configured, so `include`/`import` cannot read any file. optimized=False: the
    # optimizer folds constant expressions, which would run them while a template is checked.
    env = BoundedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False,
                         trim_blocks=True, lstrip_blocks=True, optimized=False)
    env.globals["range"] = _range
    for name in ("center", "indent", "wordwrap", "truncate", "batch", "slice"):
        env.filters[name] = _capped(env.filters[name])
    env.filters["format"] = _format_filter(env.filters["format"])
    return env


def _range(*args):
    if any(not isinstance(a, int) or isinstance(a, bool) for a in args):
        raise TemplateLimit("range() takes whole numbers")
    rng = range(*args)
    if len(rng) > MAX_SEQUENCE:
        raise TemplateLimit(f"range() of over {MAX_SEQUENCE:,} items")
    _count(len(rng))
    return rng


def _capped(filter_func):
    def wrapper(value, *args, **kwargs):
        for a in list(args) + list(kwargs.values()):
            if isinstance(a, int) and not isinstance(a, bool) and abs(a) > MAX_WIDTH:
                raise TemplateLimit(f"a filter argument of {a} is over the limit of {MAX_WIDTH:,}")
        return filter_func(value, *args, **kwargs)

    wrapper.__name__ = getattr(filter_func, "__name__", "filter")
    return wrapper


_PERCENT_WIDTH = re.compile(r"%[-+ #0]*(\*|\d+)(?:\.(\*|\d+))?")


def _format_filter(filter_func):
    def wrapper(value, *args, **kwargs):
        for m in _PERCENT_WIDTH.finditer(str(value)):
            for part in m.groups():
                if part is not None and (part == "*" or int(part) > MAX_WIDTH):
                    raise TemplateLimit(f"a format width over {MAX_WIDTH:,}")
        return filter_func(value, *args, **kwargs)

    return wrapper


def _check_format_spec(s: str) -> None:
    try:
        parts = list(string.Formatter().parse(s))
    except ValueError:
        return  # str.format itself reports it
    for _, _, spec, _ in parts:
        for number in re.findall(r"\d+", spec or ""):
            if int(number) > MAX_WIDTH:
                raise TemplateLimit(f"a format width over {MAX_WIDTH:,}")


@lru_cache(maxsize=1)
def template_env():
    """The one Jinja environment for prompts, rubrics and step templates."""
    return _make_env()


@lru_cache(maxsize=256)
def compiled(text: str):
    return template_env().from_string(text)


@contextmanager
def _time_limit(seconds: float):
    usable = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    if not usable:
        yield
        return

    def stop(signum, frame):
        raise TemplateLimit(f"the template took longer than {seconds:g} s to render")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def render(text: str, context: dict) -> str:
    """Render a template within the bounds. Raises TemplateLimit past one, or Jinja's own
    errors (an undefined name, a sandbox violation) for a bad template."""
    template = compiled(text)
    _budget.left = MAX_ITERATIONS
    pieces: list[str] = []
    total = 0
    try:
        with _time_limit(MAX_SECONDS):
            for piece in template.generate(**context):
                total += len(piece)
                if total > MAX_RENDERED_CHARS:
                    raise TemplateLimit(f"the rendered template is longer than {MAX_RENDERED_CHARS:,} characters")
                pieces.append(piece)
    finally:
        _budget.left = None
    return "".join(pieces)
