"""Engines behind one narrow interface (engines.base.Engine), found by name in engines.registry.
Heavy imports happen inside the engine that needs them, never at import time of this package."""

from .base import Engine, EngineDead, GenerationRequest, GenerationResult
from .registry import get_engine

__all__ = ["Engine", "EngineDead", "GenerationRequest", "GenerationResult", "get_engine"]
