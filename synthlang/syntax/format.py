"""format_text: a spec in its one canonical layout (`synthc fmt`).

The layout is made from the parse tree with every token kept (so nothing is re-spelled) and the
comments the lexer would skip (so none is lost):
- a declaration per paragraph, one blank line between declarations;
- inside a block, one item per line, indented two spaces; a blank line the author left between
  items stays (one at most); the types of a schema's fields are aligned;
- one space around `~`, `=`, `|` and operators, after `:` and `,`, none inside brackets;
  `{ ... }` on one line for enums, quotas and noise rules (an enum too long for a line gets a
  member per line);
- strings (prompts included), regexes, numbers and names byte for byte as written;
- a comment stays where it was: on its own line above what follows it, or at the end of the
  line it ended. An item with a comment inside it (a quota over several lines) keeps its own
  lines as written.
Formatting never changes what a spec means: the same plan, byte for byte (tests/test_format.py)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from lark import Lark, Token, Tree

from .parser import _keyword_as_name, grammar_path

INDENT = "  "
LINE = 100                  # an enum wider than this gets a member per line
# rules whose children between `{` and `}` are items, one per line
BLOCKS = {"dataset_decl", "model_decl", "schema_decl", "generate_decl", "output_decl", "evaluate_decl"}
WORD_OPERATORS = {"and", "or", "not", "in", "contains", "matches"}
MARK = "\0"                # where a trailing comment starts, until the comments of a run of lines are aligned
SPACED = {"~", "=", "|", "==", "!=", "<=", ">=", "<", ">", "+", "*", "/", "%"}


@dataclass
class _Comment:
    line: int
    column: int
    text: str


@lru_cache(maxsize=1)
def _parser() -> tuple[Lark, list[Token]]:
    found: list[Token] = []
    lark = Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", lexer="contextual",
                propagate_positions=True, maybe_placeholders=False, keep_all_tokens=True,
                lexer_callbacks={"COMMENT": found.append})
    return lark, found


def format_text(text: str) -> str:
    """The canonical layout of `text`, which must parse (check it first: parse_source)."""
    lark, found = _parser()
    found.clear()
    tree = lark.parse(text, on_error=_keyword_as_name)
    comments = [_Comment(t.line or 0, t.column or 0, str(t).rstrip()) for t in found]
    found.clear()
    return _Layout(text, comments).module(tree)


def _align_comments(lines: list[str]) -> list[str]:
    """Trailing comments of consecutive lines start in one column, two spaces after the longest
    line's code."""
    out = list(lines)
    i = 0
    while i < len(out):
        if MARK not in out[i]:
            i += 1
            continue
        j = i
        while j < len(out) and MARK in out[j]:
            j += 1
        column = max(len(line.split(MARK)[0]) for line in out[i:j]) + 2
        for k in range(i, j):
            code, comment = out[k].split(MARK, 1)
            out[k] = code.ljust(column) + comment
        i = j
    return out


INDEX_OPEN = "INDEX_LSQB"   # the `[` of `items[0]`, written against its list (the other `[`s are not)


def _tokens(node: Tree[Token] | Token) -> list[Token]:
    if isinstance(node, Token):
        return [node]
    out = [t for child in node.children if child is not None for t in _tokens(child)]
    if node.data == "index":
        at = len(_tokens(node.children[0]))
        out[at] = out[at].update(type=INDEX_OPEN)
    return out


def _first_line(node: Tree[Token] | Token) -> int:
    return (node.line if isinstance(node, Token) else node.meta.line) or 0


def _last_line(node: Tree[Token] | Token) -> int:
    if isinstance(node, Token):
        return node.end_line or node.line or 0
    return node.meta.end_line or 0


def _is_word(tok: Token) -> bool:
    return str(tok)[:1].isalpha() or str(tok)[:1] == "_"


def inline(tokens: list[Token]) -> str:
    """Tokens on one line with the canonical spaces between them."""
    out: list[str] = []
    prev: Token | None = None
    unary = False               # the previous token was a unary minus or `not`
    for tok in tokens:
        value = str(tok)
        if prev is not None:
            out.append(_space(prev, tok, unary))
        unary = value in ("-", "not") and (prev is None or _takes_operand(prev))
        out.append(value)
        prev = tok
    return "".join(out)


def wrap(tokens: list[Token], width: int) -> list[str]:
    """The tokens inline, or, past `width` characters, broken after the commas of the widest
    bracketed list, each line filled as far as it goes and continued under the list's first
    item. Lines after the first are relative to the first's start."""
    text = inline(tokens)
    if len(text) <= width or "\n" in text:
        return [text]
    best: tuple[int, int] | None = None
    stack: list[int] = []
    for i, tok in enumerate(tokens):
        v = str(tok)
        if v in ("(", "[", "{"):
            stack.append(i)
        elif v in (")", "]", "}") and stack:
            start = stack.pop()
            inner = tokens[start + 1:i]
            level, commas = 0, 0
            for t in inner:
                level += str(t) in ("(", "[", "{")
                level -= str(t) in (")", "]", "}")
                commas += level == 0 and str(t) == ","
            if commas and (best is None or i - start > best[1] - best[0]):
                best = (start, i)
    if best is None:
        return [text]
    start, end = best
    args: list[list[Token]] = [[]]
    level = 0
    for t in tokens[start + 1:end]:
        v = str(t)
        if v == "," and level == 0:
            args.append([])
            continue
        level += v in ("(", "[", "{")
        level -= v in (")", "]", "}")
        args[-1].append(t)
    head = inline(tokens[:start + 1]) + (" " if str(tokens[start]) == "{" else "")
    tail = (" " if str(tokens[end]) == "}" else "") + inline(tokens[end:])
    column = len(head)
    lines, line = [], head + inline(args[0])
    for arg in args[1:]:
        piece = inline(arg)
        if len(line) + 2 + len(piece) + (len(tail) if arg is args[-1] else 1) <= width:
            line += ", " + piece
        else:
            lines.append(line + ",")
            line = " " * column + piece
    lines.append(line + tail)
    return lines


def _takes_operand(prev: Token) -> bool:
    """After `prev`, a `-` is a sign and not a subtraction."""
    p = str(prev)
    return p in SPACED or p in WORD_OPERATORS or p in ("(", "[", ",", "-", ":", "{", "check", "==")


def _space(prev: Token, tok: Token, unary: bool) -> str:
    p, t = str(prev), str(tok)
    if unary and p == "-":
        return ""
    if t in (",", ")", "]", ":", "?", ".", "..") or p in ("(", "[", ".", ".."):
        return ""
    if t == "(":
        return "" if (_is_word(prev) and p not in WORD_OPERATORS) or p in ("]", ")") else " "
    if t == "[":
        return "" if p == "list" or tok.type == INDEX_OPEN else " "
    return " "


class _Layout:
    def __init__(self, text: str, comments: list[_Comment]):
        self.text = text
        self.lines = text.split("\n")
        self.comments = comments
        self.used: set[int] = set()   # indexes of comments already written

    # comments ----------------------------------------------------------------------------------
    def _before(self, line: int) -> list[_Comment]:
        """Comments on their own lines before `line`, not yet written."""
        out = []
        for i, c in enumerate(self.comments):
            if i not in self.used and c.line < line and self._own_line(c):
                self.used.add(i)
                out.append(c)
        return out

    def _trailing(self, line: int) -> str:
        for i, c in enumerate(self.comments):
            if i not in self.used and c.line == line and not self._own_line(c):
                self.used.add(i)
                return MARK + c.text
        return ""

    def _own_line(self, c: _Comment) -> bool:
        return not self.lines[c.line - 1][:c.column - 1].strip()

    def _inside(self, node: Tree[Token]) -> bool:
        """A comment within the node's lines that is not at the end of its last line."""
        first, last = _first_line(node), _last_line(node)
        return any(first <= c.line <= last and not (c.line == last and not self._own_line(c))
                   for i, c in enumerate(self.comments) if i not in self.used)

    # the module and its declarations -----------------------------------------------------------
    def module(self, tree: Tree[Token]) -> str:
        out: list[str] = []
        last_end = 0
        for decl in [c for c in tree.children if isinstance(c, Tree)]:
            start = _first_line(decl)
            leading = self._before(start)
            if out:
                out.append("")
            out += self._comment_lines(leading, "", last_end, start)
            out += self.declaration(decl)
            last_end = _last_line(decl)
        rest = self._before(len(self.lines) + 1)
        if rest:
            if out:
                out.append("")
            out += self._comment_lines(rest, "", last_end, len(self.lines) + 1)
        return "\n".join(_align_comments(out)).rstrip("\n") + "\n" if out else ""

    def _comment_lines(self, comments: list[_Comment], indent: str, after: int, before: int) -> list[str]:
        """Own-line comments between lines `after` and `before`, a blank line kept where the
        author left one between two of them or before what follows."""
        out: list[str] = []
        prev = after
        for c in comments:
            if out and c.line > prev + 1:
                out.append("")
            out.append(indent + c.text)
            prev = c.line
        if out and before > prev + 1:
            out.append("")
        return out

    def declaration(self, decl: Tree[Token]) -> list[str]:
        if decl.data in BLOCKS:
            brace = next(t for t in _tokens(decl) if str(t) == "{")
            if self._in_header(decl, brace):
                return self._verbatim_declaration(decl)
            return self.block(decl)
        if decl.data == "enum_decl":
            return self.enum(decl)
        if self._inside(decl):
            return self._verbatim_declaration(decl)
        return [inline(_tokens(decl)) + self._trailing(_last_line(decl))]

    def _in_header(self, decl: Tree[Token], brace: Token) -> bool:
        """A comment between a block's first token and its `{`."""
        start = (decl.meta.line, decl.meta.column)
        end = (brace.line or 0, brace.column or 0)
        return any(start < (c.line, c.column) < end for i, c in enumerate(self.comments) if i not in self.used)

    def _verbatim_declaration(self, decl: Tree[Token]) -> list[str]:
        return self._as_written(decl, "")

    def _as_written(self, node: Tree[Token], indent: str) -> list[str]:
        """The node's own text (its lines after the first shifted as its first moved to `indent`)
        with the comments inside it, and the comment ending its last line."""
        first, last = _first_line(node), _last_line(node)
        for i, c in enumerate(self.comments):
            if first <= c.line <= last and (c.line < last or self._own_line(c) or
                                            c.column < (node.meta.end_column or 0)):
                self.used.add(i)
        own = self.text[node.meta.start_pos:node.meta.end_pos].split("\n")
        shift = (node.meta.column or 1) - 1
        out = [indent + own[0]]
        for line in own[1:]:
            lead = len(line) - len(line.lstrip())
            out.append(indent + line[min(lead, shift):] if line.strip() else "")
        out = [line.rstrip() for line in out]
        out[-1] += self._trailing(last)
        return out

    def block(self, decl: Tree[Token]) -> list[str]:
        children = [c for c in decl.children if c is not None]
        brace = next(i for i, c in enumerate(children) if isinstance(c, Token) and str(c) == "{")
        header = inline([t for c in children[:brace + 1] for t in _tokens(c)])
        items = [c for c in children[brace + 1:-1] if isinstance(c, Tree)]
        close = children[-1]
        assert isinstance(close, Token)
        header_line = _first_line(children[brace])
        close_line = _first_line(close)
        if not items and not any(header_line <= c.line <= close_line
                                 and (c.line < close_line or c.column < (close.column or 0))
                                 for i, c in enumerate(self.comments) if i not in self.used):
            return [header[:-1] + "{}" + self._trailing(close_line)]
        out = [header + self._trailing(header_line)]
        width = self._field_width(items) if decl.data == "schema_decl" else 0
        prev = header_line
        for n, item in enumerate(items):
            start = _first_line(item)
            leading = self._before(start)
            if n and (leading[0].line if leading else start) > prev + 1:
                out.append("")
            out += self._comment_lines(leading, INDENT, prev, start)
            out += self.item(item, width)
            prev = _last_line(item)
        tail = self._before(_first_line(close))
        if tail and tail[0].line > prev + 1:
            out.append("")
        out += self._comment_lines(tail, INDENT, prev, _first_line(close))
        while out and out[-1] == "":
            out.pop()
        out.append("}" + self._trailing(_first_line(close)))
        return out

    def _field_width(self, items: list[Tree[Token]]) -> int:
        names = [len(str(f.children[0])) + 1 for f in items if f.data == "field"]
        return max(names, default=0)

    def item(self, item: Tree[Token], width: int, lead: str = INDENT) -> list[str]:
        if self._inside(item):
            return self._as_written(item, lead)
        if item.data == "dialogue_item":
            return self.dialogue(item)
        trailing = self._trailing(_last_line(item))
        tokens = _tokens(item)
        if item.data == "field" and width:
            name = f"{tokens[0]}{tokens[1]}"
            lead, tokens = lead + name + " " * (width - len(name) + 1), tokens[2:]
        text = inline(tokens)
        if "\n" in text:  # a multi-line string keeps its own lines, byte for byte
            out = text.split("\n")
            out[0] = lead + out[0]
        else:
            lines = wrap(tokens, LINE - len(lead))
            out = [lead + lines[0]] + [" " * len(lead) + line for line in lines[1:]]
        out[-1] += trailing
        return out

    def dialogue(self, item: Tree[Token]) -> list[str]:
        """`dialogue F rounds A..B {`, each turn on its own lines one level in, then `}`."""
        children = [c for c in item.children if c is not None]
        turns = [c for c in children if isinstance(c, Tree) and c.data == "dialogue_turn"]
        head = [t for c in children if not (isinstance(c, Tree) and c.data == "dialogue_turn") for t in _tokens(c)]
        out = [INDENT + inline(head[:-1])]
        for turn in turns:
            out += self.item(turn, 0, INDENT * 2)
        out.append(INDENT + "}" + self._trailing(_last_line(item)))
        return out

    def enum(self, decl: Tree[Token]) -> list[str]:
        if self._inside(decl):
            return self._verbatim_declaration(decl)
        tokens = _tokens(decl)
        trailing = self._trailing(_last_line(decl))
        members = [str(t) for t in tokens[3:-1] if str(t) != ","]
        one = inline(tokens[:3]) + (" " + ", ".join(members) + " }" if members else "}")
        if len(one) <= LINE:
            return [one.replace("{ }", "{}") + trailing]
        return [inline(tokens[:3])] + [INDENT + m + "," for m in members] + ["}" + trailing]
