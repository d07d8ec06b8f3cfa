"""`number_format` noise: a text's mentioned amounts written in a format drawn per record
(`1,234.50`, `$1,234.50`, `1.234,50 €`), the spans on the surface form, the record's numbers
unchanged, and the text decoded short enough that any drawn format fits its bounds."""

import random

import pytest

from synthlang import ir
from synthlang.compiler import compile
from synthlang.number_formats import parse_format
from synthlang.runtime.noise import apply_noise


@pytest.mark.parametrize(("example", "value", "written"), [
    ("1234.50", 1234567.891, "1234567.89"), ("1,234.50", 1234567.891, "1,234,567.89"),
    ("$1,234.50", 0.5, "$0.50"), ("1.234,50 €", 1234.5, "1.234,50 €"), ("EUR 1 234,50", 98765.4, "EUR 98 765,40"),
    ("1234,5", 12.25, "12,2"), ("1,234.50", -1234.5, "-1,234.50"),
])
def test_a_format_writes_numbers_as_its_example_shows_1234_5(example, value, written):
    fmt = parse_format(example)
    assert not isinstance(fmt, str)
    assert fmt.write(value) == written


@pytest.mark.parametrize("example", ["1,234", "1.234", "12.34", "1234", "1,234,50", "€€€€€€€€€ 1234.50", "1234.55"])
def test_an_example_that_is_not_1234_5_in_some_format_is_refused(example):
    assert isinstance(parse_format(example), str)


def test_the_rule_rewrites_only_the_mentioned_numbers_and_moves_every_span():
    rules = (ir.NoiseRule(field="text", rule="number_format", rate=1.0, formats=("1.234,50 €",)),)
    schema = ir.Schema(name="A", fields=(ir.FieldDef(name="text", type=ir.StrType(min_len=1, max_len=99)),))
    record = {"text": "Acme: 3 x 1234.50, total 3703.50."}
    spans = {"text": [(0, 4), (6, 7), (10, 17), (25, 32)]}
    applied, truth = apply_noise(rules, record, schema, spans, random.Random(1), lambda n: None,
                                 {"text": ("vendor", "qty", "price", "total")},
                                 {"text": [None, None, 1234.5, 3703.5]})
    assert record["text"] == "Acme: 3 x 1.234,50 €, total 3.703,50 €."
    assert [record["text"][s:e] for s, e in spans["text"]] == ["Acme", "3", "1.234,50 €", "3.703,50 €"]
    assert applied == [{"field": "text", "rule": "number_format", "format": "1.234,50 €"}] and truth == {}


def test_a_text_with_number_formats_is_decoded_short_enough_for_the_longest(tmp_path):
    text = '''
schema Line {
  cents:  int(100..9900) ~ uniform
  amount: float = round(cents / 100, 2)
}
schema Bill {
  lines: list[Line](1..3)
  total: float = round(sum(lines.amount), 2)
  text:  str(20..300) mentions lines.amount, total
}
generate Bill { count 2 NOISE }
'''
    plain, formatted = tmp_path / "a.synth", tmp_path / "b.synth"
    plain.write_text(text.replace("NOISE", ""))
    formatted.write_text(text.replace("NOISE", 'noise text { number_format ["1,234.50", "EUR 1.234,50"] 50% }'))
    (a,), (b,) = compile(plain).plan.blocks[0].mentions, compile(formatted).plan.blocks[0].mentions
    # four numbers at most (three items and the total), each up to "EUR " and two separators longer
    assert (a.max_len, b.max_len) == (300, 300 - 4 * (4 + 2))
