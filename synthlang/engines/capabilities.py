"""Which JSON Schema features an engine really enforces, and a check that refuses a plan whose
guarantees the engine cannot keep, naming the field and the feature.

Engines that know their constraint backend state their features (`capabilities`); for the
others (a remote server, a backend that may drop keywords) each feature the plan uses is
probed with a request that an engine ignoring it would almost surely violate."""

from __future__ import annotations

import json

from ..plan.engine_limits import block_features, schema_features
from ..plan.model import Block
from .base import Engine, GenerationRequest


class UnsupportedFeature(Exception):
    pass


def _probe(schema_props: dict, prompt: str):
    return {"type": "object", "properties": schema_props, "required": list(schema_props),
            "additionalProperties": False}, prompt


# feature -> (schema, prompt, check(value) -> bool). Each prompt pulls an unconstrained model
# away from the constraint, so an engine that drops the keyword fails the check.
PROBES = {
    "pattern": (*_probe({"v": {"type": "string", "pattern": "^QX[0-9]{3}-ZZ$"}}, "Say hello to me."),
                lambda d: isinstance(d.get("v"), str) and __import__("re").fullmatch(r"QX[0-9]{3}-ZZ", d["v"])),
    "enum": (*_probe({"v": {"enum": ["zebra-17", "quasar-42"]}}, "What is your favourite colour?"),
             lambda d: d.get("v") in ("zebra-17", "quasar-42")),
    "minimum": (*_probe({"v": {"type": "integer", "minimum": 700}}, "What is 2 + 2? Put the number in v."),
                lambda d: isinstance(d.get("v"), int) and d["v"] >= 700),
    "maximum": (*_probe({"v": {"type": "integer", "maximum": 3}},
                        "How many days are in a year? Put the number in v."),
                lambda d: isinstance(d.get("v"), int) and d["v"] <= 3),
    "minLength": (*_probe({"v": {"type": "string", "minLength": 60, "maxLength": 80}},
                          "Answer with one word: what colour is the sky?"),
                  lambda d: isinstance(d.get("v"), str) and 60 <= len(d["v"]) <= 80),
    "maxLength": (*_probe({"v": {"type": "string", "maxLength": 4}},
                          "Describe the ocean in three long sentences."),
                  lambda d: isinstance(d.get("v"), str) and len(d["v"]) <= 4),
    "minItems": (*_probe({"v": {"type": "array", "items": {"type": "string", "maxLength": 12}, "minItems": 4,
                                "maxItems": 6}}, "Name one fruit."),
                 lambda d: isinstance(d.get("v"), list) and 4 <= len(d["v"]) <= 6),
    "patternWithLength": (*_probe({"v": {"type": "string", "pattern": "^[A-Z]+$", "minLength": 5, "maxLength": 7}},
                                  "Say hello to me."),
                          lambda d: isinstance(d.get("v"), str) and __import__("re").fullmatch(r"[A-Z]{5,7}", d["v"])),
    "maxItems": (*_probe({"v": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 1}},
                         "List ten animals."),
                 lambda d: isinstance(d.get("v"), list) and len(d["v"]) <= 1),
}


def probe_features(engine: Engine, features: set[str], tries: int = 3) -> tuple[set[str], dict[str, str]]:
    """(the subset of `features` the engine enforces, why each other one failed).

    A feature fails when a valid JSON output breaks it. Invalid JSON is inconclusive (the
    runtime rejects such outputs anyway) and the probe is asked again with another seed, up to
    `tries` times; a feature with no valid output at all fails too."""
    enforced: set[str] = set()
    why: dict[str, str] = {}
    pending = sorted(f for f in features if f in PROBES)
    for t in range(tries):
        if not pending:
            break
        requests = [GenerationRequest(messages=({"role": "user", "content": PROBES[f][1]},),
                                      json_schema=PROBES[f][0], max_tokens=256, seed=4321 + 97 * t + i,
                                      temperature=0.8, top_p=0.95) for i, f in enumerate(pending)]
        still = []
        for feature, result in zip(pending, engine.generate(requests)):
            try:
                # control characters inside strings do not say anything about the keyword under
                # test (the runtime rejects such output on its own), so they are tolerated here
                data = json.loads(result.text, strict=False) if result.text else None
            except json.JSONDecodeError:
                data = None
            if not isinstance(data, dict):
                why[feature] = f"no valid JSON output ({result.error or repr((result.text or '')[:60])})"
                still.append(feature)
            elif PROBES[feature][2](data):
                enforced.add(feature)
                why.pop(feature, None)
            else:
                why[feature] = f"the output broke it: {json.dumps(data)[:80]}"
        pending = still
    return enforced, why


def check_capabilities(engine: Engine, blocks: list[Block], judged: list[Block] | tuple[()] = ()) -> set[str]:
    """Raise UnsupportedFeature naming each field whose constraint the engine does not enforce.
    `blocks` are written by this engine, `judged` are judged by it (the score's bounds)."""
    used = [(b, path, feat) for b in blocks for path, feat in block_features(b)]
    used += [(b, f"judge.{path}", feat) for b in judged for path, feat in schema_features(b.judge_schema or {})]
    needed = {feat for _, _, feat in used}
    if not needed:
        return set()
    declared = engine.capabilities
    if declared is not None:
        enforced, why = set(declared) & needed, dict[str, str]()
    else:
        enforced, why = probe_features(engine, needed)
    missing = [(b, path, feat) for b, path, feat in used if feat not in enforced]
    if missing:
        shown = "; ".join(f"{b.id}.{path}: `{feat}`" for b, path, feat in missing[:8])
        more = f" (and {len(missing) - 8} more)" if len(missing) > 8 else ""
        reasons = "; ".join(f"{f}: {why[f]}" for f in sorted({f for _, _, f in missing}) if f in why)
        raise UnsupportedFeature(
            f"engine `{engine.name}` does not enforce {', '.join(sorted({f for _, _, f in missing}))}, "
            f"which the plan relies on: {shown}{more}. Choose another engine or backend, or drop the "
            f"constraint." + (f" Probe results: {reasons}." if reasons else ""))
    return enforced
