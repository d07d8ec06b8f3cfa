"""IR -> Plan: the versioned, hashed, deterministic artifact that `synthc run` executes."""

from .model import Plan

__all__ = ["Plan"]
