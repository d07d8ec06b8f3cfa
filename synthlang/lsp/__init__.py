"""`synthc lsp`: the language server. It runs the compiler itself on what the editor holds:
one parser, one checker, one set of diagnostics with `synthc check`."""
