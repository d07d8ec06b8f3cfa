"""What one attempt produced, typed: a Candidate (an attempt's outcome, made where the engine
runs) and a JournalEntry (what the driver decided, one line of the journal).

JournalEntry serialises to the journal's compact keys, so journals written by any version
resume: {"b": block, "c": cell, "a": attempt, "tok": tokens, "t": seconds, "ok": ..., then
"rec" and "dd" when accepted, or "why" (with "err" or "score") when rejected, and "lab" where
the label check read the record: label field -> {"want", "read", "margin"[, "model"]}}.

A BatchEntry is a journal line of its own, {"kind": "batch", "batch": name, "model", "state",
then "handle", "n", "b" and "attempts" where known}: a batch file sent for a wave of attempts
(runtime/batch_engine.py), so a resume collects a batch still out instead of sending it again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# the reason of a dry run's candidate whose request the cache does not hold (never journaled)
PENDING = "pending"


@dataclass(frozen=True)
class Attempt:
    """Which attempt: a block, a quota cell of it, and the attempt's number in that cell."""

    block: str
    cell: int
    attempt: int


@dataclass(frozen=True)
class Candidate:
    """One attempt after sampling, generation, validation, derived fields, checks and judge.
    Depends on nothing but its own attempt, so any worker can make it."""

    at: Attempt
    ok: bool
    why: str | None = None                  # the rejection reason when not ok
    err: str | None = None                  # what went wrong: engine errors, invalid output, the implausible value
    score: int | None = None                # the judge's score, when it rejected the record
    tokens: int | None = None               # None when no request was made
    seconds: float | None = None
    record: dict[str, Any] = field(default_factory=dict)
    spans: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    seed: int = 0
    judge_score: int | None = None
    trimmed: tuple[str, ...] = ()           # free text cut back to a sentence or word end
    sent: int = 0                           # engine requests this attempt sent (record and judge)
    reused: int = 0                         # ... and those served by the result cache
    meta: dict[str, Any] = field(default_factory=dict)  # more provenance for _meta (candidates' scores)
    step: int | None = None                 # a record written in steps: the step that rejected it
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)  # how the label check read it
    span_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)  # spans not one per mentioned value

    def as_rejection(self) -> JournalEntry:
        assert not self.ok
        return JournalEntry(self.at, ok=False, why=self.why, err=self.err, score=self.score, tokens=self.tokens,
                            seconds=self.seconds, step=self.step, labels=self.labels or None)


@dataclass(frozen=True)
class JournalEntry:
    at: Attempt
    ok: bool
    why: str | None = None
    err: str | None = None
    score: int | None = None
    tokens: int | None = None
    seconds: float | None = None
    record: dict[str, Any] | None = None    # the accepted record with its _meta
    dedup_values: dict[str, Any] | None = None  # the dedup fields before noise
    step: int | None = None                 # the step that rejected a record written in steps
    labels: dict[str, dict[str, Any]] | None = None  # the label check's reading

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"b": self.at.block, "c": self.at.cell, "a": self.at.attempt}
        if self.tokens is not None:
            out["tok"] = self.tokens
        if self.seconds is not None:
            out["t"] = self.seconds
        out["ok"] = self.ok
        if self.ok:
            out["rec"] = self.record
            out["dd"] = self.dedup_values or {}
        else:
            out["why"] = self.why
            if self.err is not None:
                out["err"] = self.err
            if self.score is not None:
                out["score"] = self.score
            if self.step is not None:
                out["step"] = self.step
        if self.labels:
            out["lab"] = self.labels
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> JournalEntry:
        return cls(Attempt(d["b"], d["c"], d["a"]), ok=d["ok"], why=d.get("why"), err=d.get("err"),
                   score=d.get("score"), tokens=d.get("tok"), seconds=d.get("t"), record=d.get("rec"),
                   dedup_values=d.get("dd"), step=d.get("step"), labels=d.get("lab"))


BATCH_STATES = ("written", "out", "collected", "failed")


# the keys of a batch line, as BatchEntry.to_json writes them (journal.py checks lines against it)
BATCH_KEYS = frozenset({"kind", "batch", "model", "state", "handle", "n", "b", "attempts"})


@dataclass(frozen=True)
class BatchEntry:
    """How a batch file stands: `written` (in .synth/batches, maybe handed over), `out` (at its
    runner, `handle` to poll it by), `collected` or `failed`. Its first entry names the wave's
    attempts it holds: (cell, first attempt, how many) of block `block`."""

    name: str
    model: str
    state: str
    handle: str | None = None
    requests: int = 0
    block: str | None = None
    attempts: tuple[tuple[int, int, int], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "batch", "batch": self.name, "model": self.model, "state": self.state}
        if self.handle is not None:
            out["handle"] = self.handle
        if self.requests:
            out["n"] = self.requests
        if self.block is not None:
            out["b"] = self.block
            out["attempts"] = [list(a) for a in self.attempts]
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BatchEntry:
        return cls(d["batch"], d["model"], d["state"], handle=d.get("handle"), requests=d.get("n", 0),
                   block=d.get("b"), attempts=tuple((a[0], a[1], a[2]) for a in d.get("attempts", ())))
