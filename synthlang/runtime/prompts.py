"""Rendering prompts in Jinja's sandbox, plus the short format note that tells a small model
which keys it is writing (the constraint enforces them either way)."""

from __future__ import annotations

import json

from ..plan.model import Block
from ..templates import render

SYSTEM = "You write realistic, varied data for a training set. Answer only with the requested JSON."


def _describe(schema: dict) -> str:
    if "anyOf" in schema:
        return _describe(schema["anyOf"][0]) + " or null"
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        lo, hi = schema.get("minLength", 0), schema.get("maxLength")
        return f"text, {lo}-{hi} characters" if hi else "text"
    if kind == "integer":
        return f"integer {schema.get('minimum')}..{schema.get('maximum')}"
    if kind == "number":
        return "number"
    if kind == "boolean":
        return "true or false"
    if kind == "array":
        return f"list of up to {schema.get('maxItems')} items ({_describe(schema['items'])})"
    if kind == "object":
        return "object with " + ", ".join(schema.get("properties", {}))
    return "value"


def format_note(json_schema: dict) -> str:
    fields = "; ".join(f"{k}: {_describe(v)}" for k, v in json_schema.get("properties", {}).items())
    return f"Reply with one JSON object with the keys {fields}."


def render_prompt(block: Block, context: dict) -> str:
    return render(block.prompt, context).strip()


def messages_for(block: Block, context: dict, json_schema: dict) -> tuple[dict, ...]:
    # the format note is the same for every record of a block: in the system message it is
    # part of the prefix an engine evaluates once and reuses
    system = SYSTEM + " " + format_note(json_schema)
    return ({"role": "system", "content": system}, {"role": "user", "content": render_prompt(block, context)})


def judge_messages(rubric: str, record: dict) -> tuple[dict, ...]:
    shown = json.dumps(record, ensure_ascii=False, indent=1)
    return ({"role": "system", "content": "You are a strict, fair judge of data quality."},
            {"role": "user", "content": f"{rubric.strip()}\n\nRecord:\n{shown}\n\n"
                                        "Reply with JSON {\"score\": N}, N from 1 (bad) to 5 (excellent)."})
