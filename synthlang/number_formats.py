"""Number formats of the `number_format` noise rule, each written as the number 1234.5 would be
shown: `1234.50`, `1,234.50`, `$1,234.50`, `1.234,50 €`, `EUR 1 234,50`. A format says the
text before and after the digits (a currency), the thousands separator (or none), the decimal
mark and the number of decimals. The checker parses them; the runtime writes values with them."""

from __future__ import annotations

import re
from dataclasses import dataclass

# the example number's digits, with what may come between and around them
_EXAMPLE = re.compile(r"^(?P<pre>[^0-9]*?)1(?P<group>[,. '\u00a0\u202f]?)234(?:(?P<mark>[.,])(?P<frac>[0-9]+))?"
                      r"(?P<post>[^0-9]*)$")
MAX_AFFIX = 8


@dataclass(frozen=True)
class NumberFormat:
    prefix: str
    group: str        # the thousands separator, or ""
    mark: str         # the decimal mark
    decimals: int
    suffix: str

    def write(self, value: float) -> str:
        """`value` as this format writes it (a negative number keeps its sign before the digits)."""
        text = f"{abs(value):,.{self.decimals}f}"
        whole, _, frac = text.partition(".")
        whole = whole.replace(",", self.group)
        sign = "-" if value < 0 and float(f"{abs(value):.{self.decimals}f}") != 0 else ""
        return f"{self.prefix}{sign}{whole}{self.mark + frac if frac else ''}{self.suffix}"


def parse_format(example: str) -> NumberFormat | str:
    """The format an example of 1234.5 shows, or why it shows none."""
    m = _EXAMPLE.match(example)
    if m is None:
        return "write the number 1234.5 as the format shows it, e.g. \"1,234.50\" or \"1.234,50 €\""
    pre, group, mark, frac, post = m.group("pre", "group", "mark", "frac", "post")
    if len(pre) > MAX_AFFIX or len(post) > MAX_AFFIX:
        return f"a currency before or after the number is at most {MAX_AFFIX} characters"
    if frac is None:
        if group in (",", "."):
            return "give the decimals too (\"1,234.50\"), so the decimal mark is not read as a thousands separator"
        return "give the decimals too, e.g. \"1234.50\""
    if group and group == mark:
        return f"`{mark}` cannot be both the thousands separator and the decimal mark"
    if frac.rstrip("0") not in ("", "5") or not frac.startswith("5"):
        return "the decimals of 1234.5 are 5, 50, 500..."
    if any(ch in pre + post for ch in '"\\\n'):
        return "a currency cannot hold a quote, backslash or line break"
    return NumberFormat(pre, group, mark, len(frac), post)
