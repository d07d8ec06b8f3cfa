"""label_rules: which fields of a block are labels the label check reads its records against.

A label is a field with a handful of values (enum, literal or bool) that the data set is about:
an `evaluate` block's label, or else a quota field. Its text is the `evaluate` block's `text`,
or else every free-text field the model writes. The check needs real rows to learn from: at
least two of the label's values with two rows each among the schema's seed rows."""

from __future__ import annotations

from collections import Counter

from .. import ir
from ..diagnostics import Note
from ..sema.context import Context

MIN_ROWS_PER_LABEL = 2   # a label's rows, leave-one-out, still leave one to learn from
MIN_LABELS = 2


def _is_label(t: ir.Type) -> bool:
    return isinstance(t, ir.EnumType | ir.LiteralType | ir.BoolType)


def label_rules(ctx: Context, g: ir.Generate) -> tuple[ir.LabelRule, ...]:
    schema = ctx.schemas[g.schema_name]
    candidates: list[tuple[str, tuple[str, ...]]] = []
    for e in ctx.evaluates:
        f = schema.field(e.label)
        if e.mode == "classification" and f is not None and _is_label(f.type) and schema.field(e.text) is not None:
            candidates.append((e.label, (e.text,)))
    if not candidates:
        written = tuple(f.name for f in schema.fields if f.source == "model" and isinstance(f.type, ir.StrType)
                        and (g.grow is None or f.name in g.grow.rewrite or not g.grow.rewrite))
        for q in g.quotas:
            f = schema.field(q.field)
            if f is not None and _is_label(f.type) and written:
                candidates.append((q.field, written))
    rows = [r for s in ctx.seeds.values() if s.schema_name == schema.name for r in s.rows]
    rules = []
    for name, text in dict(candidates).items():
        counts = Counter(str(r[name]) for r in rows if r.get(name) is not None
                         and any(isinstance(r.get(t), str) and r[t].strip() for t in text))
        if sum(n >= MIN_ROWS_PER_LABEL for n in counts.values()) < MIN_LABELS:
            if g.label_model is not None:
                ctx.sink.error("E0407", f"the label check of generate {g.id} has too few real rows to learn "
                               f"`{name}` from: it needs {MIN_LABELS} of its values with {MIN_ROWS_PER_LABEL} "
                               "rows each among the seed rows", g.span,
                               help=f"add seed rows of {schema.name}, or drop `label check by`")
            continue
        rules.append(ir.LabelRule(field=name, text=text, model=g.label_model))
    if g.label_model is not None and not candidates:
        ctx.sink.error("E0407", f"generate {g.id} has no label to check: `label check by` needs a quota over an "
                       "enum, literal or bool field, or an `evaluate` block over one", g.span,
                       notes=[Note(g.span, f"generate {g.id}")])
    if "off_label" in g.allow:
        return ()
    return tuple(rules)
