"""What the plan relies on that an engine and backend pairing is known not to enforce, refused
when the plan is built (`synthc check`), not after a model has loaded.

`schema_features` names every JSON Schema constraint a block's request carries; the start-up
capability check (engines/capabilities.py) probes the same features on engines that do not
state them. Where a pairing's limit is known, it is written in UNENFORCED and a field that
needs it is an error at its declaration, with the pairings that do enforce it."""

from __future__ import annotations

from typing import Any

from .. import ir
from ..diagnostics import Note
from ..sema.context import Context
from .model import Block

# (engine, backend as ENGINE_BACKENDS resolves it) -> {feature: what it is, for the message}.
# vLLM's xgrammar backend refuses a string schema holding a pattern and a length bound
# (measured with vLLM 0.32: the request fails, and the capability probe stops the run).
UNENFORCED: dict[tuple[str, str], dict[str, str]] = {
    ("vllm", "xgrammar"): {"patternWithLength": "a pattern with a length bound"},
}


def schema_features(schema: dict[str, Any], path: str = "") -> list[tuple[str, str]]:
    """(field path, feature) for every constraint keyword in a JSON Schema."""
    out: list[tuple[str, str]] = []
    for key in ("pattern", "enum", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"):
        if key in schema:
            out.append((path or "(record)", key))
    if "pattern" in schema and ("minLength" in schema or "maxLength" in schema):
        out.append((path or "(record)", "patternWithLength"))
    for name, sub in schema.get("properties", {}).items():
        out += schema_features(sub, f"{path}.{name}" if path else name)
    if "items" in schema:
        out += schema_features(schema["items"], f"{path}[]")
    for sub in schema.get("anyOf", []):
        out += schema_features(sub, path)
    return out


def block_features(block: Block) -> list[tuple[str, str]]:
    """The features a block's requests carry: its schema's, and a pattern for each mention."""
    found = schema_features(block.json_schema)
    found += [(".".join(m.path), "pattern") for m in block.mentions]
    seen, out = set(), []
    for item in found:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def check_engine_limits(ctx: Context, g: ir.Generate, block: Block) -> None:
    """E0108 for each field of `block` whose constraint its model's pairing cannot enforce."""
    asked = [(block.model, block_features(block))] if not block.steps else \
        [(s.model, schema_features(s.json_schema)) for s in block.steps]
    schema = ctx.schemas[block.schema_name]
    for model_name, features in asked:
        model = ctx.models.get(model_name)
        if model is None:
            continue
        backend = ir.ENGINE_BACKENDS.get(model.engine, {}).get(model.backend)
        limits = UNENFORCED.get((model.engine, backend or ""), {})
        for path, feature in features:
            if feature not in limits:
                continue
            top = schema.field(path.split(".")[0].removesuffix("[]"))
            ctx.sink.error("E0108", f"`{block.schema_name}.{path}` needs {limits[feature]}, which engine "
                           f"{model.engine} with backend {backend} does not enforce (model `{model.name}`)",
                           top.span if top is not None and top.span is not None else g.span,
                           notes=[Note(model.span, f"model {model.name}")] if model.span is not None else [],
                           help="use backend guidance (llguidance), which enforces every constraint a plan emits, "
                                "or bound the pattern itself (`{1,40}` for `+`), so that no length bound is added")
