"""Semantic analysis: AST -> IR, every problem reported at once through one sink."""
