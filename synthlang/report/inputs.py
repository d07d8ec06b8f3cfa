"""The files of a finished run that the report reads back: plan.json, manifest.json and, after
`synthc eval`, eval.json. Each is read with a size limit and the bounded JSON reader, and checked
for the shape the card and the page use, so a damaged or hand-edited file is one line naming it
and what is wrong (an EvalInputError), never a crash halfway through the report."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..evaluate.data import EvalInputError
from ..files import read_bytes
from ..plan.model import Plan
from ..plan.validate_plan import validate_plan
from ..values import MAX_STORED_BYTES, MAX_STORED_DEPTH, load_json

# a shape check: what is wrong with a value at a path ("blocks.T.cells[0]"), or None
Shape = Callable[[Any, str], "str | None"]


def read_plan(path: Path) -> Plan:
    """The run's plan, as `synthc run` checks a plan file: one the compiler could have written."""
    try:
        plan = Plan.from_json(_read_text(path))
    except json.JSONDecodeError as exc:
        raise EvalInputError(f"{path} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:
        raise EvalInputError(f"{path} is not a valid plan: {_first_line(exc)}") from None
    problems = validate_plan(plan)
    if problems:
        raise EvalInputError(f"{path} is not a plan this synthc runs: " + "; ".join(problems[:3]))
    return plan


def read_manifest(path: Path) -> dict[str, Any]:
    """The run's manifest.json, with every value the report uses of the type a run writes."""
    return _read_checked(path, MANIFEST, "a run's manifest")


def read_evaluation(path: Path) -> dict[str, Any]:
    """eval.json as `synthc eval` writes it."""
    return _read_checked(path, EVALUATION, "an evaluation")


def _read_checked(path: Path, shape: Shape, what: str) -> dict[str, Any]:
    try:
        data = load_json(_read_text(path), max_depth=MAX_STORED_DEPTH, nan=True)
    except json.JSONDecodeError as exc:
        raise EvalInputError(f"{path} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:
        raise EvalInputError(f"{path} is not {what}: {_first_line(exc)}") from None
    problem = shape(data, "")
    if problem is not None:
        raise EvalInputError(f"{path} is not {what}: {problem}")
    return data


def _read_text(path: Path) -> str:
    """The file's text; EvalInputError when it cannot be read, is too large or is not UTF-8."""
    try:
        return read_bytes(path, MAX_STORED_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise EvalInputError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise EvalInputError(f"{path} cannot be read: {exc.strerror or exc}") from None


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


# ---- shapes ---------------------------------------------------------------------------------

def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _where(path: str) -> str:
    return f"`{path}`" if path else "the file"


def _kind(test: Callable[[Any], bool], name: str) -> Shape:
    def check(value: Any, path: str) -> str | None:
        return None if test(value) else f"{_where(path)} is {_shown(value)}, not {name}"
    return check


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


NUMBER = _kind(_is_number, "a number")
COUNT = _kind(lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a count")
TEXT = _kind(lambda v: isinstance(v, str), "text")
SCALAR = _kind(lambda v: v is None or isinstance(v, (str, int, float, bool)), "a single value")


def optional(shape: Shape) -> Shape:
    """`shape`, or null."""
    return lambda value, path: None if value is None else shape(value, path)


def array(items: Shape, length: int | None = None) -> Shape:
    def check(value: Any, path: str) -> str | None:
        if not isinstance(value, list) or (length is not None and len(value) != length):
            return f"{_where(path)} is {_shown(value)}, not a list" + (f" of {length}" if length is not None else "")
        return next((p for i, v in enumerate(value) if (p := items(v, f"{path}[{i}]")) is not None), None)
    return check


def mapping(values: Shape) -> Shape:
    """An object with any keys, each holding `values`."""
    def check(value: Any, path: str) -> str | None:
        if not isinstance(value, dict):
            return f"{_where(path)} is {_shown(value)}, not an object"
        return next((p for k, v in value.items() if (p := values(v, _join(path, k))) is not None), None)
    return check


def record(fields: dict[str, Shape], required: tuple[str, ...] = ()) -> Shape:
    """An object whose named keys hold their shapes (other keys are let be); `required` ones
    must be there."""
    def check(value: Any, path: str) -> str | None:
        if not isinstance(value, dict):
            return f"{_where(path)} is {_shown(value)}, not an object"
        missing = next((k for k in required if k not in value), None)
        if missing is not None:
            return f"{_where(path)} has no `{missing}`" if path else f"there is no `{missing}`"
        return next((p for k, shape in fields.items()
                     if k in value and (p := shape(value[k], _join(path, k))) is not None), None)
    return check


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else str(key)


CELL = record({"key": mapping(SCALAR), "attempts": COUNT, "accepted": COUNT}, required=("key",))
BLOCK = record({
    "attempts": optional(COUNT), "accepted": optional(COUNT), "acceptance_rate": optional(NUMBER),
    "rejections": mapping(COUNT), "rejection_rates": mapping(NUMBER), "trimmed": COUNT,
    "requests_sent": COUNT, "requests_reused": COUNT, "cells": array(CELL),
    "origins": mapping(COUNT), "label_check": mapping(mapping(mapping(COUNT))),
})
MODEL = record({"packages": optional(mapping(SCALAR))} | {
    k: SCALAR for k in ("engine", "backend", "model_sha256", "model_folder_sha256", "served_model", "model_name")})
MANIFEST = record({
    "blocks": mapping(BLOCK), "models": optional(mapping(MODEL)), "files": array(TEXT),
    "complete": SCALAR, "format": SCALAR, "wall_seconds": SCALAR, "records_per_second": SCALAR,
}, required=("blocks",))

SCORED = record({"value": NUMBER, "ci95": array(NUMBER, length=2)}, required=("value", "ci95"))
_SET = {"classification": record({"n_train": COUNT, "accuracy": SCORED, "macro_f1": SCORED,
                                  "per_class_f1": mapping(SCORED)},
                                 required=("n_train", "accuracy", "macro_f1", "per_class_f1")),
        "spans": record({"n_train": COUNT, "precision": SCORED, "recall": SCORED, "f1": SCORED},
                        required=("n_train", "precision", "recall", "f1"))}
_COMMON = {"label": SCALAR, "test": SCALAR, "n_test": COUNT, "verdicts": mapping(record({"says": TEXT}, ("says",)))}
_EVALUATION_OF = {
    "classification": record({**_COMMON, "sets": mapping(_SET["classification"]), "classes": array(TEXT),
                              "sweep": array(record({"real_share_target": NUMBER, "macro_f1": SCORED},
                                                    required=("real_share_target", "macro_f1")))},
                             required=("label", "test", "n_test", "verdicts", "sets", "classes", "sweep")),
    "spans": record({**_COMMON, "sets": mapping(_SET["spans"])},
                    required=("label", "test", "n_test", "verdicts", "sets")),
}


def _one_evaluation(value: Any, path: str) -> str | None:
    """An evaluation of either kind, and every class it names scored in every set."""
    kind = value.get("kind") if isinstance(value, dict) else None
    if kind not in _EVALUATION_OF:
        return f"`{_join(path, 'kind')}` is {_shown(kind)}, not \"classification\" or \"spans\""
    problem = _EVALUATION_OF[kind](value, path)
    if problem is None and kind == "classification":
        for name, scores in value["sets"].items():
            missing = next((c for c in value["classes"] if c not in scores["per_class_f1"]), None)
            if missing is not None:
                return f"`{path}.sets.{name}.per_class_f1` has no score for class {_shown(missing)}"
    return problem


EVALUATION = record({"evaluations": array(_one_evaluation)}, required=("evaluations",))
