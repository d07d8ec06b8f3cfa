"""check_output: the `output` block and the `evaluate` blocks."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from .. import ir
from ..diagnostics import Note, did_you_mean
from ..files import is_regular_file, path_text_problem
from ..source import Span
from ..syntax import ast
from .context import Context

COMPARE = ("real", "synthetic", "blend")


def default_output(name: str) -> str:
    """`out/<name>` for a spec without an `output` block; the name is made safe as a folder
    name (a spec file called `...synth` has the stem `..`)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".")[:100]
    return f"out/{safe or 'dataset'}"


def _output_folder(ctx: Context, text: str, span: Span | None) -> Path | None:
    """The output folder, resolved and confined like every path, and kept off every file the
    spec reads: generated files must never overwrite the spec, an import, a seed or test file."""
    unshowable = path_text_problem(text)
    if unshowable:
        ctx.sink.error("E0901", f"the output folder's name: {unshowable}", span)
        return None
    path = ctx.resolve_path(text, span, "E0901", "output")
    if path is None:
        return None
    if path == ctx.root.resolve():
        ctx.sink.error("E0901", "the output folder cannot be the spec's own folder", span,
                       help='write e.g. output "out/my_dataset"')
        return None
    if path.exists() and not path.is_dir():
        ctx.sink.error("E0901", f"the output path `{text}` is a file, not a folder", span)
        return None
    for read in ctx.inputs:
        if read == path or path in read.parents:
            ctx.sink.error("E0901", f"the output folder `{text}` holds `{ctx.rel(read)}`, which the spec reads; "
                           "the generated files could overwrite it", span,
                           help='write the dataset to a folder of its own, e.g. output "out/my_dataset"')
            return None
    return path


def check_output(ctx: Context) -> None:
    sink = ctx.sink
    for ev in ctx.evaluates_ast:  # first: their test files are inputs the output must not touch
        _check_evaluate(ctx, ev)
    decl = ctx.output_ast
    if decl is None:
        name = ctx.dataset.name if ctx.dataset else ctx.entry.stem
        path = _output_folder(ctx, default_output(name), ctx.dataset_ast.name.span if ctx.dataset_ast else None)
        if path is not None:
            ctx.output = ir.Output(path=ctx.rel(path))
    else:
        ok = True
        path = _output_folder(ctx, decl.path.value, decl.path.span)
        ok = path is not None
        spec: dict[str, Any] = {"path": ctx.rel(path) if path is not None else ""}
        seen: dict[str, Span] = {}
        for it in decl.items:
            if it.keyword in seen:
                sink.error("E0102", f"`{it.keyword}` is given twice in the output block", it.span,
                           notes=[Note(seen[it.keyword], "first here")])
                ok = False
                continue
            seen[it.keyword] = it.span
            match it.keyword:
                case "format":
                    if it.name.value not in ir.OUTPUT_FORMATS:
                        sink.error("E0901", f"unknown output format `{it.name.value}`", it.name.span,
                                   help=did_you_mean(it.name.value, ir.OUTPUT_FORMATS)
                                   or f"formats: {', '.join(ir.OUTPUT_FORMATS)}")
                        ok = False
                    elif _format_fields(ctx, it):
                        spec["format"] = it.name.value
                        spec["format_fields"] = tuple(f.value for f in it.fields)
                    else:
                        ok = False
                case "split":
                    splits, names = [], set()
                    for e in it.value:
                        if e.name.value in names:
                            sink.error("E0102", f"split `{e.name.value}` appears twice", e.name.span)
                            ok = False
                        names.add(e.name.value)
                        if not 0 <= e.share.value <= 100:
                            sink.error("E0901", "a split share lies in 0%..100%", e.share.span)
                            ok = False
                        splits.append(ir.Split(name=e.name.value, share=e.share.value))
                    total = sum(s.share for s in splits)
                    if not math.isclose(total, 100.0, abs_tol=1e-9):
                        sink.error("E0901", f"the splits sum to {total:g}%, not 100%", it.span)
                        ok = False
                    spec["splits"] = tuple(splits)
                case "mix":
                    name, share = it.value
                    if name.value not in ctx.seeds_ast:
                        sink.error("E0101", f"unknown seed set `{name.value}`", name.span,
                                   help=did_you_mean(name.value, ctx.seeds_ast))
                        ok = False
                    elif not 0 <= share.value < 100:
                        sink.error("E0901", "the real share of the train split lies in 0%..99%", share.span)
                        ok = False
                    else:
                        spec["mix"] = ir.Mix(seeds=name.value, share=share.value)
        if "mix" in spec and not any(s.name == "train" for s in spec.get("splits", ir.Output(path="x").splits)):
            sink.error("E0901", "`mix` adds real rows to the train split, but there is no `train` split",
                       decl.path.span)
            ok = False
        if ok:
            ctx.output = ir.Output(**spec)


def _check_evaluate(ctx: Context, ev: ast.EvaluateDecl) -> None:
    sink = ctx.sink
    label = ev.label.value
    schemas = [ctx.schemas[g.schema.value] for g in ctx.generates_ast if g.schema.value in ctx.schemas]
    owners = [s for s in schemas if s.field(label) is not None]
    if not owners:
        fields = [f.name for s in schemas for f in s.fields]
        sink.error("E0101", f"no generated schema has a field `{label}`", ev.label.span,
                   help=did_you_mean(label, fields))
        return
    schema = owners[0]
    label_field = schema.field(label)
    assert label_field is not None  # schema is one of the owners of the label
    spans_mode = bool(label_field.mentions)
    if ir.options_of(label_field.type) is None and not spans_mode:
        sink.error("E1001", f"`{label}` is {ir.type_name(label_field.type)}; evaluation needs a class label "
                   "(an enum, a literal union or bool) or a field with `mentions` (span tagging)", ev.label.span)
        return
    spec: dict[str, Any] = {"label": label, "mode": "spans" if spans_mode else "classification"}
    seen = {}
    ok = True
    for it in ev.items:
        if it.keyword in seen:
            sink.error("E0102", f"`{it.keyword}` is given twice", it.span)
            ok = False
            continue
        seen[it.keyword] = it
        match it.keyword:
            case "text" if spans_mode:
                sink.error("E1001", f"`{label}` is itself the text its spans are tagged in; drop `text`",
                           it.span)
                ok = False
            case "text":
                f = schema.field(it.value.value)
                if f is None:
                    sink.error("E0101", f"unknown field `{it.value.value}` in {schema.name}", it.value.span,
                               help=did_you_mean(it.value.value, [x.name for x in schema.fields]))
                    ok = False
                elif not isinstance(f.type, ir.StrType):
                    sink.error("E1001", f"the input field must be text; `{f.name}` is {ir.type_name(f.type)}",
                               it.value.span)
                    ok = False
                else:
                    spec["text"] = f.name
            case "test":
                path = ctx.resolve_path(it.value.value, it.value.span, "E1001", "test")
                if path is None:
                    ok = False
                elif not is_regular_file(path):
                    sink.error("E1001", f"test file `{it.value.value}` not found, or not a regular file",
                               it.value.span)
                    ok = False
                elif path.suffix.lower() not in (".jsonl", ".csv"):
                    sink.error("E1001", "test files are .jsonl or .csv", it.value.span)
                    ok = False
                else:
                    ctx.inputs.append(path)
                    spec["test"] = ctx.rel(path)
            case "compare":
                names = []
                for n in it.value:
                    if n.value not in COMPARE:
                        sink.error("E1001", f"unknown training set `{n.value}`", n.span,
                                   help=did_you_mean(n.value, COMPARE) or f"compare any of: {', '.join(COMPARE)}")
                        ok = False
                    names.append(n.value)
                spec["compare"] = tuple(names)
    for needed in (("test",) if spans_mode else ("text", "test")):
        if needed not in seen:
            sink.error("E0105", f"evaluate `{label}` has no `{needed}` line", ev.label.span)
            ok = False
    if ok:
        ctx.evaluates.append(ir.Evaluate(**spec))


FORMAT_FIELDS = {"chat": ("MESSAGES",), "preference": ("PROMPT", "CHOSEN", "REJECTED")}


def _format_fields(ctx: Context, it: ast.Format) -> bool:
    """`format chat from MESSAGES`: a list of records with a `role` of fixed values and a text
    `content`. `format preference from PROMPT, CHOSEN, REJECTED`: three text fields, the last
    two of one type. Other formats take no fields."""
    sink, name = ctx.sink, it.name.value
    want = FORMAT_FIELDS.get(name, ())
    if len(it.fields) != len(want):
        where = it.fields[0].span if it.fields else it.name.span
        sink.error("E0901", f"format `{name}` takes " + (f"`from {', '.join(want)}`" if want else "no `from` fields"),
                   where)
        return False
    if not want:
        return True
    names = [f.value for f in it.fields]
    twice = next((f for i, f in enumerate(it.fields) if f.value in names[:i]), None)
    if twice is not None:  # `from c, c, c` would write one value as prompt, chosen and rejected
        sink.error("E0901", f"format `{name}` names `{twice.value}` twice; each of {', '.join(want)} is a field "
                   "of its own", twice.span)
        return False
    made = [ctx.schemas[g.schema.value] for g in ctx.generates_ast if g.schema.value in ctx.schemas]
    fields = []
    for f in it.fields:
        owner = next((s for s in made if s.field(f.value) is not None), None)
        if owner is None:
            sink.error("E0101", f"no generated schema has a field `{f.value}`", f.span,
                       help=did_you_mean(f.value, [x.name for s in made for x in s.fields]))
            return False
        fields.append(owner.require(f.value))
    if name == "chat":
        t = fields[0].type
        listed = isinstance(t, ir.ListType) and isinstance(t.item, ir.RecordType)
        item = ctx.schemas.get(t.item.name) if listed else None  # type: ignore[union-attr]
        role = item.field("role") if item else None
        content = item.field("content") if item else None
        if item is None or role is None or content is None or ir.options_of(role.type) is None \
                or not isinstance(content.type, ir.StrType):
            sink.error("E0901", f"`format chat from {fields[0].name}` needs a list of records with a `role` of fixed "
                       "values and a text `content`", it.fields[0].span,
                       help="e.g. `turns: list[Message](2..8)` with `schema Message { role: \"user\" | \"assistant\" "
                            "content: str(1..800) }`")
            return False
    else:
        for fd, node in zip(fields, it.fields):
            if not isinstance(fd.type, ir.StrType):
                sink.error("E0901", f"`format preference` takes text fields; `{fd.name}` is {ir.type_name(fd.type)}",
                           node.span)
                return False
        if fields[1].type != fields[2].type:
            sink.error("E0901", f"`{fields[1].name}` and `{fields[2].name}` are of different types",
                       it.fields[2].span, help="a preference pair compares two answers of one type")
            return False
    return True
