"""Checks of an invoice record of specs/invoice_extraction made from the record alone, not with
the product's code: its arithmetic in whole cents, and each span's text against the value's
surface form (money with two decimals)."""

from itertools import pairwise

MONEY = ("lines.amount", "subtotal", "tax", "total")


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


def surface(r: dict, field: str, item: int | None) -> str:
    value = r["lines"][item][field.split(".", 1)[1]] if item is not None else r[field]
    return f"{value:.2f}" if field in MONEY else str(value)


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
