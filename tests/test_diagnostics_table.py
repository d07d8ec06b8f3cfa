"""Labelled example errors: each small spec must give exactly this code at this line:col.
The table is both a specification of the checker and its test."""


import pytest

from synthlang.compiler import compile

HEAD = 'enum Intent { billing, outage }\nschema T {\n  intent: Intent\n  body: str(10..100)\n  n: int(1..5) ~ uniform\n}\n'

# a record with sampled fields and one the model writes, for the rows on lists of records
ITEM = 'schema I {\n  p: str ~ pick("a", "b")\n  q: int(1..9) ~ uniform\n  w: str(1..9)\n}\n'

# a sampled condition, for the rows on conditional samplers
COND = 'enum Intent { billing, outage, login }\nschema T {\n  intent: Intent ~ uniform\n  body: str(5..50)\n'
# a text that mentions a rounded amount, and one that mentions none
MONEY = ('schema T {\n  n: int(1..5) ~ uniform\n  x: float = round(n / 3, 2)\n  t: str(10..99) mentions x\n'
         '  u: str(10..99) mentions n\n}\n')

CASES = [
    ("E0001", "schema {", 1, 8),
    ("E0002", 'schema T { a: str(1..5) ~ pick("x) }', 1, 32),
    ("E0002", "schema T { a: str(/ab) }", 1, 19),
    ("E0002", "schema T { a: int(1..5) } $", 1, 27),
    ("E0004", "schema T { a: int(1..99999999999999999999) }", 1, 22),
    # `enum E {` and 24,998 members with their commas, then `v24998`: token 50,000; the comma
    # starting line 2 is token 50,001, one past the budget
    ("E0004", "schema T { a: str(/a{" + "9" * 5000 + "}/) }", 1, 22),
    ("E0005", "enum E { " + "".join(f"v{i}, " for i in range(24998)) + "v24998\n, v24999 }", 2, 1),
    ("E0101", HEAD + "generate T { count 3 check len(bodyy) > 3 }", 7, 32),
    ("E0102", "enum A { x }\nenum A { y }", 2, 6),
    ("E0105", HEAD + "generate T { }", 7, 10),
    ("E0106", "dataset d { sead 3 }", 1, 13),
    ("E0107", 'model m { engine gpt }', 1, 18),
    ("E0108", 'model m {\n  engine vllm\n  backend xgrammar\n}\nschema T {\n  a: str(/[a-z]+/)\n}\n'
              'generate T {\n  count 2\n  using m\n}', 6, 3),
    ("E0201", "schema T { a: bool(1..2) }", 1, 20),
    ("E0202", "schema T { a: str(5..1) }", 1, 19),
    ("E0202", "schema T { a: str(1..100000000) }\ngenerate T { count 2 }", 1, 15),
    ("E0203", "schema T { a: str(/(/) }", 1, 19),
    ("E0204", "schema T { a: str(/[0-9]{2}/, 3..9) }", 1, 19),
    ("E0205", "schema T { a: str ~ uniform }", 1, 19),
    ("E0206", 'schema T { a: "x" | "y" ~ weights(1) }', 1, 25),
    ("E0207", "schema T { a: int(1..3) ~ pick(7) }", 1, 32),
    ("E0208", "schema T { a: str(/[0-9]{3}/) ~ regex\n b: str(1..2) mentions a }", 2, 5),
    ("E0209", "schema T { a: str(1..5)\n b: int = a }", 2, 9),
    ("E0209", "schema T { a: int = b\n b: int = a }", 1, 19),
    ("E0210", "schema A { b: B }\nschema B { a: A }", 1, 8),
    ("E0210", "schema T { a: " + "list[" * 100 + "int" + "]" * 100 + " }", 1, 15),
    ("E0403", HEAD + "generate T { count 4 quota intent { billing: 60%, outage: 60% } }", 7, 22),
    ("E0401", HEAD + "generate T { count 4 quota body { x: 100% } }", 7, 28),
    ("E0402", HEAD + "generate T { count 4 quota intent { billing: 50%, outagee: 50% } }", 7, 51),
    ("E0404", HEAD + 'generate T { count 4 quota intent { billing: 50%, outage: 50% } check intent == "outage" }', 7, 71),
    ("E0404", HEAD + "generate T { count 4 check len(body) > 100 }", 7, 22),
    ("E0501", HEAD + 'generate T { count 4 prompt "{{ n " }', 7, 29),
    ("E0502", HEAD + 'generate T { count 4 prompt "{{ body }}" }', 7, 33),
    ("E0601", HEAD + 'generate T { count 4 check body > 3 }', 7, 28),
    ("E0602", HEAD + 'generate T { count 4 check size(body) > 3 }', 7, 28),
    ("E0701", HEAD + 'generate T { count 4 noise n { typo 5% } }', 7, 32),
    ("E0702", HEAD + 'generate T { count 4 allow truncated, echos }', 7, 39),
    ("E0801", HEAD + 'generate T { count 4 dedup n near 0.5 }', 7, 28),
    ("E0802", HEAD + 'generate T { count 4 judge min 9 "ok" }', 7, 32),
    ("E0901", HEAD + 'generate T { count 4 }\noutput "out" { format xml }', 8, 23),
    ("E1001", HEAD + 'generate T { count 4 }\nevaluate intent { text n test "x.jsonl" }', 8, 24),
    # lists of sampled records, expressions over lists, mentions of list items
    ("E0205", "schema T { a: list[str](1..3) ~ uniform }", 1, 31),
    ("E0205", 'schema R { x: str(1..5) }\nschema T { a: list[R](1..3) ~ pick("x") }', 2, 29),
    ("E0206", ITEM + "schema T { a: list[I](1..3) ~ weights(1, 2) }", 6, 29),
    ("E0205", ITEM + 'schema T {\n  a: list[I](1..3)\n  t: str(5..99)\n}\ngenerate T { count 2\n step t """x"""\n}', 10, 10),
    ("E0208", ITEM + "schema M { w: str(1..9)\n q: int(1..5) }\nschema T {\n  m: list[M](1..3)\n"
     "  t: str(5..99) mentions m.q\n}", 10, 26),
    ("E0208", ITEM + "schema T {\n  a: list[I](1..3)\n  t: str(5..99) mentions a.w\n}", 8, 26),
    ("E0101", ITEM + "schema T {\n  a: list[I](1..3)\n  t: str(5..99) mentions a.nope\n}", 8, 26),
    ("E0208", ITEM + "schema T {\n  a: list[I](1..3)\n  f: float = sum(a.q) / 2\n  t: str(5..99) mentions f\n}",
     9, 26),
    ("E0208", ITEM + "schema L {\n  q: int(1..3) ~ uniform\n  t: str(5..99) mentions q\n}\n"
     "schema T {\n  a: list[L](1..3)\n}\ngenerate T { count 2 }", 8, 3),
    ("E0601", ITEM + "schema T {\n  a: list[I](1..3)\n  s: int = sum(a.p)\n}", 8, 16),
    ("E0601", ITEM + "schema T {\n  v: str ~ pick(\"x\")\n  s: int = sum(v)\n}", 8, 16),
    ("E0601", ITEM + "schema T {\n  a: list[I](1..3)\n  s: int = sum(q for q in 5)\n}", 8, 27),
    ("E0601", ITEM + "schema T {\n  a: list[I](1..3)\n  s: int = a[\"x\"].q\n}", 8, 14),
    ("E0601", ITEM + "schema T {\n  n: int(1..3) ~ uniform\n  s: int = n[0]\n}", 8, 12),
    ("E0101", ITEM + "schema T {\n  a: list[I](1..3)\n  s: int = sum(i.nope for i in a)\n}", 8, 18),
    ("E0601", ITEM + "schema T {\n  a: list[I](1..3)\n  s: int = sum(a.p * 2)\n}", 8, 16),
    # conditional samplers: the condition, its values, their cases
    ("E0211", COND + '  p: str ~ pick by intent { billing: ("a"), login: ("b") }\n}', 5, 10),
    ("E0211", COND + '  p: str ~ pick by intent { billing: ("a"), refund: ("b"), else: ("c") }\n}', 5, 45),
    ("E0211", COND + '  p: str ~ pick by intnt { else: ("c") }\n}', 5, 20),
    ("E0211", COND + '  p: str ~ pick by body { else: ("c") }\n}', 5, 20),
    ("E0206", COND + '  p: "x" | "y" ~ weights by intent { billing: (1, 2, 3), else: (1, 1) }\n}', 5, 38),
    ("E0211", COND + '  p: "x" | "y" ~ pick by q { else: ("x") }\n  q: "x" | "y" ~ pick by p { else: ("y") }\n}', 5, 3),
    ("E0211", 'enum Intent { billing, outage }\nschema T {\n  intent: Intent\n  p: str ~ pick by intent { else: ("c") }\n'
     '  body: str(5..50)\n}\ngenerate T { count 2 }', 4, 3),
    ("E0211", COND + '  d: bool = intent == "billing"\n  p: str ~ pick by d { true: ("a"), false: ("b") }\n}', 6, 3),
    ("E0211", COND + '  p: str ~ pick by intent { billing: ("a"), billing: ("b"), else: ("c") }\n}', 5, 45),
    ("E0207", COND + '  p: int(1..5) ~ pick by intent { billing: (9), else: (1) }\n}', 5, 45),
    # number formats of the amounts a text mentions
    ("E0701", MONEY + 'generate T { count 2 noise u { number_format ["1,234.50"] 5% } }', 7, 32),
    ("E0701", MONEY + 'generate T { count 2 noise t { number_format ["1,234"] 5% } }', 7, 47),
    ("E0701", MONEY + 'generate T { count 2 noise t { number_format ["1234.5"] 5% } }', 7, 47),
    ("E0701", MONEY + 'generate T { count 2 noise t { number_format 5% } }', 7, 32),
]


@pytest.mark.parametrize("code,text,line,col", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_labelled_error(tmp_path, code, text, line, col):
    spec = tmp_path / "spec.synth"
    spec.write_text(text, encoding="utf-8")
    result = compile(spec)
    found = [(d.code, d.span.line, d.span.col) for d in result.diagnostics if d.span is not None]
    assert (code, line, col) in found, f"got {found}"
    assert not result.ok


def test_seed_rows_must_contain_their_mentions_in_order(tmp_path):
    (tmp_path / "rows.csv").write_text(
        "city,zip,letter\n"
        "Oxford,40221,\"Send it to Oxford 40221 please.\"\n"
        "Bath,12045,\"Send it to 12045 Bath please.\"\n")
    spec = tmp_path / "spec.synth"
    spec.write_text('schema A {\n  city: str ~ faker("city")\n  zip: str(/[0-9]{5}/) ~ regex\n'
                    '  letter: str(10..80) mentions city, zip\n}\nseeds s from "rows.csv" as A\n')
    result = compile(spec)
    bad = [(d.code, d.span.path, d.span.line, d.message) for d in result.diagnostics]
    assert bad == [("E0302", "rows.csv", 3, "row 2 of `rows.csv` does not fit A: field `letter` does not "
                    "contain the values of `city`, `zip` in that order")]
