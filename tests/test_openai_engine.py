"""The OpenAI-compatible engine against scripted servers on loopback: retries with backoff on
429/5xx, Retry-After, giving up, a dead server, a server that ignores the constraint, replies
that are not chat completions, and a key sent only where the user allowed."""

import json
import re
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from synthlang import ir
from synthlang.engines import openai_compat
from synthlang.engines.base import ConstraintNotEnforced, EngineDead, EngineOptions, GenerationRequest
from synthlang.engines.openai_compat import MalformedReply, OpenAICompatEngine, parse_reply
from synthlang.engines.probe import run_probe


class Script:
    def __init__(self, replies):
        self.replies = list(replies)
        self.bodies = []
        self.headers = []


def serve(script):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            return None

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            script.bodies.append(json.loads(self.rfile.read(length)))
            script.headers.append(dict(self.headers))
            status, headers, body = script.replies.pop(0) if script.replies else (500, {}, {"error": "no more"})
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
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


def engine(server, fmt="json_schema", key=None, options=None, **kw):
    model = ir.Model(name="m", engine="openai", model="served", endpoint=f"http://127.0.0.1:{server.server_port}/v1",
                     schema_format=fmt, concurrency=2, api_key_env=key)
    return OpenAICompatEngine(model, options or EngineOptions(), backoff=0.01, **kw)


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
    assert (result.error_kind, result.reason) == ("deterministic", "request_refused")  # never asked again


def test_gives_up_after_bounded_retries_and_a_dead_server_ends_the_run():
    script = Script([(500, {}, {"error": "x"})] * 30)
    server = serve(script)
    try:
        eng = engine(server, max_retries=2)
        first = eng.generate([request()])[0]
        assert first.error.startswith("gave up after 3 tries") and len(script.bodies) == 3
        assert first.error_kind == "exhausted"  # the run does not retry what the engine retried
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


def test_a_key_goes_only_to_a_server_the_options_allow(monkeypatch):
    monkeypatch.setenv("LOCAL_TOKEN", "s3cret")
    script = Script([ok("{}")])
    server = serve(script)
    try:
        with pytest.raises(EngineDead, match=r"a server you have not allowed.*--allow-endpoint http://127\.0\.0\.1:"):
            engine(server, key="LOCAL_TOKEN")
        with pytest.raises(EngineDead, match="not allowed"):
            engine(server, key="LOCAL_TOKEN", options=EngineOptions(key_endpoints=("127.0.0.1:1",)))
        allowed = EngineOptions(key_endpoints=(f"127.0.0.1:{server.server_port}",))
        engine(server, key="LOCAL_TOKEN", options=allowed).generate([request()])
    finally:
        server.shutdown()
    assert [h.get("Authorization") for h in script.headers] == ["Bearer s3cret"]


def test_malformed_replies_are_not_retried_and_a_run_of_them_stops_the_engine():
    bad = (200, {}, {"choices": [{"message": {"content": 12345}}]})
    script = Script([bad, bad, ok("{}"), bad, bad, bad])
    server = serve(script)
    try:
        eng = engine(server)
        first = eng.generate([request()])[0]
        assert first.text is None and first.error.startswith("malformed reply: `choices[0].message.content`")
        assert len(script.bodies) == 1  # asking again would get the same reply
        eng.generate([request()])
        assert eng.generate([request()])[0].text == "{}"  # a good reply between: the count starts over
        eng.generate([request()])
        eng.generate([request()])
        with pytest.raises(EngineDead, match="keeps sending replies that are not chat completions"):
            eng.generate([request()])
    finally:
        server.shutdown()
    assert len(script.bodies) == 6


def reply(**fields):
    return json.dumps({"choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}], **fields}).encode()


@pytest.mark.parametrize("data, reason", [
    (b"[" * 100_000, "nested too deeply"),
    (b'{"choices": ' + b"[" * 20 + b"]" * 20 + b"}", "nested deeper than 16 levels"),
    (b"\xff", "not UTF-8"),
    (b"{", "not JSON"),
    (b'{"choices": [{"message": {"content": "x"}}], "usage": {"completion_tokens": NaN}}', "refused: `NaN` is not a JSON value"),
    (b'{"choices": [{"message": {"content": "\\ud800"}}]}', "refused: the text holds a lone UTF-16 surrogate"),
    (b"[]", "not a JSON object"),
    (b'{"choices": []}', "holds no choice object"),
    (b'{"choices": "many"}', "`choices` is not a list"),
    (b'{"choices": [{}]}', "`choices[0].message` is missing"),
    (json.dumps({"choices": [{"message": {"content": ["a"]}}]}).encode(), "content` is not a string"),
    (json.dumps({"choices": [{"message": {}, "finish_reason": 3}]}).encode(), "finish_reason` is not a string"),
    (reply(usage="lots"), "`usage` is not an object"),
    (reply(usage={"completion_tokens": True}), "completion_tokens` is not an integer"),
    (reply(usage={"completion_tokens": -1}), "not a token count"),
], ids=["deep", "deeper-than-a-reply", "utf8", "json", "nan", "surrogate", "array", "no-choice", "choices", "no-message", "content", "finish", "usage",
        "bool-tokens", "negative-tokens"])
def test_a_reply_that_is_not_a_chat_completion_says_why(data, reason):
    with pytest.raises(MalformedReply, match=re.escape(reason)):
        parse_reply(data, logprobs=False)


@pytest.mark.parametrize("logprobs, reason", [
    ("all", "logprobs` is not an object"),
    ({"content": "x"}, "logprobs.content` is not a list"),
    ({"content": [1]}, "content[0]` is not an object"),
    ({"content": [{"token": 1}]}, "token` is not a string"),
    ({"content": [{"token": "a", "top_logprobs": [{"token": "a", "logprob": {}}]}]}, "logprob` is not"),
    ({"content": [{"token": "a", "top_logprobs": ["a"]}]}, "holds something that is not an object"),
    ({"content": [{"token": "a", "top_logprobs": [{"token": "a", "logprob": 10**400}]}]}, "not a finite number"),
    ({"content": [{"token": "a", "top_logprobs": [{"token": "a", "logprob": "1e999"}]}]}, "not a finite number"),
], ids=["logprobs", "content", "entry", "token", "logprob", "top-entry", "huge-int", "infinite"])
def test_token_probabilities_of_the_wrong_shape_say_why(logprobs, reason):
    data = json.dumps({"choices": [{"message": {"content": "{}"}, "logprobs": logprobs}]}).encode()
    data = data.replace(b'"1e999"', b"1e999")  # json.dumps writes no such number: it reads as infinity
    assert parse_reply(data, logprobs=False).logprobs is None  # not asked for: not read
    with pytest.raises(MalformedReply, match=re.escape(reason)):
        parse_reply(data, logprobs=True)


def test_a_reply_past_the_size_bound_is_refused(monkeypatch):
    monkeypatch.setattr(openai_compat, "MAX_REPLY_BYTES", 100)
    script = Script([(200, {}, reply(padding="x" * 200))])
    server = serve(script)
    try:
        result = engine(server).generate([request()])[0]
    finally:
        server.shutdown()
    assert result.error == "malformed reply: the reply is larger than 100 bytes"


def test_a_null_content_and_usage_read_as_empty():
    parsed = parse_reply(b'{"choices": [{"message": {"content": null}}], "usage": null}', logprobs=True)
    assert (parsed.text, parsed.tokens, parsed.finish_reason, parsed.logprobs) == ("", 0, None, None)


def test_a_retry_after_that_is_no_plain_number_is_ignored():
    script = Script([(429, {"Retry-After": "\u00b2"}, {"error": "slow"}), (503, {"Retry-After": "1e9"}, {}),
                     ok("{}")])
    server = serve(script)
    try:
        result = engine(server).generate([request()])[0]
    finally:
        server.shutdown()
    assert result.text == "{}" and len(script.bodies) == 3


def test_a_garbled_status_line_is_retried_like_a_dropped_connection():
    class Garbage(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.recv(65536)
            self.request.sendall(b"NOT HTTP AT ALL\r\n\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Garbage)
    server.server_port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = engine(server, max_retries=1).generate([request()])[0]
    finally:
        server.shutdown()
        server.server_close()
    assert result.error.startswith("gave up after 2 tries: BadStatusLine")
