"""Property tests: anything the grammar generates compiles or yields diagnostics; compiling
is deterministic; the emitted JSON Schema accepts what the checker accepts; quotas are exact."""

import shutil
from fractions import Fraction
from pathlib import Path

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

from synthlang import ir
from synthlang.compiler import compile
from synthlang.plan.allocate_quota import allocate_quota, largest_remainder
from synthlang.syntax.parser import grammar_path
from synthlang.values import check_record

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(ROOT.glob("specs/*/*.synth")) + [ROOT / "tests" / "contract" / "spec.synth"]

# hypothesis needs the standard lexer view of the grammar; the parser under test is the real one
_GRAMMAR = Lark(grammar_path().read_text(), parser="lalr", lexer="basic")


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=from_lark(_GRAMMAR, start="start"))
def test_generated_specs_compile_or_diagnose(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("gen")
    spec = folder / "spec.synth"
    spec.write_text(text, encoding="utf-8")
    result = compile(spec)  # must not raise
    for d in result.diagnostics:
        assert d.code and d.message
    if result.ok and result.plan is not None:
        assert compile(spec).plan.to_json() == result.plan.to_json()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=300))
def test_arbitrary_text_never_raises(tmp_path_factory, text):
    spec = tmp_path_factory.mktemp("txt") / "spec.synth"
    spec.write_text(text, encoding="utf-8", errors="surrogatepass") if False else \
        spec.write_bytes(text.encode("utf-8", errors="replace"))
    compile(spec)


def test_compile_twice_gives_identical_bytes_from_any_directory(tmp_path, monkeypatch):
    for spec in SPECS:
        first = compile(spec).plan.to_json()
        copy = tmp_path / spec.parent.name
        shutil.copytree(spec.parent, copy, dirs_exist_ok=True)
        monkeypatch.chdir(tmp_path)
        second = compile(Path(spec.parent.name) / spec.name).plan.to_json()
        assert first == second, spec


def _model_part(schema: ir.Schema, row: dict, quota_fields, schemas) -> dict:
    out = {}
    for f in schema.fields:
        if f.source != "model" or f.name in quota_fields:
            continue
        value = row.get(f.name)
        if isinstance(f.type, ir.RecordType) and isinstance(value, dict):
            value = _model_part(schemas[f.type.name], value, (), schemas)
        out[f.name] = value
    return out


def test_json_schema_accepts_every_seed_row_the_checker_accepts():
    for spec in SPECS:
        plan = compile(spec).plan
        for block in plan.blocks:
            schema = plan.schemas[block.schema_name]
            validator = jsonschema.Draft202012Validator(block.json_schema)
            for seeds in plan.seeds.values():
                if seeds.schema_name != block.schema_name:
                    continue
                for row in seeds.rows:
                    check_record(schema, row, plan.schemas.get)  # accepted by the checker
                    # a grown block's model writes only the fields it rewrites; the rest come from the row
                    skip = block.quota_fields if block.grow is None else tuple(
                        f.name for f in schema.fields if f.name not in block.grow.rewrite)
                    part = _model_part(schema, row, skip, plan.schemas)
                    errors = list(validator.iter_errors(part))
                    assert not errors, (spec, row, errors[0].message)


@given(total=st.integers(0, 5000), shares=st.lists(st.integers(0, 1000), min_size=1, max_size=8))
def test_largest_remainder_is_exact_and_close(total, shares):
    if sum(shares) == 0:
        return
    counts = largest_remainder(total, [Fraction(s) for s in shares])
    assert sum(counts) == total
    for c, s in zip(counts, shares):
        assert abs(c - Fraction(total * s, sum(shares))) < 1


@settings(max_examples=200, deadline=None)
@given(count=st.integers(1, 3000),
       dims=st.lists(st.lists(st.integers(0, 50), min_size=1, max_size=5), min_size=1, max_size=3))
def test_joint_quota_marginals_exact(count, dims):
    quotas = []
    for i, weights in enumerate(dims):
        if sum(weights) == 0:
            weights = [1] + weights[1:]
        total = sum(weights)
        shares = tuple(100.0 * w / total for w in weights)
        quotas.append(ir.Quota(field=f"f{i}", values=tuple(f"v{j}" for j in range(len(weights))),
                               shares=shares, unit="percent"))
    cells = allocate_quota(count, tuple(quotas))
    assert sum(n for _, n in cells) == count
    assert all(n >= 0 for _, n in cells)
    for q in quotas:
        expected = largest_remainder(count, [Fraction(str(s)) for s in q.shares])
        got = [sum(n for k, n in cells if k[q.field] == v) for v in q.values]
        assert got == expected


# ---- templates: generated Jinja passes check and renders within its bounds, or is diagnosed ----

_FILTERS = ["upper", "length", "string", "trim", "truncate(3)", "wordwrap(3)", "center(20)", "indent(2)",
            "replace('a', 'bb')", "join(', ')", "default('x')", "first", "reverse", "list", "tojson"]
_ATOMS = st.sampled_from(["label", "n", "'ab'", "3", "[1, 2]", "items", "'x' * 5000", "(label ~ label)"])


def _expr():
    def grow(inner):
        return st.one_of(
            st.tuples(inner, st.sampled_from([" + ", " ~ ", " * ", " and ", " == ", " % "]), inner).map("".join),
            inner.map(lambda e: f"({e})"),
            inner.map(lambda e: f"-{e}"),
            st.tuples(inner, st.sampled_from(_FILTERS)).map(lambda t: f"{t[0]}|{t[1]}"),
            inner.map(lambda e: f"[{e}]"),
        )
    return st.recursive(_ATOMS, grow, max_leaves=40)


def _template():
    def grow(inner):
        return st.one_of(
            st.tuples(inner, inner).map("".join),
            st.tuples(st.sampled_from(["items", "range(3)", "[label]"]), inner)
              .map(lambda t: f"{{% for x in {t[0]} %}}{t[1]}{{% endfor %}}"),
            st.tuples(_expr(), inner).map(lambda t: f"{{% if {t[0]} %}}{t[1]}{{% endif %}}"),
            st.tuples(_expr(), inner).map(lambda t: f"{{% set v = {t[0]} %}}{t[1]}"),
        )
    leaf = st.one_of(_expr().map(lambda e: f"{{{{ {e} }}}}"), st.sampled_from(["text ", "\n", "{% include 'x' %}"]))
    return st.recursive(leaf, grow, max_leaves=30)


def _deep(depth: int, kind: str) -> str:
    open_, close = {"for": ("{% for x in items %}", "{% endfor %}"), "if": ("{% if n %}", "{% endif %}"),
                    "paren": ("{{ " + "(", ")")}[kind]
    inner = "1" if kind == "paren" else "{{ x }}"
    return open_ * depth + inner + close * depth + (" }}" if kind == "paren" else "")


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(template=st.one_of(_template(),
                          st.tuples(st.integers(0, 400), st.sampled_from(["for", "if", "paren"]))
                            .map(lambda t: _deep(*t))))
def test_generated_templates_render_within_bounds_or_are_diagnosed(template):
    from jinja2 import TemplateError
    from jinja2.sandbox import SecurityError

    from synthlang.templates import MAX_RENDERED_CHARS, TemplateLimit, render, template_problem

    problem = template_problem(template)  # must not raise
    if problem is not None:
        message, line = problem
        assert message and 1 <= line <= template.count("\n") + 1
        return
    try:
        out = render(template, {"label": "billing", "n": 2, "items": ["a", "b"]})
    except (TemplateLimit, SecurityError, TemplateError, TypeError, ValueError, ZeroDivisionError,
            OverflowError) as exc:  # the record fails with this reason; nothing else may escape
        assert not isinstance(exc, (RecursionError, MemoryError))
        return
    assert len(out) <= MAX_RENDERED_CHARS
