"""Hostile endpoints, tried against real servers on loopback: a spec that would hand the user's
key to a server the user never allowed, a server whose replies are built to crash the client,
and an endpoint that smuggles control characters into a check or a plan. Each case asserts its
exact outcome (exit code, reason, what the server received) and that no command ends in a
traceback."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from synthlang.plan.model import Plan

TIMEOUT = 60
KEY = "ghp_secret_from_ci"
GOOD_PROBE = {"code": "QX123-ZZ", "pick": "zebra-17"}


def synthc(*args, cwd=None, timeout=TIMEOUT, env=None):
    start = time.perf_counter()
    clean = {k: v for k, v in os.environ.items() if k != "SYNTHC_ALLOW_ENDPOINTS"}
    proc = subprocess.run([sys.executable, "-m", "synthlang.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env={**clean, "GITHUB_TOKEN": KEY, **(env or {})})
    proc.seconds = time.perf_counter() - start
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr[-2000:]
    return proc


def snapshot(root: Path) -> dict:
    """Every entry under root with a digest of each file."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def chat(content, **extra) -> bytes:
    return json.dumps({"choices": [{"message": {"content": content}, "finish_reason": "stop"}],
                       "usage": {"completion_tokens": 5}, **extra}).encode()


def well_formed(body: dict) -> bytes:
    """What an honest server that enforces the schema writes: the probe's answer, else a record."""
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema", {})
    if "code" in schema.get("properties", {}):
        return chat(json.dumps(GOOD_PROBE))
    return chat(json.dumps({"b": len(body["messages"]) % 2 == 0}))


class Server:
    """A chat-completions server on 127.0.0.1 that answers each POST with `answer(body)` and
    keeps the headers of every request it got."""

    def __init__(self, answer: Callable[[dict], bytes] = well_formed):
        self.answer, self.headers = answer, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                return None

            def do_POST(self):
                outer.headers.append(dict(self.headers))
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                data = outer.answer(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_port
        self.url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def keys_seen(self) -> list[str]:
        return [h["Authorization"] for h in self.headers if "Authorization" in h]


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def spec_for(folder: Path, endpoint: str, key: str | None = "GITHUB_TOKEN") -> Path:
    key_line = f'  api_key_env "{key}"\n' if key else ""
    spec = folder / "m.synth"
    spec.write_text(f'model m {{ engine openai name "served"\n  endpoint "{endpoint}"\n{key_line}'
                    '  concurrency 1 }\nschema T { b: bool }\ngenerate T { count 2 using m }\n')
    return spec


def compiled(spec: Path) -> Path:
    plan = spec.with_suffix(".json")
    assert synthc("compile", spec, "-o", plan).returncode == 0
    return plan


# ---- a key goes only to a server the user allowed ----------------------------------------------

@pytest.mark.parametrize("command", ["run", "preview", "run-plan"])
def test_a_key_is_never_sent_to_a_server_the_user_did_not_allow(tmp_path, server, command):
    spec = spec_for(tmp_path, server.url)
    target = compiled(spec) if command == "run-plan" else spec
    before = snapshot(tmp_path)
    proc = synthc(command.removesuffix("-plan"), target)
    assert proc.returncode == 2, proc.stderr
    assert server.headers == []  # not one request, with or without the key
    assert snapshot(tmp_path) == before
    assert f"network: model `m` sends requests to {server.url}, with the key in $GITHUB_TOKEN" in proc.stderr
    assert (f"model `m` would send the key in $GITHUB_TOKEN to http://127.0.0.1:{server.port}, a server you "
            "have not allowed") in proc.stderr
    assert f"pass --allow-endpoint http://127.0.0.1:{server.port} or add it to $SYNTHC_ALLOW_ENDPOINTS" in proc.stderr


@pytest.mark.parametrize("how", ["flag-url", "flag-host-port", "flag-host", "env"])
def test_a_server_the_user_allowed_gets_the_key(tmp_path, server, how):
    spec = spec_for(tmp_path, server.url)
    args = {"flag-url": ["--allow-endpoint", f"http://127.0.0.1:{server.port}"],
            "flag-host-port": ["--allow-endpoint", f"127.0.0.1:{server.port}"],
            "flag-host": ["--allow-endpoint", "api.example.com", "--allow-endpoint", "127.0.0.1"]}.get(how, [])
    env = {"SYNTHC_ALLOW_ENDPOINTS": f" api.example.com ,, http://127.0.0.1:{server.port}/v1"} if how == "env" else {}
    proc = synthc("run", spec, *args, env=env)
    assert proc.returncode == 0, proc.stderr
    assert server.keys_seen() and set(server.keys_seen()) == {f"Bearer {KEY}"}
    assert proc.stderr.splitlines()[0] == \
        f"network: model `m` sends requests to {server.url}, with the key in $GITHUB_TOKEN"


def test_allowing_another_port_or_scheme_of_the_host_does_not_allow_this_one(tmp_path, server):
    spec = spec_for(tmp_path, server.url)
    for allowed in (f"127.0.0.1:{server.port + 1}", f"https://127.0.0.1:{server.port}", "localhost", "127.1"):
        proc = synthc("run", spec, "--allow-endpoint", allowed)
        assert proc.returncode == 2 and "a server you have not allowed" in proc.stderr, (allowed, proc.stderr)
    assert server.headers == []


@pytest.mark.parametrize("command", ["run", "preview"])
def test_without_a_key_the_network_line_comes_before_any_request(tmp_path, server, command):
    spec = spec_for(tmp_path, server.url, key=None)
    proc = synthc(command, spec)
    assert proc.returncode == 0, proc.stderr
    assert server.headers and server.keys_seen() == []
    assert proc.stderr.splitlines()[0] == f"network: model `m` sends requests to {server.url}, with no key"


@pytest.mark.parametrize("args, env, reason", [
    (["--allow-endpoint", "a/b"], {}, "allows nothing"),
    (["--allow-endpoint", "ftp://host"], {}, "allows nothing"),
    ([], {"SYNTHC_ALLOW_ENDPOINTS": "127.0.0.1, https://user:pw@host"}, "$SYNTHC_ALLOW_ENDPOINTS holds"),
])
def test_an_allow_value_that_allows_nothing_is_a_usage_error(tmp_path, server, args, env, reason):
    proc = synthc("run", spec_for(tmp_path, server.url), *args, env=env)
    assert proc.returncode == 2 and reason in proc.stderr, proc.stderr
    assert server.headers == []


def test_what_an_allow_value_covers():
    from synthlang.endpoints import key_allowed, parse_allowance

    assert parse_allowance("https://API.example.com/v1") == ("https", "api.example.com", 443)
    assert parse_allowance("[::1]:8000") == (None, "::1", 8000)
    assert key_allowed("https://api.example.com/v2", ["https://api.example.com/v1"])
    assert key_allowed("https://api.example.com.:8443/v1", ["api.example.com"])
    assert not key_allowed("https://api.example.com:8443/v1", ["https://api.example.com"])
    assert not key_allowed("https://api.example.com.evil.io/v1", ["api.example.com"])
    assert not key_allowed("http://127.0.0.1:9/v1", ["localhost"])


# ---- a server's reply cannot crash the run -----------------------------------------------------

@pytest.mark.parametrize("reply, reason", [
    (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    (chat(12345), "`choices[0].message.content` is not a string"),
    (chat(json.dumps(GOOD_PROBE), usage="lots"), "`usage` is not an object"),
    (chat(json.dumps(GOOD_PROBE), usage={"completion_tokens": 10**30}), "is not a token count"),
    (json.dumps({"choices": [{"message": "hi"}]}).encode(), "`choices[0].message` is not an object"),
], ids=["deep", "content", "usage", "token-count", "message"])
def test_a_malformed_reply_stops_the_run_as_an_engine_failure(tmp_path, reply, reason):
    bad = Server(lambda body: reply)
    try:
        proc = synthc("run", spec_for(tmp_path, bad.url, key=None))
    finally:
        bad.httpd.shutdown()
    assert proc.returncode == 3, proc.stderr
    assert "the engine stopped" in proc.stderr and reason in proc.stderr
    assert len(bad.headers) == 1  # the same reply is not asked for again


def test_a_server_that_turns_malformed_after_the_probe_is_not_asked_forever(tmp_path):
    def answer(body):
        schema = body["response_format"]["json_schema"]["schema"]
        return chat(json.dumps(GOOD_PROBE)) if "code" in schema["properties"] else chat(None, usage=[1])

    bad = Server(answer)
    try:
        proc = synthc("run", spec_for(tmp_path, bad.url, key=None))
    finally:
        bad.httpd.shutdown()
    assert proc.returncode == 3, proc.stderr
    assert "keeps sending replies that are not chat completions (`usage` is not an object)" in proc.stderr
    assert "Everything generated so far is kept" in proc.stderr
    # the probe, then two waves of two requests (the third bad reply ends the run), not the
    # hundreds of attempts the cell's budget allows
    assert len(bad.headers) <= 5


# ---- an endpoint cannot smuggle control characters ----------------------------------------------

FORGED = "\\nnetwork: model `m` sends requests to https://trusted.example.com, with no key"


@pytest.mark.parametrize("written, column", [
    ("http://127.0.0.1:9/v1" + FORGED, 12), ("http://127.0.0.1:9/v1\\r\\nX-Evil: 1", 12),
    ("http://127.0.0.1:9/v1\\tx", 12), ("http://127.0.0.1:9/v 1", 12), ("http://127.0.0.1:9/v1\\0", 12),
    ("http://bad;host/v1", 12), ("https://exämple.com/v1", 12),
])
def test_an_endpoint_with_a_character_no_url_carries_is_refused_at_check(tmp_path, written, column):
    spec = spec_for(tmp_path, written, key=None)
    found = json.loads(synthc("check", "--format", "json", spec).stdout)
    assert [(d["code"], d["line"], d["col"]) for d in found] == [("E0107", 2, column)]
    proc = synthc("check", spec)
    assert proc.returncode == 1
    assert not any(c in proc.stderr for c in "\r\t\0")
    assert not any(line.startswith("network: model `m` sends requests to https://trusted")
                   for line in proc.stderr.splitlines())
    assert sum(line.startswith("network:") for line in proc.stderr.splitlines()) == 1


def tampered(plan_file: Path, change) -> Path:
    data = json.loads(plan_file.read_text())
    change(data)
    data["hash"] = Plan.content_hash(data)  # a hash anyone can recompute proves nothing
    plan_file.write_text(json.dumps(data))
    return plan_file


def test_an_error_quoting_a_plan_stays_on_one_line(tmp_path):
    forged = "m\nnetwork: model `m` sends requests to https://trusted.example.com, with no key\n\tx"
    plan_file = tampered(compiled(spec_for(tmp_path, "http://127.0.0.1:9/v1", key=None)),
                         lambda d: d["models"].update({forged: d["models"].pop("m")}))
    proc = synthc("run", plan_file)
    assert proc.returncode == 1 and "is not a plan this synthc runs" in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "\t" not in proc.stderr
    assert "model name `m\\x0anetwork: model" in proc.stderr


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9/v1\r\nX-Evil: 1", "http://127.0.0.1:9/v1 x",
                                      "http://127.0.0.1:9/v1\x00", "http://127.0.0.1:9/v1\tx"])
def test_a_plan_whose_endpoint_holds_such_a_character_is_refused(tmp_path, endpoint):
    plan_file = tampered(compiled(spec_for(tmp_path, "http://127.0.0.1:9/v1", key=None)),
                         lambda d: d["models"]["m"].update(endpoint=endpoint))
    proc = synthc("run", plan_file)
    assert proc.returncode == 1 and "is not a plan this synthc runs" in proc.stderr, proc.stderr
    assert "printable ASCII without spaces" in proc.stderr
    assert not any(c in proc.stderr for c in "\r\t\0") and len(proc.stderr.splitlines()) == 1
