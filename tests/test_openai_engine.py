"""The OpenAI-compatible engine against scripted servers on loopback: retries with backoff on
429/5xx, Retry-After, giving up, a dead server, and a server that ignores the constraint."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from synthlang import ir
from synthlang.engines.base import ConstraintNotEnforced, EngineDead, EngineOptions, GenerationRequest
from synthlang.engines.openai_compat import OpenAICompatEngine
from synthlang.engines.probe import run_probe


class Script:
    def __init__(self, replies):
        self.replies = list(replies)
        self.bodies = []


def serve(script):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            return None

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            script.bodies.append(json.loads(self.rfile.read(length)))
            status, headers, body = script.replies.pop(0) if script.replies else (500, {}, {"error": "no more"})
            data = json.dumps(body).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def ok(text):
    return (200, {}, {"choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                      "usage": {"completion_tokens": 7}})


def request(schema=None):
    return GenerationRequest(messages=({"role": "user", "content": "hi"},),
                             json_schema=schema or {"type": "object"}, max_tokens=32, seed=3,
                             temperature=0.5, top_p=1.0)


def engine(server, fmt="json_schema", **kw):
    model = ir.Model(name="m", engine="openai", model="served", endpoint=f"http://127.0.0.1:{server.server_port}/v1",
                     schema_format=fmt, concurrency=2)
    return OpenAICompatEngine(model, EngineOptions(), backoff=0.01, **kw)


def test_retries_429_and_5xx_then_succeeds_and_honours_retry_after():
    script = Script([(429, {"Retry-After": "0"}, {"error": "slow down"}), (503, {}, {"error": "busy"}),
                     ok('{"a": 1}')])
    server = serve(script)
    try:
        result = engine(server).generate([request()])[0]
    finally:
        server.shutdown()
    assert result.text == '{"a": 1}' and result.tokens == 7 and result.error is None
    assert len(script.bodies) == 3
    body = script.bodies[0]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == {"type": "object"} and body["seed"] == 3


@pytest.mark.parametrize("fmt,key", [("structured_outputs", "structured_outputs"), ("json_object", "response_format")])
def test_schema_is_sent_as_the_server_expects(fmt, key):
    script = Script([ok("{}")])
    server = serve(script)
    try:
        engine(server, fmt).generate([request({"type": "object", "properties": {}})])
    finally:
        server.shutdown()
    sent = script.bodies[0][key]
    assert sent == {"json": {"type": "object", "properties": {}}} if fmt == "structured_outputs" else \
        sent == {"type": "json_object", "schema": {"type": "object", "properties": {}}}


def test_client_errors_are_not_retried_and_give_a_reason():
    script = Script([(400, {}, {"error": "bad schema"})])
    server = serve(script)
    try:
        result = engine(server).generate([request()])[0]
    finally:
        server.shutdown()
    assert result.text is None and "HTTP 400" in result.error and len(script.bodies) == 1


def test_gives_up_after_bounded_retries_and_a_dead_server_ends_the_run():
    script = Script([(500, {}, {"error": "x"})] * 30)
    server = serve(script)
    try:
        eng = engine(server, max_retries=2)
        first = eng.generate([request()])[0]
        assert first.error.startswith("gave up after 3 tries") and len(script.bodies) == 3
        eng.generate([request()])
        with pytest.raises(EngineDead):
            eng.generate([request()])
    finally:
        server.shutdown()


def test_a_server_that_ignores_the_constraint_fails_the_probe():
    script = Script([ok('{"code": "hello", "pick": "red"}')])
    server = serve(script)
    try:
        with pytest.raises(ConstraintNotEnforced, match="does not enforce its decoding constraint"):
            run_probe(engine(server))
    finally:
        server.shutdown()


def test_token_probabilities_are_asked_for_and_read_when_a_request_wants_them():
    from dataclasses import replace

    reply = ok('{"score":4}')
    reply[2]["choices"][0]["logprobs"] = {"content": [
        {"token": '{"score":', "logprob": -0.01, "top_logprobs": [{"token": '{"score":', "logprob": -0.01}]},
        {"token": "4", "logprob": -0.5, "top_logprobs": [{"token": "4", "logprob": -0.5},
                                                          {"token": "3", "logprob": -1.2}]}]}
    script = Script([reply, ok('{"a": 1}')])
    server = serve(script)
    try:
        eng = engine(server)
        asked = eng.generate([replace(request(), logprobs=5)])[0]
        plain = eng.generate([request()])[0]
    finally:
        server.shutdown()
    assert script.bodies[0]["logprobs"] is True and script.bodies[0]["top_logprobs"] == 5
    assert "logprobs" not in script.bodies[1] and plain.logprobs is None
    assert asked.logprobs == [('{"score":', {'{"score":': -0.01}), ("4", {"4": -0.5, "3": -1.2})]
