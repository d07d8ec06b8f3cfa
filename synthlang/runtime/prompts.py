"""Rendering prompts in Jinja's sandbox, plus the short format note that tells the model how
long each text is (the constraint enforces keys, types and bounds either way)."""

from __future__ import annotations

import json

from ..plan.model import Block
from ..templates import render

SYSTEM = "You write realistic, varied data for a training set. Answer only with the requested JSON."


def _words(schema: dict) -> str:
    """A string's length bounds as words (about 5 to 7 characters a word, erring short so that
    text ends before its cap)."""
    lo, hi = schema.get("minLength", 0), schema.get("maxLength", 0)
    most = max(2, hi // 7)
    return f"{max(1, -(-lo // 5))} to {most} words" if lo >= 10 else f"at most {most} words"


def _budgets(schema: dict, prefix: str = "") -> list[str]:
    parts = []
    for key, sub in schema.get("properties", {}).items():
        sub = next((s for s in sub.get("anyOf", []) if s.get("type") != "null"), sub)
        label = prefix + key.replace("_", " ")
        kind = sub.get("type")
        if kind == "string" and "enum" not in sub and "pattern" not in sub and sub.get("maxLength"):
            parts.append(f"the {label} in {_words(sub)}")
        elif kind == "array":
            items = sub.get("items", {})
            if items.get("type") == "string" and "enum" not in items and "pattern" not in items \
                    and items.get("maxLength"):
                parts.append(f"each of the {label} in {_words(items)}")
            elif items.get("type") == "object":
                parts += _budgets(items, label + " ")
        elif kind == "object":
            parts += _budgets(sub, label + " ")
    return parts


def format_note(json_schema: dict) -> str:
    """The length of each free text in words, and nothing else: the constraint carries the keys
    and types. Measured on the embedded model with bench/bench_quality.py --notes (100 tickets
    each, filters off): listing keys with their types ("body: text, 40-300 characters") had 7%
    of records repeat the note; this note, like none at all, 1%."""
    parts = _budgets(json_schema)
    return ("Write " + ", ".join(parts) + ", in whole sentences.") if parts else ""


def render_prompt(block: Block, context: dict) -> str:
    return render(block.prompt, context).strip()


def messages_for(block: Block, context: dict, json_schema: dict) -> tuple[dict, ...]:
    # the format note is the same for every record of a block: in the system message it is
    # part of the prefix an engine evaluates once and reuses
    system = (SYSTEM + " " + format_note(json_schema)).strip()
    return ({"role": "system", "content": system}, {"role": "user", "content": render_prompt(block, context)})


def label_messages(text: str, values: list[str]) -> tuple[dict, ...]:
    """`label check by MODEL`: the model names the label of a text it is shown blind."""
    return ({"role": "system", "content": "You sort texts by what they are about."},
            {"role": "user", "content": f"Text:\n{text}\n\nWhich one of these labels fits the text best: "
                                        f"{', '.join(values)}?"})


def judge_messages(rubric: str, record: dict) -> tuple[dict, ...]:
    shown = json.dumps(record, ensure_ascii=False, indent=1)
    return ({"role": "system", "content": "You are a strict, fair judge of data quality."},
            {"role": "user", "content": f"{rubric.strip()}\n\nRecord:\n{shown}\n\n"
                                        "Reply with JSON {\"score\": N}, N from 1 (bad) to 5 (excellent)."})
