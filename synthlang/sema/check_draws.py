"""check_draws: every `~ draw(...)` against the seed set it draws from.

A draw names a seed set, and optionally a column of it, a numeric column of weights and a
sibling field whose value the drawn row's column of the same name must equal. The seed file is
read once (load_seeds); while its rows are checked, a RowProfile keeps what the draws need to
know of them (which values the `matching` columns hold, whether every weight is a number, which
row first lacks a column or holds a value the field cannot take), so a file of any size is
checked without its rows being kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import ir
from ..diagnostics import Note, did_you_mean
from ..syntax import ast
from ..values import ValueError_, check_value, match_key
from .context import Context


@dataclass(frozen=True)
class DrawUse:
    """A field drawn from a seed set: the record it is in, the field and its sampler."""

    schema: ir.Schema
    field: ir.FieldDef
    sampler: ir.DrawSampler


def draw_uses(ctx: Context) -> dict[str, list[DrawUse]]:
    """The draws of every schema, by the seed set they name."""
    uses: dict[str, list[DrawUse]] = {}
    for schema in ctx.schemas.values():
        for f in schema.fields:
            if isinstance(f.sampler, ir.DrawSampler):
                uses.setdefault(f.sampler.seeds, []).append(DrawUse(schema, f, f.sampler))
    return uses


def used_otherwise(ctx: Context) -> set[str]:
    """Seed sets that examples, grown records or `mix` read: their rows go into the plan."""
    names: set[str] = set()
    for g in ctx.generates_ast:
        for it in g.items:
            if isinstance(it, ast.Examples):
                names.add(it.seeds.value)
        if g.source is not None:
            names.add(g.source.value)
    if ctx.output_ast is not None:
        for it in ctx.output_ast.items:
            if isinstance(it, ast.Keyword) and it.keyword == "mix" and isinstance(it.value, tuple):
                names.add(it.value[0].value)
    return names


@dataclass
class RowProfile:
    """What the draws from one seed set need to know of its rows, gathered row by row."""

    uses: list[DrawUse]
    schemas: Any                                      # name -> ir.Schema | None
    rows: int = 0
    lacking: dict[str, int] = field(default_factory=dict)         # column -> first row without it
    values: dict[str, set[str]] = field(default_factory=dict)     # a matching column -> its values (match_key)
    bad_weight: dict[str, tuple[int, Any]] = field(default_factory=dict)   # column -> first row, value
    weight_totals: dict[tuple[str, str | None], dict[str, float]] = field(default_factory=dict)
    misfits: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)  # (schema.field) -> row, why

    def add(self, row_name: int, row: dict[str, Any]) -> None:
        """One row that fits the seed set's schema (`row_name`: how the user counts it)."""
        self.rows += 1
        for use in self.uses:
            s = use.sampler
            for column in filter(None, (s.column, s.weight, s.matching)):
                if row.get(column) is None:
                    self.lacking.setdefault(column, row_name)
            if s.matching is not None:
                self.values.setdefault(s.matching, set()).add(match_key([row.get(s.matching)]))
            if s.weight is not None:
                w = row.get(s.weight)
                if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
                    self.bad_weight.setdefault(s.weight, (row_name, w))
                else:
                    totals = self.weight_totals.setdefault((s.weight, s.matching), {})
                    key = match_key([row.get(s.matching)]) if s.matching else ""
                    totals[key] = totals.get(key, 0.0) + float(w)
            if s.column is None and isinstance(use.field.type, ir.RecordType):
                schema = self.schemas(use.field.type.name)
                if schema is not None:
                    self._whole(row_name, row, schema)
            where = (use.schema.name, use.field.name)
            if s.column is not None and where not in self.misfits and row.get(s.column) is not None:
                try:
                    check_value(use.field.type, row[s.column], self.schemas, require_generated=False)
                except ValueError_ as exc:
                    self.misfits[where] = (row_name, exc.message)

    def _whole(self, row_name: int, row: dict[str, Any], schema: ir.Schema) -> None:
        """A row drawn whole must hold every field its record needs (no model writes it)."""
        for f in schema.fields:
            if not f.optional and row.get(f.name) is None:
                self.lacking.setdefault("\0" + f.name, row_name)


def check_draws(ctx: Context) -> None:
    uses = draw_uses(ctx)
    fields = {(s.name.value, f.name.value): f for s in ctx.schemas_ast.values() for f in s.fields}
    for name, group in uses.items():
        for use in group:
            node = fields.get((use.schema.name, use.field.name))
            if node is None or not isinstance(node.source, ast.SamplerNode):
                continue
            _check_use(ctx, use, node.source, ctx.draw_profiles.get(name))


def _check_use(ctx: Context, use: DrawUse, node: ast.SamplerNode, profile: RowProfile | None) -> None:
    sink, s, f = ctx.sink, use.sampler, use.field
    ref, matching, weight = node.args
    if s.seeds not in ctx.seeds_ast:
        sink.error("E0101", f"unknown seed set `{s.seeds}`", ref.seeds.span,
                   help=did_you_mean(s.seeds, ctx.seeds_ast)
                   or f"declare it with `seeds {s.seeds} from \"...\" as ...`")
        return
    seeds = ctx.seeds.get(s.seeds)
    source = ctx.schemas.get(ctx.seeds_ast[s.seeds].schema.value)
    if seeds is None or source is None or profile is None:
        return  # its file or its schema has errors of its own, already reported
    declared = [Note(seeds.span, "seed set declared here")]
    where = f"`{seeds.path}`"
    if isinstance(f.type, ir.ListType):
        sink.error("E0212", f"`{f.name}` is a list; a draw gives one row, or one value of a column",
                   node.span, help="draw into a record or a single value, or make the list's items drawn")
        return
    if s.column is None:
        if not isinstance(f.type, ir.RecordType) or f.type.name != source.name:
            sink.error("E0212", f"`{f.name}` is {ir.type_name(f.type)}, but a row of `{s.seeds}` is a "
                       f"{source.name}", node.span, notes=declared,
                       help=f"declare `{f.name}: {source.name}`, or draw one column (`draw({s.seeds}.<column>)`)")
            return
        for g in source.fields:
            first = profile.lacking.get("\0" + g.name)
            if first is not None:
                sink.error("E0212", f"row {first} of {where} has no `{g.name}`; a record drawn whole takes every "
                           f"field from its row", ref.span, notes=declared,
                           help=f"give every row a `{g.name}`, or make it optional (`{g.name}: ...?`)")
                return
    else:
        column = source.field(s.column)
        if column is None:
            sink.error("E0212", f"`{s.seeds}` has no column `{s.column}` ({source.name} has no such field)",
                       ref.column.span, notes=declared,
                       help=did_you_mean(s.column, [g.name for g in source.fields]))
            return
        if isinstance(column.type, ir.RecordType) != isinstance(f.type, ir.RecordType) \
                or ir.type_name(column.type).split("(")[0] != ir.type_name(f.type).split("(")[0] \
                and not (ir.options_of(f.type) is not None and isinstance(column.type, ir.StrType)):
            sink.error("E0212", f"`{s.seeds}.{s.column}` is {ir.type_name(column.type)}; `{f.name}` is "
                       f"{ir.type_name(f.type)}", ref.column.span, notes=declared)
            return
        misfit = profile.misfits.get((use.schema.name, f.name))
        if misfit is not None:
            sink.error("E0212", f"row {misfit[0]} of {where}: its `{s.column}` does not fit `{f.name}` "
                       f"({ir.type_name(f.type)}): {misfit[1]}", ref.column.span, notes=declared,
                       help=f"widen `{f.name}`'s type, or fix the rows")
            return
        first = profile.lacking.get(s.column)
        if first is not None:
            sink.error("E0212", f"row {first} of {where} has no `{s.column}` to draw", ref.column.span,
                       notes=declared, help="give every row a value in that column")
            return
    if profile.rows == 0:
        sink.error("E0212", f"`{s.seeds}` has no rows to draw from", ref.seeds.span, notes=declared)
        return
    if s.weight is not None and not _weights_ok(ctx, s, source, weight, profile, where, declared):
        return
    if s.matching is not None:
        _check_matching(ctx, use, source, matching, profile, where, declared)


def _weights_ok(ctx: Context, s: ir.DrawSampler, source: ir.Schema, weight: ast.DrawRef, profile: RowProfile,
                where: str, declared: list[Note]) -> bool:
    sink = ctx.sink
    column = source.field(s.weight or "")
    span = weight.column.span if weight.column is not None else weight.span
    if column is None:
        sink.error("E0212", f"`{s.seeds}` has no column `{s.weight}`", span, notes=declared,
                   help=did_you_mean(s.weight or "", [g.name for g in source.fields]))
        return False
    if not isinstance(column.type, (ir.IntType, ir.FloatType)):
        sink.error("E0212", f"the weights `{s.seeds}.{s.weight}` are {ir.type_name(column.type)}, not numbers",
                   span, notes=declared, help="weight by an int or float column")
        return False
    bad = profile.bad_weight.get(s.weight or "")
    if bad is not None:
        shown = "no weight" if bad[1] is None else f"the weight {bad[1]!r}"
        sink.error("E0212", f"row {bad[0]} of {where} has {shown}; weights are non-negative numbers", span,
                   notes=declared)
        return False
    totals = profile.weight_totals.get((s.weight or "", s.matching), {})
    if not totals or all(t <= 0 for t in totals.values()):
        sink.error("E0212", f"the weights `{s.seeds}.{s.weight}` add up to zero", span, notes=declared)
        return False
    return True


def possible_values(f: ir.FieldDef) -> tuple[Any, ...] | None:
    """Every value a sampled field can be drawn as, when that is a finite set."""
    options = ir.options_of(f.type)
    if options is not None:
        return options
    s = f.sampler
    if isinstance(s, ir.PickSampler):
        return s.values
    if isinstance(s, ir.PickBySampler):
        return tuple(dict.fromkeys(v for c in (*s.cases, *([s.default] if s.default else [])) for v in c.values or ()))
    return None


def _check_matching(ctx: Context, use: DrawUse, source: ir.Schema, matching: ast.Name, profile: RowProfile,
                    where: str, declared: list[Note]) -> None:
    sink, s = ctx.sink, use.sampler
    cond = use.schema.field(s.matching or "")
    if cond is None or cond.name == use.field.name:
        sink.error("E0212", f"`{s.matching}` is not another field of {use.schema.name}", matching.span,
                   help=did_you_mean(s.matching or "", [g.name for g in use.schema.fields if g.name != use.field.name]))
        return
    if source.field(cond.name) is None:
        sink.error("E0212", f"`{s.seeds}` has no column `{cond.name}` to match {use.schema.name}.{cond.name} against",
                   matching.span, notes=declared, help=f"add a `{cond.name}` field to {source.name}")
        return
    if cond.source == "derived":
        sink.error("E0212", f"`{use.field.name}` is drawn matching `{cond.name}`, which is derived after generation",
                   matching.span, help="match a sampled or quota field")
        return
    if cond.source == "model" and use.schema.name not in {g.schema.value for g in ctx.generates_ast}:
        sink.error("E0212", f"`{use.field.name}` is drawn matching `{cond.name}`, which the model writes; it is not "
                   f"known when `{use.field.name}` is drawn", matching.span, help=f"sample `{cond.name}`")
        return
    if cond.source != "sampled":
        return  # a quota field (its cells are checked when the block is planned) or model-written there
    values = possible_values(cond)
    if values is None:
        sink.error("E0212", f"`{cond.name}` can take values no row may hold; a draw matches a field with a finite "
                   "set of values (an enum, a literal union, a bool or a `pick`)", matching.span)
        return
    missing = [v for v in values if match_key([v]) not in profile.values.get(cond.name, set())]
    if missing:
        shown = ", ".join(str(v).lower() if isinstance(v, bool) else str(v) for v in missing[:5])
        sink.error("E0212", f"no row of {where} has {cond.name} = {shown}, so `{use.field.name}` cannot be drawn "
                   "for it", matching.span, notes=declared,
                   help=f"add rows for {'those values' if len(missing) > 1 else 'that value'}, or stop drawing them")
        return
    if s.weight is not None:
        totals = profile.weight_totals.get((s.weight, s.matching), {})
        zero = [v for v in values if totals.get(match_key([v]), 0.0) <= 0]
        if zero:
            sink.error("E0212", f"the rows of {where} with {cond.name} = {zero[0]} all weigh zero", matching.span,
                       notes=declared)
