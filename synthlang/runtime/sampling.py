"""Drawing the sampled fields of a record from its own random stream."""

from __future__ import annotations

import random
from collections import ChainMap
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from typing import Any

from .. import ir
from ..fakers import value_fits
from ..plan.model import Block, SampledField
from ..regexes import sample as sample_regex
from ..values import ValueError_, check_value
from .drawn_rows import DrawnFileError, DrawnRows


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
    except Exception as exc:  # noqa: BLE001 - a provider that fails fails this record's sampling
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


def _uniform(t: ir.Type, rng: random.Random) -> Any:
    options = ir.options_of(t)
    if options is not None:
        return rng.choice(options)
    if isinstance(t, ir.IntType) and t.min is not None and t.max is not None:
        return rng.randint(t.min, t.max)
    if isinstance(t, ir.FloatType) and t.min is not None and t.max is not None:
        return rng.uniform(t.min, t.max)
    if isinstance(t, ir.DateType) and t.min is not None and t.max is not None:
        lo, hi = date.fromisoformat(t.min).toordinal(), date.fromisoformat(t.max).toordinal()
        return date.fromordinal(rng.randint(lo, hi)).isoformat()
    raise SamplingError(f"`uniform` cannot draw a {ir.type_name(t)}: it needs options or bounds")


def _draw_list(sf: SampledField, t: ir.ListType, rng: random.Random, schemas, drawn: DrawnRows | None) -> list[dict]:
    """A drawn list of records: its item count (uniform, or one weight per count from the
    lowest), then each item's sampled fields, item after item, from the record's stream."""
    lo, hi = ir.item_counts(t)
    if isinstance(sf.sampler, ir.WeightsSampler):
        if len(sf.sampler.weights) != hi - lo + 1:
            raise SamplingError(f"`{'.'.join(sf.path)}`: {len(sf.sampler.weights)} weights for "
                                f"{hi - lo + 1} item counts")
        n = rng.choices(range(lo, hi + 1), weights=sf.sampler.weights)[0]
    else:
        n = rng.randint(lo, hi)
    items: list[dict] = []
    for _ in range(n):
        item: dict = {}
        for sub in sf.items:
            set_path(item, sub.path, draw(sub, rng, schemas, item, drawn))
        items.append(item)
    return items


def _sibling(sf: SampledField, name: str, parent: Mapping | None) -> Any:
    """The value of a field beside `sf` in the record drawn so far."""
    node: Any = parent
    for part in sf.path[:-1]:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node.get(name) if isinstance(node, Mapping) else None


def _from_rows(sf: SampledField, s: ir.DrawSampler, rng: random.Random, schemas, parent: Mapping | None,
               drawn: DrawnRows | None) -> Any:
    """A row of a seed set, or one column of it (rows checked against its schema when read)."""
    if drawn is None:
        raise SamplingError(f"`{'.'.join(sf.path)}`: no rows to draw from `{s.seeds}` in this run")
    try:
        value = drawn.draw(s, rng, _sibling(sf, s.matching, parent) if s.matching else None)
    except (LookupError, DrawnFileError) as exc:
        raise SamplingError(f"`{'.'.join(sf.path)}`: {exc}") from None
    if s.column is None:
        return value
    try:
        return check_value(sf.type, value, schemas)
    except ValueError_ as exc:
        raise SamplingError(f"`{'.'.join(sf.path)}`: the drawn {s.column} does not fit: {exc.message}") from None


def _conditional(sf: SampledField, s: ir.ConditionalSampler, rng: random.Random, parent: Mapping | None) -> Any:
    """A value drawn with the case of the condition's value (drawn before it, or the cell's)."""
    when = _sibling(sf, s.by, parent)
    case = s.case_for(when)
    if case is None:
        raise SamplingError(f"`{'.'.join(sf.path)}`: no case for {s.by} = {when!r}")
    if case.weights is not None:
        return rng.choices(ir.options_of(sf.type) or (), weights=case.weights)[0]
    return rng.choice(case.values or (None,))


def draw(sf: SampledField, rng: random.Random, schemas, parent: Mapping | None = None,
         drawn: DrawnRows | None = None) -> Any:
    """A value of the field. `parent`: the record drawn so far (from its root), which a
    conditional sampler or a matching draw reads its condition from; `drawn`: the rows that
    draws take values from."""
    t, s = sf.type, sf.sampler
    if isinstance(s, ir.DrawSampler):
        return _from_rows(sf, s, rng, schemas, parent, drawn)
    if isinstance(t, ir.ListType):
        if not isinstance(s, (ir.UniformSampler, ir.WeightsSampler)) or not isinstance(t.item, ir.RecordType):
            raise SamplingError(f"`{'.'.join(sf.path)}`: a list is drawn by its item count, for a list of records")
        return _draw_list(sf, t, rng, schemas, drawn)
    for _ in range(50):
        value: Any
        match s:
            case ir.UniformSampler():
                value = _uniform(t, rng)
            case ir.WeightsSampler():
                value = rng.choices(ir.options_of(t) or (), weights=s.weights)[0]
            case ir.PickSampler():
                value = rng.choice(s.values)
            case ir.RegexSampler():
                if not isinstance(t, ir.StrType) or t.pattern is None:
                    raise SamplingError(f"`{'.'.join(sf.path)}`: a regex sampler needs a string with a pattern")
                try:
                    value = sample_regex(t.pattern, rng, t.min_len, t.max_len)
                except ValueError as exc:
                    raise SamplingError(str(exc)) from None
            case ir.FakerSampler():
                value = _faker_value(s.provider, t, rng)
            case ir.ConditionalSampler():
                value = _conditional(sf, s, rng, parent)
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


def draw_fields(block: Block, rng: random.Random, schemas, given: dict | None = None,
                drawn: DrawnRows | None = None) -> dict:
    """The sampled values of one record, as a nested dict, beside `given` (the quota cell's
    values, which a conditional sampler or a matching draw may read)."""
    values: dict = {}
    seen = ChainMap(values, given or {})
    for sf in block.sampled:
        set_path(values, sf.path, draw(sf, rng, schemas, seen, drawn))
    return values
