"""allocate_quota: exact integer counts per quota cell.

Each quota line is split by the largest-remainder method, so every marginal is met exactly.
Several quota lines give a joint table: the expected counts are the product of the shares,
rounded by controlled rounding (a max-flow over the fractional cells), which keeps every
marginal exact. Deterministic: ties go to the earlier value.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from .. import ir


def largest_remainder(total: int, shares: list[Fraction]) -> list[int]:
    whole = sum(shares)
    if whole == 0:
        return [0] * len(shares)
    exact = [total * s / whole for s in shares]
    floors = [int(e) for e in exact]
    left = total - sum(floors)
    order = sorted(range(len(shares)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return floors


def _marginal(count: int, quota: ir.Quota) -> list[int]:
    shares = [Fraction(str(s)) for s in quota.shares]
    if quota.unit == "count":
        return [int(s) for s in shares]
    return largest_remainder(count, shares)


def _controlled_round(rows: list[int], cols: list[int]) -> list[list[int]]:
    """An integer table with exactly these row and column sums, each cell the floor or ceiling
    of rows[i] * cols[j] / total."""
    total = sum(rows)
    if total == 0:
        return [[0] * len(cols) for _ in rows]
    exact = [[Fraction(r * c, total) for c in cols] for r in rows]
    table = [[int(x) for x in row] for row in exact]
    need_r = [rows[i] - sum(table[i]) for i in range(len(rows))]
    need_c = [cols[j] - sum(table[i][j] for i in range(len(rows))) for j in range(len(cols))]
    # candidate cells (fractional part > 0), larger fractions first
    cand = sorted(((exact[i][j] - table[i][j], i, j) for i in range(len(rows)) for j in range(len(cols))
                   if exact[i][j] != table[i][j]), key=lambda t: (-t[0], t[1], t[2]))
    chosen: set[tuple[int, int]] = set()
    row_cells: dict[int, list[int]] = {}
    for _, i, j in cand:
        row_cells.setdefault(i, []).append(j)
    col_used = [0] * len(cols)
    col_rows: dict[int, list[int]] = {j: [] for j in range(len(cols))}

    def augment(start: int) -> bool:
        """Kuhn's augmenting path from row `start`, with an explicit stack (a table can have
        thousands of rows; recursion would run out): find a column with room for one more unit
        of the row, possibly moving another row's unit out of a full column."""
        seen: set[int] = set()
        # a frame: [row, next candidate index, column being freed, rows to try moving, next index]
        stack: list[list[Any]] = [[start, 0, None, [], 0]]
        returned: bool | None = None
        while stack:
            frame = stack[-1]
            i = frame[0]
            if returned is not None:  # the row moved out of column frame[2] answered
                j, k = frame[2], frame[3][frame[4] - 1]
                if returned:
                    chosen.add((i, j))
                    col_rows[j].append(i)
                    stack.pop()
                    continue  # returned stays True for the frame below
                chosen.add((k, j))  # undo the tentative move
                col_rows[j].append(k)
                returned = None
            if frame[2] is not None and frame[4] < len(frame[3]):
                j, k = frame[2], frame[3][frame[4]]
                frame[4] += 1
                chosen.discard((k, j))
                col_rows[j].remove(k)
                stack.append([k, 0, None, [], 0])
                continue
            frame[2] = None
            cells = row_cells.get(i, [])
            while frame[1] < len(cells):
                j = cells[frame[1]]
                frame[1] += 1
                if (i, j) in chosen or j in seen:
                    continue
                seen.add(j)
                if col_used[j] < need_c[j]:
                    chosen.add((i, j))
                    col_used[j] += 1
                    col_rows[j].append(i)
                    returned = True
                    break
                frame[2], frame[3], frame[4] = j, list(col_rows[j]), 0
                break
            else:
                returned = False
            if returned is not None:
                stack.pop()
                continue
        return bool(returned)

    for i in range(len(rows)):
        for _ in range(need_r[i]):
            if not augment(i):  # pragma: no cover - impossible by the fractional flow
                raise AssertionError("controlled rounding failed")
    for i, j in chosen:
        table[i][j] += 1
    return table


def allocate_quota(count: int, quotas: tuple[ir.Quota, ...]) -> list[tuple[dict[str, Any], int]]:
    """[(cell key, count)] in a deterministic order; the counts sum to `count`."""
    if not quotas:
        return [({}, count)]
    keys: list[dict[str, Any]] = [{quotas[0].field: v} for v in quotas[0].values]
    counts: list[int] = _marginal(count, quotas[0])
    for q in quotas[1:]:
        table = _controlled_round(counts, _marginal(count, q))
        new_keys, new_counts = [], []
        for i, key in enumerate(keys):
            for j, v in enumerate(q.values):
                new_keys.append({**key, q.field: v})
                new_counts.append(table[i][j])
        keys, counts = new_keys, new_counts
    return list(zip(keys, counts))

