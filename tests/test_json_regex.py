"""The regex the Outlines backends decode by: every bounded integer and decimal of a schema is
matched exactly within its bounds (outlines_core's own regex drops minimum and maximum)."""

import json
import re
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from synthlang.engines.json_regex import decimal_range, integer_range, json_regex

BOUND = st.one_of(st.none(), st.integers(-10**7, 10**7), st.sampled_from([0, -1, 1, 9, 10, 99, 100]))
DECIMAL = st.one_of(st.integers(-10**6, 10**6).map(lambda n: Decimal(n) / 100),
                    st.integers(-10**5, 10**5).map(lambda n: Decimal(n) / 1000),
                    st.sampled_from([Decimal("0"), Decimal("1"), Decimal("-1"), Decimal("0.5"), Decimal("99.0")]))


def _ordered(lo, hi):
    return (hi, lo) if lo is not None and hi is not None and lo > hi else (lo, hi)


@settings(max_examples=300, deadline=None)
@given(bounds=st.tuples(BOUND, BOUND), values=st.lists(st.integers(-2 * 10**7, 2 * 10**7), max_size=20))
def test_integer_ranges_match_exactly_the_integers_within_them(bounds, values):
    lo, hi = _ordered(*bounds)
    rx = re.compile(integer_range(lo, hi))
    edges = [b + d for b in (lo, hi) if b is not None for d in (-1, 0, 1)]
    for v in values + edges + [0]:
        assert bool(rx.fullmatch(str(v))) == ((lo is None or v >= lo) and (hi is None or v <= hi)), (lo, hi, v)
    for text in ("01", "-0", "+1", "1.0", "", "-", "1e3"):
        assert not rx.fullmatch(text) or text == "-0" and (lo is None or lo <= 0) and (hi is None or hi >= 0)


@settings(max_examples=300, deadline=None)
@given(bounds=st.tuples(st.one_of(st.none(), DECIMAL), st.one_of(st.none(), DECIMAL)),
       values=st.lists(DECIMAL, max_size=20))
def test_decimal_ranges_match_exactly_the_numbers_within_them(bounds, values):
    lo, hi = _ordered(*bounds)
    rx = re.compile(decimal_range(lo, hi))
    edges = [b + d for b in (lo, hi) if b is not None for d in (Decimal("-0.001"), Decimal(0), Decimal("0.001"))]
    for v in values + edges:
        inside = (lo is None or v >= lo) and (hi is None or v <= hi)
        plain = format(v, "f")
        for text in {plain, plain + "0" if "." in plain else plain + ".0", format(v.normalize(), "f")}:
            assert bool(rx.fullmatch(text)) == inside, (lo, hi, text)


def test_a_schema_s_bounded_numbers_are_written_into_outlines_regex():
    schema = {"type": "object", "properties": {
        "kind": {"enum": ["a", "b"]}, "stars": {"type": "integer", "minimum": 1, "maximum": 5},
        "drift": {"type": "number", "minimum": -2.5, "maximum": 7.25},
        "counts": {"type": "array", "items": {"type": "integer", "minimum": -3, "maximum": 3}, "maxItems": 2},
        "free": {"type": "integer"}},
        "required": ["kind", "stars", "drift", "counts", "free"], "additionalProperties": False}
    rx = re.compile(json_regex(schema))

    def ok(**over):
        record = {"kind": "a", "stars": 3, "drift": 0.5, "counts": [-3, 2], "free": -12345, **over}
        return bool(rx.fullmatch(json.dumps(record, separators=(",", ":"))))

    assert ok() and ok(stars=1) and ok(stars=5) and ok(drift=-2.5) and ok(drift=7.25) and ok(counts=[])
    assert not ok(stars=0) and not ok(stars=6) and not ok(drift=7.3) and not ok(drift=-2.6)
    assert not ok(counts=[4]) and not ok(counts=[-4])
