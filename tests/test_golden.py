"""Golden tests: tests/golden/<case>/spec.synth in, the plan (plan.json) or the rendered
diagnostics (diagnostics.txt) out. `pytest --update-golden` rewrites them; review the diff."""

from pathlib import Path

import pytest

from synthlang.compiler import compile
from synthlang.diagnostics import render_all_text

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "spec.synth").is_file())


@pytest.mark.parametrize("case", CASES)
def test_golden(case, monkeypatch, update_golden):
    folder = GOLDEN / case
    monkeypatch.chdir(folder)  # diagnostics show paths relative to the working directory
    result = compile(Path("spec.synth"))
    outputs = {"diagnostics.txt": render_all_text(result.diagnostics) + "\n"}
    if result.plan is not None and result.ok:
        outputs["plan.json"] = result.plan.to_json()
    if update_golden:
        for name, text in outputs.items():
            (folder / name).write_text(text, encoding="utf-8")
        for stale in {"diagnostics.txt", "plan.json"} - set(outputs):
            (folder / stale).unlink(missing_ok=True)
    expected = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()
                if p.name in ("diagnostics.txt", "plan.json")}
    assert set(outputs) == set(expected), "run pytest --update-golden to create the expected files"
    for name, text in outputs.items():
        assert text == expected[name], f"{case}/{name} differs; run pytest --update-golden and review the diff"
