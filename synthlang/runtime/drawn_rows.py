"""The rows `~ draw(...)` takes values from, read once per run and indexed per draw.

A seed set only draws read stays in its file (ir.SeedSet.inline is false): the run reads it
from the spec's folder, checks it against the digest and row count the plan holds (a file edited
since the plan was made is refused, not silently drawn from), and checks every row against the
schema as the compiler did. Each draw gets an index: the rows' places (by the value of the
`matching` column when there is one) and their cumulative weights, so a draw is one bisection."""

from __future__ import annotations

import copy
import hashlib
import random
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

from .. import ir
from ..files import inside, read_bytes
from ..plan.model import Plan
from ..seed_files import MAX_SEED_BYTES, read_rows
from ..values import ValueError_, check_record, match_key


class DrawnFileError(Exception):
    """A file a draw reads is missing, unreadable or not the one the plan was made from."""


@dataclass
class _Index:
    rows: list[int]                  # places in the seed set's rows
    cumulative: list[float] | None   # running sums of their weights; None: uniform


def _file_bytes(seeds: ir.SeedSet, spec_dir: Path) -> bytes:
    """The bytes of a file-kept seed set, read from inside `spec_dir` and checked against the
    plan's digest. Raises DrawnFileError."""
    root = spec_dir.resolve()
    path = (root / seeds.path).resolve()
    if not inside(path, root):
        raise DrawnFileError(f"seed file `{seeds.path}` leaves the spec's folder tree")
    try:
        data = read_bytes(path, MAX_SEED_BYTES)
    except OSError as exc:
        raise DrawnFileError(f"cannot read seed file `{seeds.path}`: {exc.strerror or exc}") from None
    if hashlib.sha256(data).hexdigest() != seeds.sha256:
        raise DrawnFileError(f"seed file `{seeds.path}` changed since the plan was made; compile the spec again")
    return data


def file_problems(plan: Plan, spec_dir: Path) -> list[str]:
    """Why files that draws read cannot be drawn from as the plan says (a plan run on its own:
    compiling a spec reads them anew); empty when all is well."""
    problems = []
    for seeds in plan.seeds.values():
        if not seeds.inline:
            try:
                _file_bytes(seeds, spec_dir)
            except DrawnFileError as exc:
                problems.append(str(exc))
    return problems


class DrawnRows:
    def __init__(self, plan: Plan, spec_dir: Path | None):
        self.plan = plan
        self.spec_dir = spec_dir
        self._rows: dict[str, tuple[dict[str, Any], ...]] = {}
        self._indexes: dict[tuple[str, str | None, str | None], dict[str, _Index]] = {}

    def rows(self, name: str) -> tuple[dict[str, Any], ...]:
        if name not in self._rows:
            seeds = self.plan.seeds[name]
            self._rows[name] = seeds.rows if seeds.inline else self._read(seeds)
        return self._rows[name]

    def _read(self, seeds: ir.SeedSet) -> tuple[dict[str, Any], ...]:
        if self.spec_dir is None:
            raise DrawnFileError(f"seed set `{seeds.name}` is drawn from `{seeds.path}`, but the run knows no folder "
                                 "to read it from")
        data = _file_bytes(seeds, self.spec_dir)
        schema = self.plan.schemas[seeds.schema_name]
        rows: list[dict[str, Any]] = []
        try:
            text = data.decode("utf-8-sig")
            for line, row, problem in read_rows(text, Path(seeds.path).suffix, schema):
                if problem is not None:
                    raise ValueError_(f"line {line}: {problem}")
                rows.append(check_record(schema, {k: v for k, v in row.items() if schema.field(k)},
                                         self.plan.schemas.get))
        except (UnicodeDecodeError, ValueError_) as exc:
            why = exc.message if isinstance(exc, ValueError_) else "not UTF-8 text"
            raise DrawnFileError(f"seed file `{seeds.path}` does not hold the rows the plan was made from: "
                                 f"{why}") from None
        if seeds.row_count is not None and len(rows) != seeds.row_count:
            raise DrawnFileError(f"seed file `{seeds.path}` holds {len(rows)} rows; the plan was made from "
                                 f"{seeds.row_count}")
        return tuple(rows)

    def _index(self, s: ir.DrawSampler) -> dict[str, _Index]:
        key = (s.seeds, s.weight, s.matching)
        if key not in self._indexes:
            places: dict[str, list[int]] = {}
            rows = self.rows(s.seeds)
            for i, row in enumerate(rows):
                places.setdefault(match_key([row.get(s.matching)]) if s.matching else "", []).append(i)
            index = {}
            for value, at in places.items():
                cumulative = list(accumulate(float(rows[i][s.weight]) for i in at)) if s.weight else None
                index[value] = _Index(at, cumulative)
            self._indexes[key] = index
        return self._indexes[key]

    def rows_matching(self, s: ir.DrawSampler, when: Any = None) -> int:
        """How many rows the draw chooses among for the matching field's value `when`."""
        index = self._index(s).get(match_key([when]) if s.matching else "")
        return len(index.rows) if index is not None else 0

    def draw(self, s: ir.DrawSampler, rng: random.Random, when: Any = None) -> Any:
        """A row (a copy) or one column's value; `when`: the matching field's value. Raises
        LookupError when no row can be drawn for it (the compiler refuses such specs)."""
        index = self._index(s).get(match_key([when]) if s.matching else "")
        if index is None or (index.cumulative is not None and index.cumulative[-1] <= 0):
            raise LookupError(f"no row of `{s.seeds}` has {s.matching} = {when!r}")
        if index.cumulative is None:
            place = index.rows[rng.randrange(len(index.rows))]
        else:
            at = bisect_right(index.cumulative, rng.random() * index.cumulative[-1])
            place = index.rows[min(at, len(index.rows) - 1)]
        row = self.rows(s.seeds)[place]
        if s.column is not None:
            return row[s.column]
        return copy.deepcopy(row)

