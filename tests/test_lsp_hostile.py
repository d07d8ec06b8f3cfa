"""`synthc lsp` against a broken or hostile client, over stdio as in tests/test_lsp.py: messages
too large to take, header blocks that frame nothing, params of the wrong shape, text the parser
refuses. The server must answer every request (a result or an error that says what is wrong),
drop bad notifications with a log line, and keep serving the well-formed messages that follow."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest
from lsp_client import LspClient, LspError

from synthlang import compiler

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 10   # a reply that has not come by then is not coming: fail instead of hanging


@pytest.fixture
def folder(tmp_path) -> Path:
    dest = tmp_path / "support_tickets"
    shutil.copytree(ROOT / "specs" / "support_tickets", dest)
    return dest


@pytest.fixture
def client(folder):
    """A server of its own for each test: one that a test wrecks wrecks no other."""
    c = LspClient(folder)
    c.initialize(folder)
    yield c
    assert c.shutdown() == 0


@pytest.fixture
def spec(folder, client) -> Path:
    path = folder / "tickets.synth"
    client.open(path)
    client.diagnostics(path, timeout=WAIT_S)
    return path


def frame(message: dict) -> bytes:
    body = json.dumps(message).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def hover(ident: str, path: Path) -> dict:
    return {"jsonrpc": "2.0", "id": ident, "method": "textDocument/hover",
            "params": {"textDocument": {"uri": path.as_uri()}, "position": {"line": 0, "character": 0}}}


def still_serving(client: LspClient, path: Path) -> None:
    """The server is alive and reads the stream where it should: a well-formed request is answered."""
    outline = client.request("textDocument/documentSymbol", {"textDocument": {"uri": path.as_uri()}},
                             timeout=WAIT_S)
    assert "Ticket" in [s["name"] for s in outline]
    assert client.proc.poll() is None


# framing -----------------------------------------------------------------------------------------
def test_a_message_over_the_size_limit_is_refused_unread_and_the_next_is_served(client, spec):
    head = frame(hover("huge", spec)).split(b"\r\n\r\n", 1)[1][:60]   # the body's start, its id in it
    client.send_bytes(b"Content-Length: 99999999999\r\n\r\n" + head)
    refused = client.response("huge", timeout=WAIT_S)
    assert refused["error"]["code"] == -32600
    assert "99999999999 bytes" in refused["error"]["message"] and "64 MiB" in refused["error"]["message"]
    still_serving(client, spec)


@pytest.mark.parametrize("header", [
    b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n",
    b"Content-Length: twelve\r\n",
    b"X-Padding: " + b"x" * 20_000 + b"\r\n",
], ids=["no Content-Length", "Content-Length not a number", "header line too long"])
def test_a_header_block_that_frames_nothing_is_an_error_and_the_stream_resynchronises(client, spec, header):
    orphan = json.dumps(hover("orphan", spec)).encode("utf-8")   # a body no header says the length of
    client.send_bytes(header + b"\r\n" + orphan)
    refused = client.response(None, timeout=WAIT_S)
    assert refused["error"]["code"] == -32600 and refused["id"] is None
    still_serving(client, spec)
    with pytest.raises(TimeoutError):   # skipped, not guessed at
        client.response("orphan", timeout=0.5)


def test_a_body_over_the_limit_sent_in_full_is_skipped_to_the_message_after_it():
    # in process, with a small limit: the same skip over 64 MiB through a pipe is only slower
    from synthlang.lsp.framing import FrameReader, Garbled
    body = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "x", "params": {"text": "a\\r\\n" * 5000}}).encode()
    after = frame({"jsonrpc": "2.0", "id": 4, "method": "y"})
    stream = io.BytesIO(b"Content-Length: %d\r\n\r\n" % len(body) + body + after)
    reader = FrameReader(stream.read1, max_body=1000)
    refused = reader.next()
    assert isinstance(refused, Garbled) and refused.request_id == 3 and f"{len(body)} bytes" in refused.reason
    assert reader.next() == after.split(b"\r\n\r\n", 1)[1]
    assert reader.next() is None


def test_a_body_that_is_not_json_gets_a_parse_error(client, spec):
    client.send_bytes(b"Content-Length: 9\r\n\r\n{\"id\": 1,")
    refused = client.response(None, timeout=WAIT_S)
    assert refused["error"]["code"] == -32700
    still_serving(client, spec)


# params ------------------------------------------------------------------------------------------
def _at(path: Path, position) -> dict:
    return {"textDocument": {"uri": path.as_uri()}, "position": position}


@pytest.mark.parametrize(("method", "params", "named"), [
    ("textDocument/hover", lambda p: {"textDocument": 5, "position": {"line": 0, "character": 0}},
     "params.textDocument: expected an object"),
    ("textDocument/hover", lambda p: _at(p, "3:4"), "params.position: expected an object"),
    ("textDocument/hover", lambda p: _at(p, {"line": -1, "character": 0}), "line"),
    ("textDocument/definition", lambda p: _at(p, {"line": 0, "character": -7}), "character"),
    ("textDocument/hover", lambda p: _at(p, {"line": "first", "character": 0}), "params.position.line"),
    ("textDocument/hover", lambda p: {"textDocument": {"uri": p.as_uri()}}, "params.position: required"),
    ("textDocument/references", lambda p: _at(p, {"line": 0, "character": 0}), "params.context: required"),
    ("textDocument/documentSymbol", lambda p: 5, "params: expected an object"),
], ids=["textDocument a number", "position a string", "negative line", "negative character",
        "line a word", "no position", "no context", "params a number"])
def test_a_request_with_bad_params_is_answered_invalid_params_naming_the_field(client, spec, method, params, named):
    with pytest.raises(LspError) as refused:
        client.request(method, params(spec), timeout=WAIT_S)
    assert refused.value.error["code"] == -32602
    assert named in refused.value.error["message"]
    still_serving(client, spec)


def test_a_notification_with_bad_params_is_dropped_with_a_log_line(client, spec):
    client.notify("textDocument/didOpen", {"textDocument": 5})
    logged = client.wait_for("window/logMessage", lambda p: "textDocument/didOpen" in p["message"],
                             timeout=WAIT_S)
    assert "params.textDocument: expected an object" in logged["message"]
    still_serving(client, spec)


@pytest.mark.parametrize("kind", ["fifo", "missing"])
def test_a_request_about_a_file_that_is_not_open_and_cannot_be_read_gets_an_empty_result(client, spec, tmp_path,
                                                                                           kind):
    path = tmp_path / "named.synth"
    if kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(path)   # read as a file, it would stall the server until something writes to it
    ident = {"textDocument": {"uri": path.as_uri()}}
    assert client.request("textDocument/formatting", {**ident, "options": {"tabSize": 2, "insertSpaces": True}},
                          timeout=WAIT_S) is None
    completion = client.request("textDocument/completion", {**ident, "position": {"line": 0, "character": 0}},
                                timeout=WAIT_S)
    assert completion == {"isIncomplete": False, "items": []}
    still_serving(client, spec)


# the text ----------------------------------------------------------------------------------------
def check_says(path: Path) -> list[tuple]:
    """What `synthc check` says about the file: code, 0-based start and end, message."""
    return sorted((d.code, d.span.line - 1, d.span.col - 1, d.span.end_line_col[0] - 1,
                   d.span.end_line_col[1] - 1, d.message)
                  for d in compiler.check(path).diagnostics if d.span is not None)


def editor_says(diags: list[dict]) -> list[tuple]:
    return sorted((d["code"], d["range"]["start"]["line"], d["range"]["start"]["character"],
                   d["range"]["end"]["line"], d["range"]["end"]["character"], d["message"].split("\nhelp:")[0])
                  for d in diags)


@pytest.mark.parametrize(("old", "new", "code"), [
    ("seed 42", "seed 42\0", "E0003"),
    ("count 40", "count 99999999999999999999999999", "E0004"),
], ids=["NUL character", "number out of range"])
def test_text_the_parser_refuses_shows_in_the_editor_as_synthc_check_says(folder, client, tmp_path, old, new,
                                                                         code):
    path = folder / "tickets.synth"
    text = path.read_text(encoding="utf-8").replace(old, new)
    twin = tmp_path / "twin"
    shutil.copytree(folder, twin)
    (twin / "tickets.synth").write_bytes(text.encode("utf-8"))
    expected = check_says(twin / "tickets.synth")
    assert [e[0] for e in expected] == [code]
    client.open(path, text)
    assert editor_says(client.diagnostics(path, timeout=WAIT_S)) == expected
