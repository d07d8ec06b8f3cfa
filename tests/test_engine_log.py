"""Engine libraries speak only when something is wrong: what an engine prints while it starts and
generates (native writes to fd 1 and 2, Python prints, logging handlers) goes to the run's
.synth/engine.log, and a failure names that file and quotes its last relevant lines."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthlang.engines.base import EngineDead, GenerationRequest, GenerationResult
from synthlang.engines.engine_log import EngineLog, start_logged

ROOT = Path(__file__).resolve().parents[1]


class NoisyEngine:
    """Prints the way vLLM and llama.cpp do: to the file descriptors, to sys.stderr, to a
    logging handler that was made on the terminal."""

    name = "noisy"
    capabilities = None
    in_flight = 1

    def __init__(self, logger: logging.Logger):
        self.logger = logger
        os.write(2, b"llama_model_loader: loaded meta data with 33 key-value pairs\n")
        print("INFO 12-04 03:00:00 [model_runner.py:1] Loading weights took 1.2 s", file=sys.stderr)

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        os.write(1, b"native stdout line\n")
        os.write(2, b"native stderr line\n")
        self.logger.warning("a library warning")
        return [GenerationResult("{}") for _ in requests]

    def close(self) -> None:
        print("closing noisily")


REQUEST = GenerationRequest(messages=({"role": "user", "content": "x"},), json_schema={}, max_tokens=4, seed=1,
                            temperature=0.0, top_p=1.0)


def test_an_engine_prints_nothing_to_the_terminal_and_everything_to_its_log(tmp_path, capfd):
    logger = logging.getLogger("noisy-library")
    handler = logging.StreamHandler(sys.stderr)
    logger.addHandler(handler)
    try:
        log = EngineLog(tmp_path / ".synth" / "engine.log")
        engine = start_logged(lambda: NoisyEngine(logger), log)
        print("synthc's own line", file=sys.stderr)
        assert [r.text for r in engine.generate([REQUEST])] == ["{}"]
        engine.close()
    finally:
        logger.removeHandler(handler)
    out, err = capfd.readouterr()
    assert out == "" and err == "synthc's own line\n"
    written = log.path.read_text()
    for line in ("loaded meta data", "Loading weights", "native stdout line", "native stderr line",
                 "a library warning", "closing noisily"):
        assert line in written
    assert handler.stream is sys.stderr  # the library's handler writes where it did once the call is over


def test_a_start_up_failure_names_the_log_and_quotes_its_last_relevant_lines(tmp_path, capfd):
    def fail():
        os.write(2, b"llama_model_load: loading model tensors\n")
        os.write(2, b"gguf_init_from_file_impl: invalid magic characters: 'abcd', expected 'GGUF'\n")
        os.write(2, b"llama_model_load_from_file_impl: failed to load model\n")
        os.write(2, b"some closing chatter\n")
        raise EngineDead("llama.cpp could not load bad.gguf")

    log = EngineLog(tmp_path / "engine.log")
    with pytest.raises(EngineDead) as caught:
        start_logged(fail, log)
    message = str(caught.value)
    assert message.startswith("llama.cpp could not load bad.gguf")
    assert f"the engine's log is {log.path}" in message
    assert caught.value.lines == (  # the relevant lines: not the loading and closing chatter
        "gguf_init_from_file_impl: invalid magic characters: 'abcd', expected 'GGUF'",
        "llama_model_load_from_file_impl: failed to load model")
    assert capfd.readouterr() == ("", "")


def test_a_failure_mid_run_quotes_the_log_too(tmp_path):
    class Dies(NoisyEngine):
        def generate(self, requests):
            os.write(2, b"RuntimeError: CPU out of memory in the KV cache\n")
            raise EngineDead("vLLM failed: RuntimeError")

    log = EngineLog(tmp_path / "engine.log")
    engine = start_logged(lambda: Dies(logging.getLogger("quiet")), log)
    with pytest.raises(EngineDead, match=r"vLLM failed: RuntimeError \(the engine's log is .*engine\.log") as caught:
        engine.generate([REQUEST])
    assert caught.value.lines == ("RuntimeError: CPU out of memory in the KV cache",)


def test_a_failure_quotes_its_own_run_never_an_earlier_one(tmp_path):
    path = tmp_path / ".synth" / "engine.log"

    def fails_with(*lines: bytes):
        def start():
            for line in lines:
                os.write(2, line)
            raise EngineDead("llama.cpp could not load the model")
        return start

    with pytest.raises(EngineDead) as first:
        start_logged(fails_with(b"gguf_init_from_file_impl: invalid magic characters\n"), EngineLog(path))
    assert first.value.lines == ("gguf_init_from_file_impl: invalid magic characters",)
    with pytest.raises(EngineDead) as second:  # the next run, on the same (appended) log
        start_logged(fails_with(b"llama_model_loader: loaded meta data\n"), EngineLog(path))
    assert second.value.lines == ("llama_model_loader: loaded meta data",)
    assert "invalid magic" in path.read_text()  # kept in the file, not quoted for the second run


def test_a_large_log_is_rotated_when_a_run_opens_it(tmp_path, monkeypatch):
    from synthlang.engines import engine_log

    path = tmp_path / ".synth" / "engine.log"
    path.parent.mkdir()
    path.write_text("old line\n" * 20)
    monkeypatch.setattr(engine_log, "ROTATE_BYTES", 100)
    engine = start_logged(lambda: NoisyEngine(logging.getLogger("quiet")), EngineLog(path))
    engine.close()
    assert path.with_name("engine.log.1").read_text() == "old line\n" * 20
    assert "old line" not in path.read_text() and "closing noisily" in path.read_text()


def test_the_log_is_not_written_through_a_planted_link_out_of_the_tree(tmp_path):
    from synthlang.files import UnsafePath

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / ".synth").symlink_to(outside)
    with pytest.raises(UnsafePath):
        start_logged(lambda: NoisyEngine(logging.getLogger("quiet")), EngineLog(out / ".synth" / "engine.log"))
    assert list(outside.iterdir()) == []


def test_a_logged_failure_crosses_processes_whole():
    import pickle

    from synthlang.engines.engine_log import EngineLogged

    exc = EngineLogged("vLLM failed (the engine's log is x/engine.log)", Path("x/engine.log"), ("a", "b"))
    again = pickle.loads(pickle.dumps(exc))
    assert (type(again), str(again), again.path, again.lines) == (EngineLogged, str(exc), exc.path, exc.lines)
    assert isinstance(again, EngineDead)


def test_a_handler_made_during_a_run_writes_to_the_next_run_s_log(tmp_path):
    logger = logging.getLogger("made-while-quiet")
    made: list[logging.Handler] = []

    class MakesAHandler(NoisyEngine):  # as vLLM configures its logging on import, inside the first run
        def __init__(self, logger):
            handler = logging.StreamHandler(sys.stderr)
            logger.addHandler(handler)
            made.append(handler)

        def generate(self, requests):
            self.logger.warning("generating")
            return [GenerationResult("{}") for _ in requests]

    try:
        first = EngineLog(tmp_path / "one" / ".synth" / "engine.log")
        engine = start_logged(lambda: MakesAHandler(logger), first)
        engine.logger = logger
        second = EngineLog(tmp_path / "two" / ".synth" / "engine.log")
        with second.quiet():
            logger.warning("the second run's line")
    finally:
        for h in made:
            logger.removeHandler(h)
    assert "the second run's line" in second.path.read_text()
    assert "the second run's line" not in first.path.read_text()


def test_a_native_crash_inside_a_quiet_call_is_reported_on_the_terminal(tmp_path):
    crash = ("import ctypes, sys\n"
             "from pathlib import Path\n"
             "from synthlang.engines.engine_log import EngineLog\n"
             f"with EngineLog(Path({str(tmp_path / '.synth' / 'engine.log')!r})).quiet():\n"
             "    ctypes.string_at(0)\n")  # a segfault, as a failed native assert in an engine would be
    proc = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": ""})
    assert proc.returncode != 0
    assert "Fatal Python error: Segmentation fault" in proc.stderr, proc.stderr[-2000:]


def test_no_log_file_leaves_the_engine_as_it_is():
    engine = NoisyEngine(logging.getLogger("quiet"))
    assert start_logged(lambda: engine, None) is engine


def _synthc(*args, cwd):
    return subprocess.run([sys.executable, "-m", "synthlang.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_llamacpp_failing_to_load_names_the_log_and_quotes_llama_cpp(tmp_path):
    # a model file that is no GGUF: llama.cpp says why in its own log lines, synthc quotes them
    (tmp_path / "bad.gguf").write_bytes(b"abcd" + bytes(4096))
    (tmp_path / "s.synth").write_text('model m { engine llamacpp  name "bad.gguf" }\n'
                                      'schema R { kind: "a" | "b" }\ngenerate R { count 2 using m }\n'
                                      'output "out" { format jsonl }\n')
    proc = _synthc("run", "s.synth", "--progress", "log", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    log = tmp_path / "out/.synth/engine.log"
    assert f"the engine's log is {log}" in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("synthc: error: the engine stopped: llama.cpp could not load"), proc.stderr
    quoted = [line[6:] for line in lines[1:]]
    assert all(line.startswith("    | ") for line in lines[1:]) and quoted, proc.stderr
    assert any("invalid magic characters" in line for line in quoted), proc.stderr
    assert all(line in log.read_text() for line in quoted)
    assert not (tmp_path / "out/train.jsonl").exists()


@pytest.mark.engine
def test_a_llamacpp_run_prints_only_synthc_s_lines(tmp_path):
    (tmp_path / "s.synth").write_text('model m { engine llamacpp  temperature 0.7 }\n'
                                      'schema R { kind: "a" | "b"  stars: int(1..5) }\n'
                                      'generate R { count 2 using m }\noutput "out" { format jsonl }\n')
    proc = _synthc("run", "s.synth", "--progress", "log", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    for line in proc.stderr.splitlines():
        assert line.startswith(("R: ", "  rejected: ", "wrote ")), line
    rows = [json.loads(line) for line in (tmp_path / "out/train.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["kind"] in ("a", "b") and 1 <= r["stars"] <= 5 for r in rows)
