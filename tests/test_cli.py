"""synthc as a user runs it: exit codes, text and JSON diagnostics, plan files."""

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def synthc(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "synthlang.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_check_clean_spec_exits_0():
    proc = synthc("check", "specs/self_instruct/instructions.synth")
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stderr


def test_check_errors_exit_1_with_compiler_style_text():
    proc = synthc("check", "spec.synth", cwd=ROOT / "tests/golden/err_names")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == "spec.synth:3:33: error[E0106]: unknown model setting `temprature`"
    assert lines[2].endswith("model writer { engine llamacpp  temprature 0.5 }")
    assert lines[3].endswith("^" * len("temprature"))
    assert "help: did you mean `temperature`?" in lines[4]


def test_check_json_format_has_the_same_fields():
    proc = synthc("check", "--format", "json", "spec.synth", cwd=ROOT / "tests/golden/err_names")
    assert proc.returncode == 1
    diags = json.loads(proc.stdout)
    first = diags[0]
    assert first["code"] == "E0106" and first["severity"] == "error"
    assert (first["path"], first["line"], first["col"]) == ("spec.synth", 3, 33)
    assert first["help"] == "did you mean `temperature`?"


def test_usage_errors_exit_2():
    assert synthc().returncode == 2
    assert synthc("check").returncode == 2
    assert synthc("check", "no/such/file.synth").returncode == 2
    assert synthc("frobnicate", "x").returncode == 2


def test_compile_writes_plan_file(tmp_path):
    out = tmp_path / "plans" / "plan.json"
    proc = synthc("compile", "specs/address_extraction/addresses.synth", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(out.read_text())
    assert plan["kind"] == "plan" and plan["schema_version"] == 1
    assert plan["hash"].startswith("sha256:")
    stdout_plan = synthc("compile", "specs/address_extraction/addresses.synth").stdout
    assert stdout_plan == out.read_text()


def test_compile_with_errors_writes_nothing(tmp_path):
    out = tmp_path / "plan.json"
    proc = synthc("compile", str(ROOT / "tests/golden/err_quota/spec.synth"), "-o", str(out))
    assert proc.returncode == 1
    assert not out.exists()


def test_plan_round_trips_and_detects_tampering(tmp_path):
    from synthlang.plan.model import Plan

    text = synthc("compile", "specs/support_tickets/tickets.synth").stdout
    plan = Plan.from_json(text)
    assert plan.to_json() == text
    tampered = text.replace('"count": 40', '"count": 41', 1)
    try:
        Plan.from_json(tampered)
    except ValueError as exc:
        assert "hash mismatch" in str(exc)
    else:
        raise AssertionError("a tampered plan was accepted")


def test_compiler_imports_no_engine():
    code = ("import sys, synthlang.compiler, synthlang.cli\n"
            "from synthlang.compiler import compile\n"
            "compile('specs/support_tickets/tickets.synth')\n"
            "heavy = [m for m in ('llama_cpp', 'vllm', 'torch', 'outlines', 'ray') if m in sys.modules]\n"
            "print(heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_checking_a_faker_spec_lists_fakers_providers_once(tmp_path):
    # the first check lists Faker's providers into the user's cache; later ones read the list
    # and do not import Faker at all (it costs more than the rest of a check)
    code = ("import sys\n"
            "from synthlang.compiler import check\n"
            "result = check('specs/address_extraction/addresses.synth')\n"
            "print(result.ok, 'faker' in sys.modules)\n")
    env = {**os.environ, "SYNTHLANG_CACHE": str(tmp_path / "cache")}

    def run():
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                              env=env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    assert run() == ["True", "True"]
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [f"faker-{metadata.version('faker')}.json"]
    assert run() == ["True", "False"]
    bad = tmp_path / "bad.synth"
    bad.write_text('schema T {\n  a: str ~ faker("date_time")\n  b: str ~ faker("nosuch")\n}\n')
    proc = subprocess.run([sys.executable, "-m", "synthlang.cli", "check", str(bad)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert "Faker's `date_time` gives datetime, which cannot fill a str" in proc.stderr
    assert "Faker has no provider `nosuch`" in proc.stderr


def test_templates_cannot_escape_the_sandbox(tmp_path):
    import pytest
    from jinja2.exceptions import SecurityError

    from synthlang.compiler import compile
    from synthlang.templates import render

    spec = tmp_path / "spec.synth"
    spec.write_text('schema S { t: str ~ pick("a")\n x: str(1..9) }\n'
                    'generate S { count 1 prompt "{% include \'/etc/passwd\' %}" }\n')
    result = compile(spec)
    assert [d.code for d in result.diagnostics] == ["E0501"]  # no file is ever read
    with pytest.raises(SecurityError):
        render("{{ t.__class__.__mro__ }}", {"t": "a"})
