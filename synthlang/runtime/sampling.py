"""Drawing the sampled fields of a record from its own random stream."""

from __future__ import annotations

import random
from datetime import date
from functools import lru_cache
from typing import Any

from .. import ir
from ..fakers import value_fits
from ..plan.model import Block, SampledField
from ..regexes import sample as sample_regex
from ..values import ValueError_, check_value


class SamplingError(Exception):
    pass


@lru_cache(maxsize=1)
def _faker():
    from faker import Faker
    return Faker()


def _faker_value(provider: str, t: ir.Type, rng: random.Random) -> Any:
    fake = _faker()
    fake.seed_instance(rng.getrandbits(63))
    try:
        value = getattr(fake, provider)()
    except Exception as exc:
        raise SamplingError(f"faker `{provider}` failed: {type(exc).__name__}") from None
    if not value_fits(value, t.kind):  # a plan may name any provider: nothing is stringified blindly
        raise SamplingError(f"faker `{provider}` gives {type(value).__name__}, not a {ir.type_name(t)}")
    match t:
        case ir.StrType():
            return value
        case ir.IntType():
            return int(value)
        case ir.FloatType():
            return float(value)
        case ir.DateType():
            return value.isoformat() if isinstance(value, date) else str(value)
    return value


def draw(sf: SampledField, rng: random.Random, schemas) -> Any:
    t, s = sf.type, sf.sampler
    for _ in range(50):
        match s.method:
            case "uniform":
                options = ir.options_of(t)
                if options is not None:
                    value = rng.choice(options)
                elif isinstance(t, ir.IntType):
                    value = rng.randint(t.min, t.max)
                elif isinstance(t, ir.FloatType):
                    value = rng.uniform(t.min, t.max)
                else:
                    lo, hi = date.fromisoformat(t.min).toordinal(), date.fromisoformat(t.max).toordinal()
                    value = date.fromordinal(rng.randint(lo, hi)).isoformat()
            case "weights":
                value = rng.choices(ir.options_of(t), weights=s.weights)[0]
            case "pick":
                value = rng.choice(s.values)
            case "regex":
                try:
                    value = sample_regex(t.pattern, rng, t.min_len, t.max_len)
                except ValueError as exc:
                    raise SamplingError(str(exc)) from None
            case "faker":
                value = _faker_value(s.provider, t, rng)
            case _:
                raise SamplingError(f"unknown sampler {s.method}")
        try:
            return check_value(t, value, schemas)
        except ValueError_:
            continue  # e.g. a faker value longer than the field allows: draw again
    raise SamplingError(f"`{'.'.join(sf.path)}`: no value drawn by {s.method} fits {ir.type_name(t)}")


def set_path(record: dict, path: tuple[str, ...], value: Any) -> None:
    node = record
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def get_path(record: dict, path: tuple[str, ...]) -> Any:
    node: Any = record
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def draw_fields(block: Block, rng: random.Random, schemas) -> dict:
    """The sampled values of one record, as a nested dict."""
    values: dict = {}
    for sf in block.sampled:
        set_path(values, sf.path, draw(sf, rng, schemas))
    return values
