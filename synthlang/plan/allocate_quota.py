"""allocate_quota: exact integer counts per quota cell.

Each quota line is split by the largest-remainder method, so every marginal is met exactly.
Several quota lines give a joint table: the expected counts are the product of the shares,
rounded by controlled rounding (a max-flow over the fractional cells), which keeps every
marginal exact. Deterministic: ties go to the earlier value.
"""

from __future__ import annotations

from fractions import Fraction

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

    def augment(i: int, seen: set[int]) -> bool:
        # find a column for row i, possibly moving another row's unit (Kuhn's augmenting path)
        for j in row_cells.get(i, []):
            if (i, j) in chosen or j in seen:
                continue
            seen.add(j)
            if col_used[j] < need_c[j]:
                chosen.add((i, j))
                col_used[j] += 1
                col_rows[j].append(i)
                return True
            for k in list(col_rows[j]):
                # try to move row k's unit out of column j
                chosen.discard((k, j))
                col_rows[j].remove(k)
                if augment(k, seen):
                    chosen.add((i, j))
                    col_rows[j].append(i)
                    return True
                chosen.add((k, j))
                col_rows[j].append(k)
        return False

    for i in range(len(rows)):
        for _ in range(need_r[i]):
            if not augment(i, set()):  # pragma: no cover - impossible by the fractional flow
                raise AssertionError("controlled rounding failed")
    for i, j in chosen:
        table[i][j] += 1
    return table


def allocate_quota(count: int, quotas: tuple[ir.Quota, ...]) -> list[tuple[dict, int]]:
    """[(cell key, count)] in a deterministic order; the counts sum to `count`."""
    if not quotas:
        return [({}, count)]
    keys: list[dict] = [{quotas[0].field: v} for v in quotas[0].values]
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

