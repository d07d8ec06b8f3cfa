"""synthlang: LLM-generated training data defined as code."""

__version__ = "0.1.0"
