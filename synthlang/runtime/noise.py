"""Noise: surface variation real data has (typos, case, punctuation, whitespace, OCR
confusions, date formats, dropped optional values).

Each rule fires on a record with its rate as probability, drawn from the record's own seed.
Text inside mention spans is never touched, so the spans stay correct; a rule whose result
would break the field's type is not applied. Every applied rule is recorded."""

from __future__ import annotations

import random
import string
from datetime import date

from .. import ir
from ..number_formats import parse_format
from ..values import ValueError_, check_value

_KEYBOARD_NEIGHBOURS = {
    "a": "qsz", "b": "vgn", "c": "xdv", "d": "sfe", "e": "wrd", "f": "dgr", "g": "fht", "h": "gjy",
    "i": "uok", "j": "hku", "k": "jli", "l": "kop", "m": "nj", "n": "bmh", "o": "ipl", "p": "ol",
    "q": "wa", "r": "etf", "s": "adw", "t": "ryg", "u": "yji", "v": "cbf", "w": "qes", "x": "zcs",
    "y": "tuh", "z": "xa",
}
_OCR = [("0", "O"), ("O", "0"), ("1", "l"), ("l", "1"), ("5", "S"), ("S", "5"), ("rn", "m"),
        ("m", "rn"), ("I", "l"), ("8", "B"), ("B", "8"), ("e", "c")]


def _typo(text: str, rng: random.Random) -> str:
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if not letters:
        return text
    for _ in range(rng.randint(1, 2)):
        letters = [i for i, ch in enumerate(text) if ch.isalpha()]
        if not letters:
            break
        i = rng.choice(letters)
        kind = rng.choice(("swap", "drop", "double", "neighbour"))
        if kind == "swap" and i + 1 < len(text):
            text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
        elif kind == "drop":
            text = text[:i] + text[i + 1:]
        elif kind == "double":
            text = text[:i] + text[i] + text[i:]
        else:
            near = _KEYBOARD_NEIGHBOURS.get(text[i].lower())
            if near:
                ch = rng.choice(near)
                text = text[:i] + (ch.upper() if text[i].isupper() else ch) + text[i + 1:]
    return text


def _whitespace(text: str, rng: random.Random) -> str:
    spaces = [i for i, ch in enumerate(text) if ch == " "]
    kind = rng.choice(("double", "trailing", "leading") if spaces else ("trailing", "leading"))
    if kind == "double":
        i = rng.choice(spaces)
        return text[:i] + "  " + text[i + 1:]
    return text + " " if kind == "trailing" else " " + text


def _ocr(text: str, rng: random.Random) -> str:
    options = [(a, b) for a, b in _OCR if a in text]
    if not options:
        return text
    a, b = rng.choice(options)
    starts = [i for i in range(len(text)) if text.startswith(a, i)]
    i = rng.choice(starts)
    return text[:i] + b + text[i + len(a):]


TEXT_REWRITES = {
    "typo": _typo,
    "lowercase": lambda t, rng: t.lower(),
    "uppercase": lambda t, rng: t.upper(),
    "strip_punct": lambda t, rng: t.translate(str.maketrans("", "", string.punctuation)),
    "whitespace": _whitespace,
    "ocr": _ocr,
}


def _apply_outside_spans(text: str, spans: list[tuple[int, int]], fn, rng) -> tuple[str, list[tuple[int, int]]]:
    """Apply fn to the gaps between spans only; return the new text and shifted spans."""
    if not spans:
        return fn(text, rng), []
    pieces, new_spans, cursor, out = [], [], 0, ""
    for start, end in spans:
        pieces.append(("gap", text[cursor:start]))
        pieces.append(("keep", text[start:end]))
        cursor = end
    pieces.append(("gap", text[cursor:]))
    gap_indexes = [i for i, (kind, part) in enumerate(pieces) if kind == "gap" and part]
    chosen = set(gap_indexes) if fn in (TEXT_REWRITES["lowercase"], TEXT_REWRITES["uppercase"],
                                        TEXT_REWRITES["strip_punct"]) else \
        ({rng.choice(gap_indexes)} if gap_indexes else set())
    for i, (kind, part) in enumerate(pieces):
        if kind == "gap" and i in chosen:
            part = fn(part, rng)
        if kind == "keep":
            new_spans.append((len(out), len(out) + len(part)))
        out += part
    return out, new_spans


def _rewrite_mentions(record: dict, spans: dict, mentions: dict[str, tuple[str, ...]], name: str, surface: str,
                      schema: ir.Schema, schemas) -> dict | None:
    """The texts that mention field `name`, with each mention rewritten to `surface` and their
    spans moved, as {text field: (text, spans)}; None when a rewritten text would break its own
    constraints (then the value keeps its form, so text and value never disagree)."""
    out: dict = {}
    for text_field, names in mentions.items():
        if name not in names or text_field not in spans or not isinstance(record.get(text_field), str):
            continue
        text, moved, shift = record[text_field], [], 0
        for mentioned, (start, end) in zip(names, spans[text_field]):
            start, end = start + shift, end + shift
            if mentioned == name:
                text = text[:start] + surface + text[end:]
                shift += len(surface) - (end - start)
                end = start + len(surface)
            moved.append((start, end))
        field = schema.field(text_field)
        try:
            check_value(field.type, text, schemas) if field is not None else None
        except ValueError_:
            return None
        out[text_field] = (text, moved)
    return out


def _write_numbers(text: str, spans: list[tuple[int, int]], numbers: list[float | None], example: str
                   ) -> tuple[str, list[tuple[int, int]]]:
    """The text with each mentioned number (None: not a number) written in the format, spans moved."""
    fmt = parse_format(example)
    assert not isinstance(fmt, str)  # the checker and validate_plan refuse a format that does not parse
    moved, shift = [], 0
    for (start, end), number in zip(spans, numbers):
        start, end = start + shift, end + shift
        if number is not None:
            surface = fmt.write(number)
            text = text[:start] + surface + text[end:]
            shift += len(surface) - (end - start)
            end = start + len(surface)
        moved.append((start, end))
    return text, moved


def apply_noise(rules: tuple[ir.NoiseRule, ...], record: dict, schema: ir.Schema, spans: dict,
                rng: random.Random, schemas, mentions: dict[str, tuple[str, ...]] | None = None,
                numbers: dict[str, list[float | None]] | None = None) -> tuple[list[dict], dict]:
    """Mutates record (and spans, field -> list of (start, end)). Returns (applied, truth):
    the rules applied and the normalised values of fields whose surface changed form.
    `mentions`: text field -> the fields it mentions, in order; a date given another format is
    written in that format where a text mentions it too, with the spans moved. `numbers`: text
    field -> for each of its spans the rounded number it shows, or None: `number_format` writes
    those in a format drawn for the record (the record keeps the numbers themselves)."""
    applied: list[dict] = []
    truth: dict = {}
    for rule in rules:
        if rng.random() >= rule.rate:
            continue
        field = schema.field(rule.field)
        value = record.get(rule.field)
        if value is None or field is None:
            continue
        if rule.rule in ir.TEXT_RULES:
            field_spans = spans.get(rule.field, [])
            new_text, new_spans = _apply_outside_spans(value, field_spans, TEXT_REWRITES[rule.rule], rng)
            if new_text == value:
                continue
            try:
                check_value(field.type, new_text, schemas)
            except ValueError_:
                continue  # the noisy text would break the field's own constraints
            record[rule.field] = new_text
            if field_spans:
                spans[rule.field] = new_spans
            applied.append({"field": rule.field, "rule": rule.rule})
        elif rule.rule == "date_format":
            fmt = rng.choice(rule.formats)
            surface = date.fromisoformat(value).strftime(fmt)
            texts = _rewrite_mentions(record, spans, mentions or {}, rule.field, surface, schema, schemas)
            if texts is None:
                continue
            truth.setdefault(rule.field, value)
            record[rule.field] = surface
            for text_field, (text, moved) in texts.items():
                record[text_field] = text
                spans[text_field] = moved
            applied.append({"field": rule.field, "rule": "date_format", "format": fmt})
        elif rule.rule == "number_format":
            shown = (numbers or {}).get(rule.field)
            if not shown or all(n is None for n in shown) or len(shown) != len(spans.get(rule.field, [])):
                continue
            example = rng.choice(rule.formats)
            new_text, moved = _write_numbers(value, spans[rule.field], shown, example)
            try:
                check_value(field.type, new_text, schemas)
            except ValueError_:
                continue  # written so, the text would break its own length bounds
            record[rule.field] = new_text
            spans[rule.field] = moved
            applied.append({"field": rule.field, "rule": "number_format", "format": example})
        elif rule.rule == "drop":
            truth.setdefault(rule.field, value)
            record[rule.field] = None
            applied.append({"field": rule.field, "rule": "drop"})
    return applied, truth


def restore_truth(record: dict, meta: dict) -> dict:
    """The record with normalised values put back (for validation and evaluation)."""
    out = dict(record)
    out.update(meta.get("truth", {}))
    return out


__all__ = ["TEXT_REWRITES", "apply_noise", "restore_truth"]
