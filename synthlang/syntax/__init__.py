"""Text -> AST: the Lark parser and the AST it builds, with a span on every node."""

from .parser import parse_source
from .size import MAX_SPEC_TOKENS, count_tokens

__all__ = ["MAX_SPEC_TOKENS", "count_tokens", "parse_source"]
