"""The conformance probe: proves at start-up that the engine really enforces constraints.

The probe asks for output that a model would essentially never write unconstrained (a code
of a fixed odd shape and an exact enum value). An engine that silently drops the constraint
fails it, and the run stops with a clear error instead of emitting junk. Which keywords an
engine enforces beyond that is the capability check's business (engines.capabilities)."""

from __future__ import annotations

import re

from ..values import MAX_STORED_DEPTH, load_json
from .base import ConstraintNotEnforced, Engine, EngineDead, GenerationRequest

PROBE_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "pattern": "^QX[0-9]{3}-ZZ$"},
        "pick": {"enum": ["zebra-17", "quasar-42"]},
    },
    "required": ["code", "pick"],
    "additionalProperties": False,
}


def check_probe_output(text: str | None) -> str | None:
    """None when the output obeys PROBE_SCHEMA, else what is wrong."""
    if text is None:
        return "no output"
    try:
        data = load_json(text, max_depth=MAX_STORED_DEPTH)
    except ValueError:
        return f"output is not JSON: {text[:80]!r}"
    if not isinstance(data, dict) or set(data) != {"code", "pick"}:
        return f"wrong keys: {text[:80]!r}"
    if not isinstance(data["code"], str) or not re.fullmatch(r"QX[0-9]{3}-ZZ", data["code"]):
        return f"`code` breaks its pattern: {data['code']!r}"
    if data["pick"] not in ("zebra-17", "quasar-42"):
        return f"`pick` is not one of its values: {data['pick']!r}"
    return None


def run_probe(engine: Engine, temperature: float = 0.8, top_p: float = 0.95) -> None:
    request = GenerationRequest(
        messages=({"role": "user", "content": "Say hello to me in a friendly way."},),
        json_schema=PROBE_SCHEMA, max_tokens=64, seed=1234, temperature=temperature, top_p=top_p)
    result = engine.generate([request])[0]
    if result.error is not None:
        raise EngineDead(f"engine `{engine.name}` failed its first request: {result.error}")
    problem = check_probe_output(result.text)
    if problem:
        raise ConstraintNotEnforced(
            f"engine `{engine.name}` does not enforce its decoding constraint ({problem}); "
            "refusing to generate unconstrained data")
