"""Where attempts are evaluated. The driver hands a Pool the attempt numbers of one or more
quota cells and gets Candidates back in order; `LocalPool` runs them in this process, `distributed.RayPool` on Ray
workers. Both report the engine time they spent, so the manifest reads the same either way."""

from __future__ import annotations

from typing import Protocol

from ..plan.model import Plan
from .attempts import Attempts
from .entries import Candidate
from .options import RunOptions


class Pool(Protocol):
    def run(self, block_id: str, work: list[tuple[int, list[int]]]) -> list[list[Candidate]]:
        """For each (cell, attempt numbers), one candidate per attempt, in order."""

    def in_flight(self, model_name: str) -> int:
        """Attempts worth having in flight at once to keep the pool's engines busy."""

    def identity(self, model_name: str) -> dict:
        """What besides a request decides what the model's engine writes (engines/identity.py)."""

    def engine_seconds(self) -> float: ...

    def startup_seconds(self) -> float: ...

    def close(self) -> None: ...


class LocalPool:
    """Attempts evaluated in this process, one engine call at a time."""

    def __init__(self, plan: Plan, options: RunOptions):
        self.attempts = Attempts(plan, options)

    def run(self, block_id: str, work: list[tuple[int, list[int]]]) -> list[list[Candidate]]:
        return self.attempts.run(block_id, work)

    def in_flight(self, model_name: str) -> int:
        return self.attempts.in_flight(model_name)

    def identity(self, model_name: str) -> dict:
        return self.attempts.identity(model_name)

    def engine_seconds(self) -> float:
        return self.attempts.engine_seconds

    def startup_seconds(self) -> float:
        return self.attempts.startup_seconds

    def close(self) -> None:
        self.attempts.close()
