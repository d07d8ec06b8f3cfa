"""Text -> AST: the Lark parser and the AST it builds, with a span on every node."""

from .parser import parse_source

__all__ = ["parse_source"]
