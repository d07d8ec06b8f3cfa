"""collect_declarations: the file-wide symbol tables; duplicate names are reported here."""

from __future__ import annotations

from ..diagnostics import Note
from ..source import Span
from ..syntax import ast
from .context import Context

BUILTIN_TYPES = ("str", "int", "float", "bool", "date", "list")


def collect_declarations(ctx: Context) -> None:
    types: dict[str, ast.EnumDecl | ast.SchemaDecl] = {}
    gen_ids: dict[str, ast.GenerateDecl] = {}

    def dup(kind: str, name: ast.Name, first_span: Span) -> None:
        ctx.sink.error("E0102", f"{kind} `{name.value}` is declared more than once", name.span,
                       notes=[Note(first_span, "first declared here")])

    for module in ctx.modules:
        for decl in module.decls:
            match decl:
                case ast.SettingsBlock(keyword="dataset"):
                    if ctx.dataset_ast is not None:
                        ctx.sink.error("E0102", "a spec has one `dataset` block", decl.name.span,
                                       notes=[Note(ctx.dataset_ast.name.span, "first declared here")])
                    else:
                        ctx.dataset_ast = decl
                case ast.SettingsBlock(keyword="model"):
                    if decl.name.value in ctx.models_ast:
                        dup("model", decl.name, ctx.models_ast[decl.name.value].name.span)
                    else:
                        ctx.models_ast[decl.name.value] = decl
                case ast.EnumDecl() | ast.SchemaDecl():
                    name = decl.name.value
                    if name in BUILTIN_TYPES:
                        ctx.sink.error("E0102", f"`{name}` is a built-in type and cannot be redeclared",
                                       decl.name.span)
                    elif name in types:
                        dup("type", decl.name, types[name].name.span)
                    else:
                        types[name] = decl
                        if isinstance(decl, ast.EnumDecl):
                            ctx.enums_ast[name] = decl
                        else:
                            ctx.schemas_ast[name] = decl
                case ast.SeedsDecl():
                    if decl.name.value in ctx.seeds_ast:
                        dup("seed set", decl.name, ctx.seeds_ast[decl.name.value].name.span)
                    else:
                        ctx.seeds_ast[decl.name.value] = decl
                case ast.GenerateDecl():
                    ident = decl.alias or decl.schema
                    if ident.value in gen_ids:
                        other = gen_ids[ident.value]
                        ctx.sink.error("E0102", f"two generate blocks are named `{ident.value}`", ident.span,
                                       notes=[Note((other.alias or other.schema).span, "first declared here")],
                                       help=f"name the second one: `generate {decl.schema.value} as other_name {{`")
                    else:
                        gen_ids[ident.value] = decl
                        ctx.generates_ast.append(decl)
                case ast.OutputDecl():
                    if ctx.output_ast is not None:
                        ctx.sink.error("E0102", "a spec has one `output` block", decl.path.span,
                                       notes=[Note(ctx.output_ast.path.span, "first declared here")])
                    else:
                        ctx.output_ast = decl
                case ast.EvaluateDecl():
                    ctx.evaluates_ast.append(decl)
