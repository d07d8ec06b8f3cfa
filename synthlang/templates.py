"""Prompt templates: one Jinja environment, sandboxed and bounded, for the checker that reads
templates and the runtime that renders them.

A spec can come from anyone, so a template must not escape the sandbox, and it must not be able
to hang or exhaust the machine: no constant folding while a template is only being checked (the
optimizer would evaluate `{{ [1] * 500000000 }}` at parse time), sequences built by `*` and `+`,
`range()` and width arguments capped, a budget of loop iterations per render, a time limit where
a timer can interrupt the render, and a cap on the rendered text. Every string a template builds
(`~`, `replace`, `join`, `indent`, `%`, `str` methods such as `ljust`) is sized before it is
built. Before a template is parsed, its tokens are counted: brackets, blocks and operators nest
only so deep, so neither Jinja's recursive parser nor Python's compiler can run out of stack, and
`include`, `import`, `extends` and `from` are refused (there is no file to read)."""

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
MAX_VALUE_CHARS = MAX_RENDERED_CHARS  # one string a template builds
MAX_BRACKETS = 30              # (, [ and { open at once inside one tag
MAX_BLOCKS = 16                # for, if, macro, ... open at once (Python nests 20 blocks at most)
MAX_LIPSUM = 100               # paragraphs, and words per paragraph, of lipsum()
MAX_OPERATORS = 100            # operators, filters, tests and attribute dots inside one tag


class TemplateLimit(Exception):
    """A template went past one of the bounds above."""


_OPENS = frozenset({"for", "if", "macro", "call", "filter", "with", "autoescape", "block", "set"})
_NO_FILES = frozenset({"include", "import", "extends", "from"})
_OPERATOR_TOKENS = frozenset({"add", "sub", "mul", "div", "floordiv", "mod", "pow", "tilde", "pipe", "dot",
                              "eq", "ne", "gt", "gteq", "lt", "lteq", "assign"})
_OPERATOR_NAMES = frozenset({"and", "or", "not", "in", "is", "if", "else"})


def template_problem(text: str) -> tuple[str, int] | None:
    """Why the template cannot be used, with its line, or None: a bound on nesting or operators
    (checked on Jinja's tokens, before the recursive parser runs), a syntax error, a tag that
    would read a file, or code Python cannot compile."""
    from jinja2 import TemplateSyntaxError

    env = template_env()
    try:
        problem = _token_problem(env, text)
        if problem:
            return problem
        parsed = env.parse(text)
        from jinja2 import nodes

        for node in parsed.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            return f"`{type(node).__name__.lower()}` reads another template; a spec's templates have no files", \
                node.lineno
        env.compile(parsed)
    except TemplateSyntaxError as exc:
        return exc.message or str(exc), exc.lineno or 1
    except (SyntaxError, RecursionError, MemoryError) as exc:  # Python's own nesting limits
        return f"the template nests too deeply to compile ({type(exc).__name__})", getattr(exc, "lineno", 1) or 1
    return None


def _token_problem(env, text: str) -> tuple[str, int] | None:
    blocks: list[str] = []
    brackets = operators = 0
    tag_name: str | None = None
    tag_has_assign = False
    from jinja2.lexer import operators as operator_kinds

    for lineno, kind, value in env.lex(text):
        if kind == "operator":
            kind = operator_kinds.get(value, kind)
        if kind in ("block_begin", "variable_begin"):
            brackets = operators = 0
            tag_name, tag_has_assign = ("" if kind == "block_begin" else None), False
        elif kind == "name" and tag_name == "":
            tag_name = value
            if value in _NO_FILES:
                return f"`{value}` reads another template; a spec's templates have no files", lineno
            if value.startswith("end"):
                if blocks:
                    blocks.pop()
            elif value in _OPENS and value != "set":
                blocks.append(value)
        elif kind == "block_end":
            if tag_name == "set" and not tag_has_assign:  # `{% set x %}...{% endset %}` is a block
                blocks.append("set")
            tag_name = None
        elif kind in ("lparen", "lbracket", "lbrace"):
            brackets += 1
            if brackets > MAX_BRACKETS:
                return f"brackets nest more than {MAX_BRACKETS} deep in one tag", lineno
        elif kind in ("rparen", "rbracket", "rbrace"):
            brackets -= 1
        if kind == "assign":
            tag_has_assign = True
        if kind in _OPERATOR_TOKENS or (kind == "name" and value in _OPERATOR_NAMES):
            operators += 1
            if operators > MAX_OPERATORS:
                return f"more than {MAX_OPERATORS} operators, filters or attribute lookups in one tag", lineno
        if len(blocks) > MAX_BLOCKS:
            return f"blocks (`for`, `if`, `macro`, ...) nest more than {MAX_BLOCKS} deep", lineno
    return None


def _refuse_long(size: int, what: str) -> None:
    if size > MAX_VALUE_CHARS:
        raise TemplateLimit(f"{what} would build a string of over {MAX_VALUE_CHARS:,} characters")


def _text_size(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """At least the length of str(value) or its JSON, found without building it: a list of a
    hundred thousand copies of a long string is counted, not printed. Stops counting once past
    `limit`, so it costs at most about `limit` steps."""
    total, stack = 0, [value]
    while stack and total <= limit:
        v = stack.pop()
        if isinstance(v, str):
            total += len(v) + 2
        elif isinstance(v, bool) or v is None:
            total += 5
        elif isinstance(v, int):
            total += v.bit_length() * 3 // 10 + 2
        elif isinstance(v, (list, tuple, set, frozenset, dict)):
            total += 2 + 2 * len(v)
            if total <= limit:
                stack.extend(list(v.items()) if isinstance(v, dict) else v)
        else:
            total += 24
    return total


def _refuse_text(value: Any, what: str) -> None:
    """Refuse to turn `value` into text when the text would be over the limit."""
    if isinstance(value, str):
        _refuse_long(len(value), what)
    else:
        _refuse_long(_text_size(value), what)


def _concat(parts) -> str:
    """`a ~ b ~ c`, sized before it is built."""
    _refuse_long(sum(_text_size(p) if not isinstance(p, str) else len(p) for p in parts), "`~`")
    return "".join(str(p) for p in parts)


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?[a-zA-Z%]")


def _percent_size(fmt: str, args: Any) -> int:
    """At most how long `fmt % args` is: every conversion as wide as its width allows and as
    long as the longest argument (a dict's values for `%(name)s`). Raises TemplateLimit for a
    width past MAX_WIDTH or taken from an argument (`*`)."""
    specs = _PERCENT_SPEC.findall(fmt)
    widest = 0
    for width, precision in specs:
        for part in (width, precision):
            if part == "*" or (part and int(part) > MAX_WIDTH):
                raise TemplateLimit(f"a format width over {MAX_WIDTH:,}")
        widest = max(widest, int(width or 0))
    values = list(args.values()) if isinstance(args, dict) else list(args) if isinstance(args, (tuple, list)) \
        else [args]
    longest = max((_text_size(v) for v in values), default=0)
    return len(fmt) + len(specs) * (widest + longest)


def _estimate_str_method(obj: Any, args: tuple, kwargs: dict) -> int | None:
    """The length of what a str method would return, for the methods that can grow a string."""
    text, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
    if not isinstance(text, str):
        return None
    ints = [a for a in list(args) + list(kwargs.values()) if isinstance(a, int) and not isinstance(a, bool)]
    if name in ("ljust", "rjust", "center", "zfill"):
        return max([len(text), *ints])
    if name == "expandtabs":
        return len(text) + text.count("\t") * max([8, *ints])
    if name == "replace" and len(args) >= 2:
        return _replaced_len(text, args[0], args[1], args[2] if len(args) > 2 else -1)
    if name == "join" and args:
        items = args[0]
        if isinstance(items, (str, list, tuple)):
            return sum(_text_size(i) for i in items) + len(text) * max(len(items) - 1, 0)
        raise TemplateLimit("`.join()` takes a list or a string in a template")
    return None


def _replaced_len(text: str, old: Any, new: Any, count: Any) -> int:
    if not isinstance(old, str) or not isinstance(new, str):
        return len(text)
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * (len(new) - len(old))


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
        intercepted_binops = frozenset(["*", "**", "+", "%"])
        code_generator_class = _bounded_code_generator()

        def call_binop(self, context, operator, left, right):
            if operator == "**" and isinstance(right, (int, float)) and not isinstance(right, bool) \
                    and (abs(right) > 64 or (isinstance(left, (int, float)) and abs(left) > 2**64)):
                raise SecurityError("`**` with an exponent over 64 is not allowed in a template")
            if operator == "*":
                for seq, n in ((left, right), (right, left)):
                    size = _size(seq)
                    if size is not None and isinstance(n, int) and size * n > MAX_SEQUENCE:
                        raise SecurityError(f"`*` would build a sequence of over {MAX_SEQUENCE:,} items")
                    if size is not None and isinstance(n, int) and not isinstance(seq, str):
                        _refuse_long(_text_size(seq) * max(n, 0), "`*`")  # [long_text] * 100000
            left_size, right_size = _size(left), _size(right)
            if operator == "+" and left_size is not None and right_size is not None:
                if left_size + right_size > MAX_SEQUENCE:
                    raise SecurityError(f"`+` would build a sequence of over {MAX_SEQUENCE:,} items")
                if not isinstance(left, str):
                    _refuse_long(_text_size(left) + _text_size(right), "`+`")
            if operator == "%" and isinstance(left, str):
                _refuse_long(_percent_size(left, right), "`%`")
            return super().call_binop(context, operator, left, right)

        def bounded_concat(self, parts) -> str:
            return _concat(parts)

        def call(__self, __context, __obj, *args, **kwargs):
            size = _estimate_str_method(__obj, args, kwargs)
            if size is not None:
                _refuse_long(size, f"`.{getattr(__obj, '__name__', 'call')}()`")
            result = super().call(__context, __obj, *args, **kwargs)
            if isinstance(result, str):
                _refuse_long(len(result), "a call")
            return result

        def wrap_str_format(self, value):
            wrapped = super().wrap_str_format(value)  # str.format and format_map, sandboxed
            if wrapped is None:
                return None
            fmt = str(getattr(value, "__self__", ""))

            def checked(*args, **kwargs):
                fields = _check_format_spec(fmt)
                values = list(args) + list(kwargs.values()) + [v for a in args if isinstance(a, dict)
                                                               for v in a.values()]
                longest = max((_text_size(v) for v in values), default=0)
                _refuse_long(len(fmt) + fields * (MAX_WIDTH + longest), "`.format()`")
                return wrapped(*args, **kwargs)

            return checked

    # Sandboxed and immutable: templates cannot call unsafe attributes or mutate data, and no
    # loader is configured, so `include`/`import` cannot read any file. optimized=False: the
    # optimizer folds constant expressions, which would run them while a template is checked.
    env = BoundedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False,
                         trim_blocks=True, lstrip_blocks=True, optimized=False)
    env.globals["range"] = _range
    env.globals["lipsum"] = _lipsum(env.globals["lipsum"])
    for name in ("center", "indent", "wordwrap", "truncate", "batch", "slice", "replace", "join", "string",
                 "tojson", "pprint", "list"):
        env.filters[name] = _capped(env.filters[name], _FILTER_SIZES.get(name, _text_size_of),
                                    text=name in _TEXT_FILTERS)
    env.filters["format"] = _format_filter(env.filters["format"])
    env.finalize = _finalize  # every {{ value }}: its text is sized before it is printed
    return env


def _finalize(value: Any) -> Any:
    _refuse_text(value, "printing a value")
    return value


def _text_size_of(value: Any, *args, **kwargs) -> int:
    return _text_size(value)


def _bounded_code_generator():
    from jinja2.compiler import CodeGenerator

    class BoundedCodeGenerator(CodeGenerator):
        def visit_Concat(self, node, frame):  # `~` goes through the environment, which sizes it
            self.write("environment.bounded_concat((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write("))")

    return BoundedCodeGenerator


def _indent_len(value: Any, width: Any = 4, *args, **kwargs) -> int:
    text = str(value)
    w = len(width) if isinstance(width, str) else width if isinstance(width, int) else 4
    return len(text) + (text.count("\n") + 1) * max(w, 0)


def _join_len(value: Any, d: Any = "", attribute: Any = None) -> int:
    if not isinstance(value, (str, list, tuple, dict)):
        raise TemplateLimit("`join` takes a list or a string in a template")
    return sum(_text_size(i) for i in value) + _text_size(d) * max(len(value) - 1, 0)


def _wordwrap_len(value: Any, width: Any = 79, break_long_words: Any = True, wrapstring: Any = None,
                  *args, **kwargs) -> int:
    text, joint = str(value), wrapstring if isinstance(wrapstring, str) else "\n"
    return len(text) + (len(text) // max(width if isinstance(width, int) else 79, 1) + 1) * len(joint)


def _replace_len(value: Any, old: Any = "", new: Any = "", count: Any = None) -> int:
    return _replaced_len(str(value), old, new, -1 if count is None else count)


# The length a string-growing filter would return, estimated from its arguments before it runs.
_FILTER_SIZES = {"indent": _indent_len, "join": _join_len, "replace": _replace_len, "wordwrap": _wordwrap_len}


def _range(*args):
    if any(not isinstance(a, int) or isinstance(a, bool) for a in args):
        raise TemplateLimit("range() takes whole numbers")
    rng = range(*args)
    if len(rng) > MAX_SEQUENCE:
        raise TemplateLimit(f"range() of over {MAX_SEQUENCE:,} items")
    _count(len(rng))
    return rng


def _lipsum(generate):
    def lipsum(n=5, html=True, min=20, max=100):
        if any(isinstance(a, int) and a > MAX_LIPSUM for a in (n, min, max)):
            raise TemplateLimit(f"lipsum() of over {MAX_LIPSUM} paragraphs or words")
        return generate(n, html, min, max)

    return lipsum


# filters of text, given a number or a list: its text, as `{{ n|center(9) }}` reads, instead
# of an AttributeError from inside Jinja
_TEXT_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate"})


def _capped(filter_func, size=None, text: bool = False):
    """The filter with its width arguments capped and, where it can grow a string, the result
    sized before it is built. functools.wraps keeps Jinja's pass_environment / pass_context
    marks, so the filters that take the environment still get it."""
    import functools

    passes = getattr(filter_func, "jinja_pass_arg", None) is not None  # set by @pass_environment

    @functools.wraps(filter_func)
    def wrapper(*all_args, **kwargs):
        first, (value, *args) = all_args[:int(passes)], all_args[int(passes):]
        if text and not isinstance(value, str):
            _refuse_text(value, f"`{filter_func.__name__}`")
            value = str(value)
        for a in list(args) + list(kwargs.values()):
            if isinstance(a, int) and not isinstance(a, bool) and abs(a) > MAX_WIDTH:
                raise TemplateLimit(f"a filter argument of {a} is over the limit of {MAX_WIDTH:,}")
        if size is not None:
            _refuse_long(size(value, *args, **kwargs), f"`{filter_func.__name__}`")
        return filter_func(*first, value, *args, **kwargs)

    return wrapper




def _format_filter(filter_func):
    """`|format`, which is `value % args` (or `% kwargs`): sized as `%` is."""
    def wrapper(value, *args, **kwargs):
        _refuse_long(_percent_size(str(value), kwargs if kwargs else args), "`format`")
        return filter_func(value, *args, **kwargs)

    return wrapper


def _check_format_spec(s: str) -> int:
    """How many replacement fields `s.format(...)` fills; TemplateLimit for a width past
    MAX_WIDTH or one taken from an argument (`{:>{}}`), which no estimate can bound."""
    try:
        parts = list(string.Formatter().parse(s))
    except ValueError:
        return 0  # str.format itself reports it
    fields = 0
    for _, name, spec, _ in parts:
        if name is None:
            continue
        fields += 1
        if "{" in (spec or ""):
            raise TemplateLimit("a format width taken from an argument is not allowed in a template")
        for number in re.findall(r"\d+", spec or ""):
            if int(number) > MAX_WIDTH:
                raise TemplateLimit(f"a format width over {MAX_WIDTH:,}")
    return fields


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
