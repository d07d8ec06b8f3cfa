"""What a syntax error most likely means, said as the fix: a block left open, a misspelt keyword,
an operator from another language, a condition on the wrong line.

Each function takes what the parser had when it stopped (the token, the terminals it expected,
the tokens and subtrees it had shifted but not yet reduced) and returns a help line (and, for
an unclosed block, a note at its `{`), or None when the error does not look like that mistake.
Wrong guesses cost more than none: each one fires only on the pattern it is named for."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

from lark import Lark, Token, Tree

from ..diagnostics import Note, did_you_mean
from ..source import SourceFile

# a line that starts a top-level declaration: `schema T`, `output "out"`, `import "x"`. A field
# may be called `model` or `output` (`model: str`), which the space and name after it rule out.
_DECL_LINE = re.compile(r"^[ \t]*(?:import|dataset|model|enum|schema|seeds|generate|output|evaluate)[ \t]+[\"A-Za-z_]",
                        re.M)
_WORD = re.compile(r"[a-z_]+")
_NEAR_NUMBER = re.compile(r"\bnear\s+(-?[0-9][0-9_]*(?:\.[0-9]+)?)\s*$")


def keywords(parser: Lark, terminals: Collection[str] | None = None) -> dict[str, str]:
    """Terminal name -> keyword (`QUOTA` -> `quota`), of the grammar or of the terminals given."""
    found = {}
    for t in parser.terminals:
        if t.pattern.type == "str" and _WORD.fullmatch(t.pattern.value) and (terminals is None or t.name in terminals):
            found[t.name] = t.pattern.value
    return found


def unclosed_brace(source: SourceFile, stack: Sequence[Any], error_at: int, at_end: bool) -> tuple[Note, str] | None:
    """(a note at the `{`, a help line) when the innermost `{` still open is most likely missing
    its `}`: the file ended inside it, or a later line starts a new top-level declaration (the
    parser read `schema T {` as more of the block it was in)."""
    opener = next((v for v in reversed(stack) if isinstance(v, Token) and v.type == "LBRACE"), None)
    if opener is None or opener.start_pos is None or opener.end_pos is None:
        return None
    text = source.text
    what = _block_head(text, stack, opener)
    line, _ = source.line_col(opener.start_pos)
    note = Note(source.span(opener.start_pos, opener.end_pos), f"this `{{` of {what} is never closed")
    if at_end:
        return note, f"close {what} (line {line}) with `}}`"
    end_of_error_line = text.find("\n", error_at)
    decl = _DECL_LINE.search(text, opener.end_pos, len(text) if end_of_error_line < 0 else end_of_error_line)
    if decl is None:
        return None
    next_line, _ = source.line_col(decl.start())
    if next_line <= line:
        return None
    return note, f"close {what} (line {line}) with `}}` before line {next_line}"


def _block_head(text: str, stack: Sequence[Any], opener: Token) -> str:
    """`schema S`, `generate T as x`, `quota n`: the source from the block's keyword to its `{`."""
    i = next(i for i in range(len(stack) - 1, -1, -1) if stack[i] is opener)
    for v in reversed(stack[max(0, i - 4):i]):
        if isinstance(v, Token) and v.type != "NAME" and _WORD.fullmatch(str(v)) and v.start_pos is not None:
            head = " ".join(text[v.start_pos:opener.start_pos].split())
            return f"`{head}`" if len(head) <= 40 else f"`{v!s} ...`"
    return "the block"


def keyword_suggestion(parser: Lark, word: str, expected: Collection[str]) -> str | None:
    """`did you mean `quota`?` for a word that is close to a keyword the parser could take here,
    and is no keyword itself (a keyword in the wrong place is not a typo)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", word) or word in keywords(parser).values():
        return None
    return did_you_mean(word, keywords(parser, expected).values())


def operator_hint(source: SourceFile, tok: Token, expected: Collection[str]) -> str | None:
    """The fix for an operator written as another language writes it: `=` for `==`, `||` for
    `or`, a percentage where a similarity threshold is a fraction."""
    text = str(tok)
    if text == "=" and "COMP_OP" in expected:
        return "compare with `==`; a single `=` gives a field its derivation (`total: int = a + b`)"
    if text == "|" and tok.start_pos is not None and source.text.startswith("||", tok.start_pos):
        return "write `or` for `||`"
    if text == "%" and tok.start_pos is not None:
        near = _NEAR_NUMBER.search(source.text, 0, tok.start_pos)
        if near:
            shown = f"{float(near.group(1).replace('_', '')) / 100:g}"
            return f"a similarity threshold is a fraction in (0, 1], not a percentage: write `near {shown}`"
    return None


def character_hint(text: str, pos: int) -> str | None:
    """The fix for `&&`, `&` and `!`, which no token starts with."""
    if text.startswith("&&", pos):
        return "write `and` for `&&`"
    if text.startswith("&", pos):
        return "write `and` for `&`"
    if text.startswith("!", pos):
        return "write `not` for `!` (`!=` is the only operator with a `!`)"
    return None


def misplaced_when(source: SourceFile, stack: Sequence[Any]) -> tuple[Token, str] | None:
    """(the `when`, a help line) for `x: str? when cond` in a schema: a condition on a field's
    own line, which the parser took for the name of the next field. Conditions belong to the
    `step` that writes the field."""
    if len(stack) < 2 or not isinstance(stack[-1], Token) or stack[-1].type != "NAME" or str(stack[-1]) != "when":
        return None
    when = stack[-1]
    fields = stack[-2]
    if not isinstance(fields, Tree) or not fields.children or not isinstance(fields.children[-1], Tree) \
            or fields.children[-1].data != "field" or when.start_pos is None:
        return None
    text = source.text
    line_start = text.rfind("\n", 0, when.start_pos) + 1
    if not text[line_start:when.start_pos].strip():
        return None  # `when` starts its own line: a field really named `when`
    field_tree = fields.children[-1]
    field = str(field_tree.children[0])
    optional = field_tree.children[2] is not None
    line_end = text.find("\n", when.end_pos or when.start_pos)
    condition = " ".join(text[when.end_pos:line_end if line_end >= 0 else len(text)].split()) or "..."
    then = "" if optional else f" (and the field is then optional: `{field}: ...?`)"
    return when, (f"a condition goes on the `step` line that writes the field, in the generate block: "
                  f"`step {field} when {condition} \"\"\"...\"\"\"`{then}")


def interactive_stack(exc: Any) -> Sequence[Any]:
    """The tokens and subtrees the parser had shifted when it stopped (empty when unknown)."""
    parser = getattr(exc, "interactive_parser", None)
    state = getattr(parser, "parser_state", None)
    return list(getattr(state, "value_stack", None) or ())
