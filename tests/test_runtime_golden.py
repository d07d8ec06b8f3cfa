"""Golden tests for what a run writes: every example spec under specs/, run on the fake engine,
against tests/golden_runtime/<spec>/ (its split files, the manifest and the dataset card). A
change to the runtime that changes a record, a count in the manifest or a line of the card
shows here as a diff; `pytest --update-golden` rewrites the files (review the diff).

The manifest's timings differ run to run and are left out; everything else must match byte
for byte. The fake engine's text is random words from the request's seed, so the records say
nothing about quality: what they pin is which attempts are made, with which seeds and
sampled values, what is accepted or rejected and why, the splits, noise, spans and `_meta`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden_runtime"
SPECS = sorted(p for p in (ROOT / "specs").glob("*/*.synth") if p.name != "common.synth")
# the manifest's keys that hold timings (wall clock, engine time and the rates made from them)
TIMINGS = {"wall_seconds", "engine_seconds_this_run", "records_per_second", "startup_seconds",
           "outside_engine_share", "outside_engine_share_after_startup", "engine_seconds"}


def case_name(spec: Path) -> str:
    return f"{spec.parent.name}__{spec.stem}"


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def run_outputs(spec: Path, out: Path) -> dict[str, str]:
    proc = subprocess.run([sys.executable, "-m", "synthlang.cli", "run", str(spec), "--fake-engine", "--batch", "4",
                           "--no-cache", "--out", str(out), "--progress", "log"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    files = {name: (out / name).read_text(encoding="utf-8") for name in manifest["files"]}
    files["manifest.json"] = json.dumps(without_timings(manifest), indent=1, sort_keys=True) + "\n"
    files["README.md"] = (out / "README.md").read_text(encoding="utf-8")
    return files


def test_every_example_spec_has_its_golden_run():
    names = {case_name(s) for s in SPECS}
    kept = {p.name for p in GOLDEN.iterdir() if p.is_dir()} if GOLDEN.is_dir() else set()
    assert names <= kept, f"no golden run for {sorted(names - kept)}: run pytest --update-golden"
    assert kept <= names, f"golden runs of specs that are gone: {sorted(kept - names)}"


@pytest.mark.parametrize("spec", SPECS, ids=case_name)
def test_a_fake_engine_run_writes_its_golden_files(spec, tmp_path, update_golden):
    got = run_outputs(spec, tmp_path / "out")
    folder = GOLDEN / case_name(spec)
    if update_golden:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():
            if stale.name not in got:
                stale.unlink()
        for name, text in got.items():
            (folder / name).write_text(text, encoding="utf-8")
    assert folder.is_dir(), f"no golden run for {spec.name}: run pytest --update-golden"
    want = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}
    assert sorted(got) == sorted(want), "the run writes other files than its golden run"
    for name in got:
        assert got[name] == want[name], \
            f"{case_name(spec)}/{name} differs; run pytest --update-golden and review the diff"
