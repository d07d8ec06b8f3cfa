"""Damaged on-disk state, as a crash, a full disk or a careless hand leaves it: a result cache that
is not a database, stored JSON nested or sized to exhaust the reader, a run's manifest, plan or
evaluation of the wrong shape. Each case is a clear message naming the file, or a recovery that
loses nothing the journal holds; never an internal error (exit 70)."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from pathlib import Path

import pytest
from test_hostile import MINIMAL, snapshot, synthc

from synthlang.runtime import journal as journal_module
from synthlang.runtime.journal import JournalCorrupt, read_entries

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def ran(tmp_path):
    """A spec run once with the fake engine: (spec, its output folder)."""
    spec = tmp_path / "t.synth"
    spec.write_text(MINIMAL)
    proc = synthc("run", spec, "--fake-engine")
    assert proc.returncode == 0, proc.stderr
    return spec, tmp_path / "out" / "t"


def cache_file(out: Path) -> Path:
    return out / ".synth" / "cache" / "results.sqlite"


def journal_file(out: Path) -> Path:
    return out / ".synth" / "journal.jsonl"


def lines_naming(stderr: str, what: str) -> list[str]:
    return [line for line in stderr.splitlines() if what in line]


def entries_of(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return con.execute("select count(*) from results").fetchone()[0]


def damage(path: Path, how: str) -> bytes:
    """Damage a cache file: random bytes over it, or the file cut to half its size. Returns
    the damaged bytes."""
    if how == "garbage":
        path.write_bytes(os.urandom(8192))
    else:
        os.truncate(path, path.stat().st_size // 2)
    for extra in ("-wal", "-shm"):
        Path(str(path) + extra).unlink(missing_ok=True)
    return path.read_bytes()


# ---- a result cache that is not a database ------------------------------------------------------

@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_a_run_sets_a_damaged_cache_aside_and_starts_a_new_one(ran, how):
    spec, out = ran
    records = (out / "train.jsonl").read_bytes()
    damaged = damage(cache_file(out), how)
    proc = synthc("run", spec, "--fake-engine")
    assert proc.returncode == 0, proc.stderr
    warned = lines_naming(proc.stderr, "is damaged")
    assert len(warned) == 1 and str(cache_file(out)) in warned[0], proc.stderr
    aside = cache_file(out).with_name("results.sqlite.damaged")
    assert aside.read_bytes() == damaged              # kept as it was, for whoever wants to look
    assert (out / "train.jsonl").read_bytes() == records   # the journal held them
    # the new cache works: a run from scratch fills it, and the next one is served by it
    assert synthc("run", spec, "--fake-engine", "--fresh").returncode == 0
    assert entries_of(cache_file(out)) == 2
    again = synthc("run", spec, "--fake-engine", "--fresh")
    assert again.returncode == 0 and "0 sent, 2 reused" in again.stderr
    assert not lines_naming(again.stderr, "is damaged")
    assert (out / "train.jsonl").read_bytes() == records


def test_a_cache_damaged_inside_is_set_aside_when_found(tmp_path):
    spec = tmp_path / "t.synth"
    spec.write_text(MINIMAL.replace("count 2", "count 300"))
    assert synthc("run", spec, "--fake-engine").returncode == 0
    out = tmp_path / "out" / "t"
    records = (out / "train.jsonl").read_bytes()
    db = cache_file(out)
    with sqlite3.connect(db) as con:  # everything in the main file, so the damage below is all there is
        con.execute("pragma wal_checkpoint(truncate)")
    size = db.stat().st_size
    assert size > 8 * 4096
    with open(db, "r+b") as fh:  # the header and the schema stay: the file opens, its tables do not read
        fh.seek(2 * 4096)
        fh.write(os.urandom(size - 3 * 4096))
    proc = synthc("run", spec, "--fake-engine", "--fresh")
    assert proc.returncode == 0, proc.stderr
    assert len(lines_naming(proc.stderr, "is damaged")) == 1, proc.stderr
    assert db.with_name("results.sqlite.damaged").is_file()
    assert (out / "train.jsonl").read_bytes() == records


def test_plan_goes_on_without_a_damaged_cache_and_changes_nothing(ran):
    spec, out = ran
    damage(cache_file(out), "garbage")
    before = snapshot(spec.parent)
    proc = synthc("plan", spec)
    assert proc.returncode == 0, proc.stderr
    warned = lines_naming(proc.stderr, "is damaged")
    assert len(warned) == 1 and str(cache_file(out)) in warned[0], proc.stderr
    assert snapshot(spec.parent) == before


def test_cache_info_reports_a_damaged_cache(ran):
    spec, out = ran
    damage(cache_file(out), "truncated")
    proc = synthc("cache", "info", spec)
    assert proc.returncode == 1
    said = proc.stdout + proc.stderr
    assert str(cache_file(out)) in said and "damaged" in said and "prune --all" in said, said


def test_cache_prune_all_removes_a_damaged_cache(ran):
    spec, out = ran
    damage(cache_file(out), "garbage")
    refused = synthc("cache", "prune", "--max-size", "1M", spec)
    assert refused.returncode == 1 and "--all" in refused.stderr and cache_file(out).is_file()
    proc = synthc("cache", "prune", "--all", spec)
    assert proc.returncode == 0, proc.stderr
    assert not any(p.name.startswith("results.sqlite") for p in cache_file(out).parent.iterdir())
    rerun = synthc("run", spec, "--fake-engine", "--fresh")
    assert rerun.returncode == 0 and not lines_naming(rerun.stderr, "is damaged")


def test_cache_prune_all_removes_a_copy_set_aside(ran):
    spec, out = ran
    damage(cache_file(out), "garbage")
    assert synthc("run", spec, "--fake-engine").returncode == 0
    assert cache_file(out).with_name("results.sqlite.damaged").is_file()
    proc = synthc("cache", "prune", "--all", spec)
    assert proc.returncode == 0, proc.stderr
    assert not cache_file(out).with_name("results.sqlite.damaged").exists()
    assert entries_of(cache_file(out)) == 0


_OPEN_AT = """
import sys, time
from pathlib import Path
from synthlang.engines.base import GenerationResult
from synthlang.runtime.cache import ResultCache
start = float(sys.argv[2])
while time.time() < start:
    pass
cache = ResultCache(Path(sys.argv[1]))
cache.put_many([(sys.argv[3], GenerationResult("text", tokens=1, seconds=0.1))])
cache.close()
"""


def test_runs_sharing_a_damaged_cache_set_it_aside_once(tmp_path):
    # each finds the damage; one moves the file, and none moves the new cache another started
    import subprocess
    import sys
    import time

    from synthlang.runtime.cache import ResultCache

    for round_ in range(4):
        folder = tmp_path / f"cache{round_}"
        folder.mkdir()
        damaged = os.urandom(8192)
        (folder / "results.sqlite").write_bytes(damaged)
        start = str(time.time() + 1.0)
        procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT, str(folder), start, f"k{i}"],
                                  stderr=subprocess.PIPE, text=True) for i in range(3)]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], errors
        assert (folder / "results.sqlite.damaged").read_bytes() == damaged
        cache = ResultCache.open_existing(folder)
        assert cache is not None and sorted(cache.get_many(["k0", "k1", "k2"])) == ["k0", "k1", "k2"]
        cache.close()


# ---- a bad cache entry is a miss ------------------------------------------------------------------

@pytest.mark.parametrize("change", [
    pytest.param("insert or replace into token_choices select key, '" + DEEP + "' from results", id="deep-choices"),
    "insert or replace into token_choices select key, '[[\"a\", 5]]' from results",
    "insert or replace into token_choices select key, x'00ff' from results",
    pytest.param("update results set text = '" + DEEP + "'", id="deep-text"),
    "update results set text = x'7b7d'",
    "update results set tokens = 'many'",
    "update results set seconds = 'soon'",
])
def test_a_bad_cache_entry_is_a_miss(ran, change):
    spec, out = ran
    with sqlite3.connect(cache_file(out)) as con:
        con.execute(change)
    proc = synthc("run", spec, "--fake-engine", "--fresh")
    assert proc.returncode == 0, proc.stderr
    assert "2 sent, 0 reused" in proc.stderr, proc.stderr
    # the entries written again are good ones
    again = synthc("run", spec, "--fake-engine", "--fresh")
    assert again.returncode == 0 and "0 sent, 2 reused" in again.stderr, again.stderr


# ---- a journal line nested too deep, or of the wrong shape, is a damaged journal ----------------

@pytest.mark.parametrize("line", [
    pytest.param(DEEP, id="deep"),
    pytest.param('{"b": "T", "c": 0, "a": 2, "ok": true, "rec": ' + DEEP + ', "dd": {}}', id="deep-record"),
    '{"b": "T", "c": 0, "a": 2, "ok": true, "rec": {"b": "x"}, "dd": {}, "tok": "many"}',
    '{"b": "T", "c": 0, "a": 2, "ok": true, "rec": {"b": "x", "_meta": 5}, "dd": {}}',
    '{"b": "T", "c": 0, "a": 2, "ok": false, "why": "junk", "t": "soon"}',
    '{"b": "T", "c": 0, "a": 2, "ok": true, "rec": {"b": "x"}, "dd": []}',
])
@pytest.mark.parametrize("command", ["run", "plan"])
def test_a_bad_journal_line_is_a_damaged_journal(ran, line, command):
    spec, out = ran
    with open(journal_file(out), "a") as fh:
        fh.write(line + "\n")
    proc = synthc(command, spec, *(["--fake-engine"] if command == "run" else []))
    assert proc.returncode == 1, proc.stderr
    assert "line 4" in proc.stderr and "--fresh" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_deep_journal_header_is_a_damaged_journal(ran):
    spec, out = ran
    lines = journal_file(out).read_text().splitlines(keepends=True)
    journal_file(out).write_text(DEEP + "\n" + "".join(lines[1:]))
    proc = synthc("run", spec, "--fake-engine")
    assert proc.returncode == 1 and "journal header" in proc.stderr and "--fresh" in proc.stderr, proc.stderr


def test_a_deep_torn_last_journal_line_is_cut_off(ran):
    spec, out = ran
    records = (out / "train.jsonl").read_bytes()
    with open(journal_file(out), "a") as fh:
        fh.write('{"b": "T", "c": 0, "a": 2, "ok": true, "rec": ' + "[" * 100_000)  # killed mid-write
    assert synthc("plan", spec).returncode == 0      # left out by a reader
    proc = synthc("run", spec, "--fake-engine")       # cut off by a run
    assert proc.returncode == 0, proc.stderr
    assert journal_file(out).read_text().endswith("}\n")
    assert (out / "train.jsonl").read_bytes() == records


def test_a_journal_line_over_the_limit_is_damage_unless_torn(tmp_path, monkeypatch):
    monkeypatch.setattr(journal_module, "MAX_LINE_CHARS", 1000)
    header = '{"plan": "p", "dataset": "d", "kind": "header"}\n'
    entry = '{"b": "T", "c": 0, "a": 0, "ok": false, "why": "junk"}\n'
    long = '{"b": "T", "c": 0, "a": 1, "ok": false, "why": "' + "x" * 5000 + '"}'
    path = tmp_path / "journal.jsonl"
    path.write_text(header + entry + long + "\n" + entry)
    with pytest.raises(JournalCorrupt, match="line 3"):
        list(read_entries(path))
    path.write_text(header + entry + long)   # the torn last line of a killed run
    assert len(list(read_entries(path))) == 1


# ---- a run's manifest, plan and evaluation of the wrong shape -----------------------------------

@pytest.mark.parametrize("text, reason", [
    ('{"blocks": 5}', "blocks"),
    ("[]", "object"),
    ("{", "JSON"),
    pytest.param(DEEP, "nested", id="deep"),
    ('{"blocks": {"T": {"attempts": "many"}}}', "attempts"),
    ('{"blocks": {"T": {"cells": [{"key": 5}]}}}', "key"),
    ('{"blocks": {"T": {"rejection_rates": {"junk": "high"}}}}', "rejection_rates"),
    ('{"blocks": {}, "models": {"m": 5}}', "models"),
    ('{"blocks": {}, "files": "train.jsonl"}', "files"),
])
def test_report_names_a_bad_manifest(ran, text, reason):
    _, out = ran
    (out / "manifest.json").write_text(text)
    proc = synthc("report", out)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out / "manifest.json") in lines[0] and reason in lines[0], proc.stderr


@pytest.mark.parametrize("text", [
    pytest.param(DEEP, id="deep"), '{"blocks": 5}', '{"blocks": {"T": 5}}', '{"blocks": {"T": {"acceptance_rate": "x"}}}',
    '{"blocks": {"T": {"acceptance_rate": NaN}}}',
])
def test_plan_estimates_without_a_bad_manifest(ran, text):
    spec, out = ran
    (out / "manifest.json").write_text(text)
    proc = synthc("plan", spec)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", ["manifest.json", "plan.json", "eval.json"])
def test_report_refuses_an_oversized_file(ran, name):
    _, out = ran
    with open(out / name, "wb") as fh:  # sparse: no disk used
        fh.truncate(600 * 2**20)
    proc = synthc("report", out)
    assert proc.returncode == 1
    assert str(out / name) in proc.stderr and "limit" in proc.stderr, proc.stderr


@pytest.mark.parametrize("text, reason", [
    ("{", "JSON"),
    pytest.param(DEEP, "nested", id="deep"),
    ('{"kind": "plan"}', ""),
])
def test_report_names_a_bad_plan(ran, text, reason):
    _, out = ran
    (out / "plan.json").write_text(text)
    proc = synthc("report", out)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out / "plan.json") in lines[0] and reason in lines[0], proc.stderr


@pytest.mark.parametrize("text, reason", [
    ("{", "JSON"),
    pytest.param(DEEP, "nested", id="deep"),
    ('{"evaluations": 5}', "evaluations"),
    ('{"evaluations": [{"kind": "classification", "label": "q", "test": "t.jsonl", "n_test": 1, "verdicts": {}, '
     '"classes": ["a"], "sweep": [], "sets": {"real": {"n_train": 1}}}]}', "sets.real"),
    ('{"evaluations": [{"kind": "spans", "label": "q", "test": "t.jsonl", "n_test": 1, "verdicts": {}, '
     '"sets": {"real": {"n_train": 1, "precision": {"value": 1, "ci95": [1]}, "recall": {"value": 1, "ci95": [1, 1]}, '
     '"f1": {"value": 1, "ci95": [1, 1]}}}}]}', "precision.ci95"),
    ('{"evaluations": [{"kind": "magic"}]}', "kind"),
])
def test_report_names_a_bad_evaluation(ran, text, reason):
    _, out = ran
    (out / "eval.json").write_text(text)
    proc = synthc("report", out)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out / "eval.json") in lines[0] and reason in lines[0], proc.stderr


def test_report_of_a_good_run_still_works(ran):
    _, out = ran
    manifest = json.loads((out / "manifest.json").read_text())
    proc = synthc("report", out)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "manifest.json").read_text()) == manifest


@pytest.mark.parametrize("message, code", [("database or disk is full", errno.ENOSPC), ("disk I/O error", errno.EIO)])
def test_a_full_disk_under_the_cache_is_an_os_error_naming_it(tmp_path, message, code):
    """The run stops with `cannot write the dataset: ...` (exit 1, resumable), never exit 70."""
    from synthlang.engines.base import GenerationResult
    from synthlang.runtime.cache import ResultCache

    (tmp_path / "cache").mkdir()
    cache = ResultCache(tmp_path / "cache")

    class Full:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise sqlite3.OperationalError(message)
            return fail

    cache.db = Full()
    with pytest.raises(OSError) as caught:
        cache.put_many([("k", GenerationResult("{}", tokens=1))])
    assert caught.value.errno == code and "cannot open or write the result cache" in str(caught.value)
    assert caught.value.filename == str(tmp_path / "cache" / "results.sqlite")


@pytest.mark.parametrize("garbage", [b'{"b":"T","c":0,"a":9,"ok":false,"why":"\xff"}\n', b"\xff\xfe\n"])
def test_a_journal_line_that_is_not_utf8_is_damage_naming_fresh(tmp_path, garbage):
    spec = tmp_path / "s.synth"
    spec.write_text('schema T { b: str(1..10) }\ngenerate T { count 2 }\n')
    assert synthc("run", spec, "--fake-engine").returncode == 0
    journal = tmp_path / "out/s/.synth/journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:2]) + garbage + b"".join(lines[2:]))
    for command in (("run", spec, "--fake-engine"), ("plan", spec)):
        proc = synthc(*command)
        assert proc.returncode == 1 and "is not a journal entry" in proc.stderr and "--fresh" in proc.stderr, \
            (command, proc.stderr[-600:])
