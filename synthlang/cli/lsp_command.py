"""`synthc lsp`: the language server, over stdio, for editors (synthlang/lsp/)."""

from __future__ import annotations


def cmd_lsp(args) -> int:
    from ..lsp.server import main
    return main()
