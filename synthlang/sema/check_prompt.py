"""check_prompt: a prompt template parsed in Jinja's sandbox, its names checked statically."""

from __future__ import annotations

from .. import ir
from ..diagnostics import did_you_mean
from ..source import Span
from ..syntax import ast
from ..templates import MAX_BLOCKS, MAX_BRACKETS, MAX_OPERATORS, template_env, template_problem
from .context import Context

# What to do about a template past one of its bounds, keyed by the first word of the reason.
_TEMPLATE_HELP = {
    "blocks": f"a template nests at most {MAX_BLOCKS} blocks; move the inner part into a `macro`",
    "brackets": f"a tag nests at most {MAX_BRACKETS} brackets",
    "more": f"a tag holds at most {MAX_OPERATORS} operators; split it with `{{% set %}}`",
    "`include`": "write the text into the prompt, or share it with a `macro` in the same template",
    "`import`": "define the macro in the same template",
    "`extends`": "write the whole template in the prompt",
    "`from`": "define the macro in the same template",
}


def default_prompt(schema: ir.Schema, known: list[str], has_examples: bool) -> str:
    lines = [f"Write one realistic {schema.name} record."]
    for name in known:
        lines.append(f"{name}: {{{{ {name} }}}}")
    if has_examples:
        lines += ["{% for ex in examples %}", "Example: {{ ex | tojson }}", "{% endfor %}"]
    return "\n".join(lines)


def default_grow_prompt(schema: ir.Schema, rewrite: tuple[str, ...], known: list[str], has_examples: bool) -> str:
    """A block grown from real rows: the row, and what to write anew."""
    fields = ", ".join(rewrite)
    lines = [f"Here is a real {schema.name} record:", "{{ seed | tojson }}",
             f"Write a new {fields} for a record like it: the same kind and meaning, in your own words."]
    for name in known:
        lines.append(f"{name}: {{{{ {name} }}}}")
    if has_examples:
        lines += ["{% for ex in examples %}", "Another real record: {{ ex | tojson }}", "{% endfor %}"]
    return "\n".join(lines)


def _span_for_line(prompt: ast.Str, lineno: int) -> Span:
    src = prompt.span.source
    line = prompt.first_line + max(lineno, 1) - 1
    start = src.offset_of(line, 1)
    text = src.line_text(line)
    stripped = len(text) - len(text.lstrip())
    start += stripped
    end = start + len(text.strip())
    if start < prompt.span.start or start >= prompt.span.end:
        return prompt.span
    return src.span(start, end)


def _find_name_span(prompt: ast.Str, name: str) -> Span:
    """The first place the name appears inside the prompt text, for a caret under it."""
    import re

    src = prompt.span.source
    body = src.text[prompt.span.start:prompt.span.end]
    word = re.compile(r"(?<![A-Za-z0-9_.])" + re.escape(name) + r"(?![A-Za-z0-9_])")
    for tag in re.finditer(r"\{\{.*?\}\}|\{%.*?%\}", body, re.S):   # where the template names it
        m = word.search(body, tag.start(), tag.end())
        if m:
            return src.span(prompt.span.start + m.start(), prompt.span.start + m.end())
    m = word.search(body)
    if not m:
        return prompt.span
    return src.span(prompt.span.start + m.start(), prompt.span.start + m.end())


def check_prompt(ctx: Context, prompt: ast.Str, schema: ir.Schema, known: set[str], has_examples: bool,
                 where: str = "prompt", unavailable: dict[str, str] | None = None) -> bool:
    """unavailable: fields a step's template cannot see yet, with why (`step 3 writes it`)."""
    from jinja2 import meta

    problem = template_problem(prompt.value)
    if problem is not None:
        message, lineno = problem
        ctx.sink.error("E0501", f"{where} template: {message}", _span_for_line(prompt, lineno),
                       help=_TEMPLATE_HELP.get(message.split(" ")[0]))
        return False
    parsed = template_env().parse(prompt.value)
    ok = True
    allowed = set(known) | {"dataset"} | ({"examples"} if has_examples else set())
    for name in sorted(meta.find_undeclared_variables(parsed)):
        if name in allowed:
            continue
        ok = False
        span = _find_name_span(prompt, name)
        field = schema.field(name)
        if unavailable and name in unavailable:
            ctx.sink.error("E0502", f"the {where} template uses `{name}`: {unavailable[name]}", span,
                           help="a step's template sees the fields of earlier steps only")
        elif name == "examples":
            ctx.sink.error("E0502", f"the {where} uses `examples` but the block has no `examples` line", span,
                           help="add e.g. `examples 3 from my_seeds`")
        elif field is not None and field.source == "model":
            ctx.sink.error("E0502", f"the {where} uses `{name}`, which the model writes: it is not known "
                           "before generation", span,
                           help=f"sample it (`{name}: ... ~ ...`) or put it under a quota to show it to the prompt")
        elif field is not None and field.source == "derived":
            ctx.sink.error("E0502", f"the {where} uses `{name}`, which is derived after generation", span)
        else:
            ctx.sink.error("E0502", f"undefined name `{name}` in the {where}", span,
                           help=did_you_mean(name, allowed) or f"the {where} can use: {', '.join(sorted(allowed))}")
    return ok
