"""The house rules, checked: the package's import graph has no cycles (imports inside functions
count too) and no forbidden direction, and journals keep their format across versions."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from synthlang.runtime.entries import JournalEntry

PACKAGE = Path(__file__).resolve().parents[1] / "synthlang"

# layer -> layers it must never import (the compiler: text to plan; the runtime: plan to data)
FORBIDDEN = {
    "syntax": {"sema", "plan", "runtime", "engines", "evaluate", "report", "cli", "compiler"},
    "sema": {"plan", "runtime", "engines", "evaluate", "report", "cli", "compiler"},
    "plan": {"runtime", "engines", "evaluate", "report", "cli", "compiler", "syntax"},
    "compiler": {"runtime", "engines", "evaluate", "report", "cli"},
    "engines": {"runtime", "evaluate", "report", "cli", "compiler", "sema", "syntax"},
    "runtime": {"syntax", "sema", "evaluate", "report", "cli", "compiler"},
    "evaluate": {"runtime", "engines", "syntax", "sema", "cli", "compiler", "report"},
    "report": {"runtime", "engines", "syntax", "sema", "cli", "compiler"},
    # the language server sits on the compiler alone: no run, no engine
    "lsp": {"runtime", "engines", "evaluate", "report", "cli"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(module: str) -> bool:
    base = PACKAGE.parent / module.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def import_graph() -> dict[str, set[str]]:
    """module -> the synthlang modules it imports anywhere in its body."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.split(".")[0] == "synthlang")
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "synthlang":
                    continue
                # `from pkg import mod` runs pkg/__init__ first: it depends on both
                deps.add(target)
                deps.update(f"{target}.{a.name}" for a in node.names if _exists(f"{target}.{a.name}"))
        graph[name] = {d for d in deps if d != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_graph_is_read_from_every_module():
    graph = import_graph()
    assert "synthlang.runtime.driver" in graph and "synthlang.syntax.parser" in graph
    assert "synthlang.runtime.attempts" in graph["synthlang.runtime.pool"]
    # `from . import ast` depends on the package as well as the module (its __init__ runs first)
    assert {"synthlang.syntax", "synthlang.syntax.ast"} <= graph["synthlang.syntax.parser"]
    # lazy imports inside functions count: the driver starts the Ray pool only on demand
    assert "synthlang.runtime.distributed" in graph["synthlang.runtime.driver"]


def test_no_import_cycles_between_modules():
    assert _cycles(import_graph()) == []


def test_no_import_cycles_between_layers():
    graph = import_graph()
    layers: dict[str, set[str]] = {}
    for module, deps in graph.items():
        layers.setdefault(_layer(module), set()).update(_layer(d) for d in deps if _layer(d) != _layer(module))
    assert _cycles(layers) == []


def test_no_forbidden_direction():
    bad = [(m, d) for m, deps in import_graph().items() for d in deps
           if _layer(d) in FORBIDDEN.get(_layer(m), set())]
    assert bad == []


def test_the_checker_would_see_a_cycle_and_a_forbidden_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _layer("synthlang.runtime.driver") == "runtime" and "syntax" in FORBIDDEN["runtime"]


def test_each_list_of_names_is_the_irs():
    from synthlang import ir
    from synthlang.engines.registry import IMPLEMENTATIONS
    from synthlang.runtime.noise import TEXT_REWRITES

    assert set(IMPLEMENTATIONS) == set(ir.ENGINES) == set(ir.ENGINE_BACKENDS)
    assert set(TEXT_REWRITES) == set(ir.TEXT_RULES)
    assert set(ir.TEXT_RULES) < set(ir.NOISE_RULES)


# every shape of journal line written so far, byte for byte
JOURNAL_LINES = [
    '{"b":"Ticket","c":0,"a":4,"tok":36,"t":0.0,"ok":false,"why":"check: (len(body) > len(subject))"}',
    '{"b":"Ticket","c":1,"a":7,"tok":120,"t":0.51,"ok":false,"why":"invalid_output","err":"{\\"subject\\": 3"}',
    '{"b":"Ticket","c":1,"a":8,"tok":40,"t":0.2,"ok":false,"why":"judge","score":2}',
    '{"b":"Ticket","c":2,"a":0,"ok":false,"why":"mentions_do_not_fit"}',
    '{"b":"Ticket","c":0,"a":0,"tok":69,"t":0.0,"ok":true,"rec":{"subject":"x","_meta":{"id":"Ticket-0-0"}},'
    '"dd":{"body":"y"}}',
]


@pytest.mark.parametrize("line", JOURNAL_LINES)
def test_journal_lines_round_trip_unchanged(line):
    data = json.loads(line)
    again = JournalEntry.from_json(data).to_json()
    assert json.dumps(again, separators=(",", ":"), ensure_ascii=False) == line
