"""A small synchronous client of the Language Server Protocol over a subprocess's stdio, enough
to drive `synthc lsp` the way an editor does."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


class LspError(Exception):
    def __init__(self, error: dict):
        super().__init__(error.get("message", "error"))
        self.error = error


class LspClient:
    def __init__(self, cwd: Path):
        self.proc = subprocess.Popen([sys.executable, "-m", "synthlang.cli", "lsp"], cwd=cwd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._next = 0
        self._responses: dict[int, queue.Queue] = {}
        self.notifications: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        self._lock = threading.Lock()
        self.stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        # drained so that a server logging a lot (tracebacks of refused messages) never blocks on a full pipe
        threading.Thread(target=self._read_stderr, daemon=True).start()

    # the wire --------------------------------------------------------------------------------------
    def _send(self, message: dict) -> None:
        body = json.dumps(message).encode("utf-8")
        self.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def send_bytes(self, data: bytes) -> None:
        """Writes raw bytes to the server, framed or not (what a broken or hostile client sends)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length is None:
                continue
            message = json.loads(out.read(length))
            if "id" in message and "method" not in message:
                with self._lock:
                    box = self._responses.setdefault(message["id"], queue.Queue())
                box.put(message)
            elif "id" in message:   # a request from the server (e.g. workDoneProgress): answer it
                self._send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            else:
                self.notifications.put(message)

    # requests and notifications -------------------------------------------------------------------
    def request(self, method: str, params: Any, timeout: float = 60) -> Any:
        self._next += 1
        ident = self._next
        self._send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        message = self.response(ident, timeout)
        if "error" in message:
            raise LspError(message["error"])
        return message.get("result")

    def response(self, ident: Any, timeout: float = 60) -> dict:
        """The whole response message with this id (None for the server's replies to what it could not
        read), as it came; TimeoutError if none came in time."""
        with self._lock:
            box = self._responses.setdefault(ident, queue.Queue())
        try:
            return box.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no response to {ident!r} in {timeout} s") from None

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait_for(self, method: str, match=lambda params: True, timeout: float = 30) -> dict:
        """The next notification of `method` whose params satisfy `match` (others are kept in `seen`)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {method} notification matched in {timeout} s")
            message = self.notifications.get(timeout=left)
            self.seen.append(message)
            if message.get("method") == method and match(message.get("params")):
                return message["params"]

    def drain(self) -> None:
        while not self.notifications.empty():
            self.seen.append(self.notifications.get_nowait())

    # an editor's session ---------------------------------------------------------------------------
    def initialize(self, root: Path) -> dict:
        result = self.request("initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": {
            "textDocument": {"hover": {"contentFormat": ["markdown"]}, "rename": {"prepareSupport": True},
                             "documentSymbol": {"hierarchicalDocumentSymbolSupport": True}}}})
        self.notify("initialized", {})
        return result

    def open(self, path: Path, text: str | None = None, version: int = 1) -> None:
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": path.as_uri(), "languageId": "synth", "version": version,
            "text": path.read_text(encoding="utf-8") if text is None else text}})

    def change(self, path: Path, text: str, version: int) -> None:
        self.notify("textDocument/didChange", {"textDocument": {"uri": path.as_uri(), "version": version},
                                               "contentChanges": [{"text": text}]})

    def close(self, path: Path) -> None:
        self.notify("textDocument/didClose", {"textDocument": {"uri": path.as_uri()}})

    def diagnostics(self, path: Path, match=lambda diags: True, timeout: float = 30) -> list[dict]:
        return self.wait_for("textDocument/publishDiagnostics",
                             lambda p: p["uri"] == path.as_uri() and match(p["diagnostics"]),
                             timeout)["diagnostics"]

    def shutdown(self) -> int:
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
