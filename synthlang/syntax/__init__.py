"""Text -> AST: the token budget (size.py), the Lark parser (parser.py) and the AST it builds
(ast.py), with a span on every node. Import from the modules; this package imports nothing, so
`from . import ast` inside it makes no cycle."""
