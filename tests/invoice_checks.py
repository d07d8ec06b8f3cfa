"""Checks of an invoice record of specs/invoice_extraction made from the record alone, not with
the product's code: its arithmetic in whole cents, and each span's text against the value's
surface form (money with two decimals)."""

from itertools import pairwise

MONEY = ("lines.amount", "subtotal", "tax", "total")
# the example's number formats: (before the digits, thousands separator, decimal mark, after)
FORMATS = {"1234.50": ("", "", ".", ""), "1,234.50": ("", ",", ".", ""), "$1,234.50": ("$", ",", ".", ""),
           "1.234,50 €": ("", ".", ",", " €")}


def cents(x: float) -> int:
    return round(x * 100)


def assert_sums(r: dict) -> None:
    assert 1 <= len(r["lines"]) <= 5
    for line in r["lines"]:
        assert cents(line["unit_price"]) == line["cents"]
        assert cents(line["amount"]) == line["qty"] * line["cents"]
    subtotal = sum(line["qty"] * line["cents"] for line in r["lines"])
    assert cents(r["subtotal"]) == subtotal
    assert abs(cents(r["tax"]) - subtotal * r["tax_rate"] / 100) <= 0.5 + 1e-9
    assert cents(r["total"]) == cents(r["subtotal"]) + cents(r["tax"])


def money(value: float, fmt: str) -> str:
    before, group, mark, after = FORMATS[fmt]
    whole, frac = f"{value:.2f}".split(".")
    digits = [whole[max(0, i - 3):i] for i in range(len(whole), 0, -3)][::-1]
    return f"{before}{group.join(digits)}{mark}{frac}{after}"


def surface(r: dict, field: str, item: int | None) -> str:
    value = r["lines"][item][field.split(".", 1)[1]] if item is not None else r[field]
    if field not in MONEY:
        return str(value)
    fmt = next((n["format"] for n in r["_meta"]["noise"] if n["rule"] == "number_format"), "1234.50")
    return money(value, fmt)


def assert_spans(r: dict) -> None:
    spans = r["_meta"]["spans"]["text"]
    want = ["vendor", "number", "issued"]
    want += [f for _ in r["lines"] for f in ("lines.product", "lines.qty", "lines.amount")]
    want += ["subtotal", "tax", "total"]
    assert [s["field"] for s in spans] == want
    assert [s.get("item") for s in spans if s["field"].startswith("lines.")] == \
        [n for n in range(len(r["lines"])) for _ in range(3)]
    for s in spans:
        assert r["text"][s["start"]:s["end"]] == surface(r, s["field"], s.get("item")), s
    assert all(a["end"] <= b["start"] for a, b in pairwise(spans))   # in order, never overlapping
