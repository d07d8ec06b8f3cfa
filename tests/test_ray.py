"""Scale-out on a local Ray cluster (the machine's CPUs): the merged output has exact quotas
and no duplicates, equals a single-process run, survives a killed worker, and resumes after
the driver is killed."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests/runtime_specs/noisy_addresses.synth"


def run(out, *extra, env=None, wait=True):
    cmd = [sys.executable, "-m", "synthlang.cli", "run", str(SPEC), "--out", str(out), "--fake-engine",
           "--progress", "log", *extra]
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    if wait:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    return proc


def rows(out):
    return [json.loads(l) for split in ("train", "test") for l in (out / f"{split}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    run(out)
    return out


def _ray_worker_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-f", "ray::_Worker"], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def _stop_ray_leftovers(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def test_ray_run_equals_single_process_with_exact_quotas(tmp_path, reference):
    out = tmp_path / "out"
    run(out, "--ray", "--workers", "2")
    got = rows(out)
    assert Counter(r["kind"] for r in got) == Counter({"delivery": 20, "invoice": 20})
    ids = [r["_meta"]["id"] for r in got]
    assert len(ids) == len(set(ids)) == 40
    assert len({r["letter"] for r in got}) == 40  # dedup held across shards
    for split in ("train.jsonl", "test.jsonl"):
        assert (out / split).read_text() == (reference / split).read_text()


def test_killed_worker_is_replaced_and_nothing_is_lost(tmp_path, reference):
    out = tmp_path / "out"
    proc = run(out, "--ray", "--workers", "2", env={"SYNTHLANG_FAKE_DELAY": "0.1"}, wait=False)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not _ray_worker_pids():
            time.sleep(0.2)
        pids = _ray_worker_pids()
        assert pids, "no Ray worker came up"
        time.sleep(1.5)
        os.kill(pids[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    finally:
        _stop_ray_leftovers(proc)
    for split in ("train.jsonl", "test.jsonl"):
        assert (out / split).read_text() == (reference / split).read_text()


def test_killed_driver_resumes_on_ray(tmp_path, reference):
    out = tmp_path / "out"
    proc = run(out, "--ray", "--workers", "2", env={"SYNTHLANG_FAKE_DELAY": "0.1"}, wait=False)
    journal = out / ".synth/journal.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not journal.exists() or len(journal.read_text().splitlines()) < 8):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the cluster it started
    proc.wait(timeout=60)
    assert not (out / "train.jsonl").exists()
    run(out, "--ray", "--workers", "2")
    for split in ("train.jsonl", "test.jsonl"):
        assert (out / split).read_text() == (reference / split).read_text()
    accepted = [(e["c"], e["a"]) for e in map(json.loads, journal.read_text().splitlines()) if e.get("ok")]
    assert len(accepted) == len(set(accepted)) == 40
