"""The shape of a plan's output, defined once for the writer, the checker and the readers:
file names per block and split, split sizes, and how many real rows a `mix` adds."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from .. import ir
from .allocate_quota import largest_remainder
from .model import Plan


def block_prefix(plan: Plan, block_id: str) -> str:
    """File names start with the block's id when a spec has several blocks."""
    return "" if len(plan.blocks) == 1 else f"{block_id}."


def output_files(plan: Plan, out_dir: Path, block_id: str) -> dict[str, Path]:
    """split name -> the file holding that split of the block's records."""
    prefix = block_prefix(plan, block_id)
    suffix = "jsonl" if plan.output.format in ("chat", "preference") else plan.output.format
    return {s.name: out_dir / f"{prefix}{s.name}.{suffix}" for s in plan.output.splits}


def split_sizes(output: ir.Output, n_records: int) -> list[int]:
    """Exact rows per split (in the order of `output.splits`) for n synthetic records."""
    return largest_remainder(n_records, [Fraction(str(s.share)) for s in output.splits])


def train_index(output: ir.Output) -> int | None:
    return next((i for i, s in enumerate(output.splits) if s.name == "train"), None)


def real_rows_for_mix(synthetic_train: int, share_percent: float) -> int:
    """Real rows so that they make up share_percent of the train split."""
    share = Fraction(str(share_percent)) / 100
    if share <= 0:
        return 0
    return int(round(Fraction(synthetic_train) * share / (1 - share)))


def mix_rows(output: ir.Output, n_records: int) -> int:
    """Real rows the `mix` adds beside n synthetic records (0 without a mix or a train split)."""
    index = train_index(output)
    if output.mix is None or index is None:
        return 0
    return real_rows_for_mix(split_sizes(output, n_records)[index], output.mix.share)
