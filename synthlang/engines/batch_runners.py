"""Where a batch file runs: an OpenAI-compatible Batch API (`BatchAPI`: the file uploaded, a batch
created, polled, its output file downloaded) or an offline runner (`OfflineRunner`: the file left
in the run's folder for a program such as vLLM's `run_batch`, whose output file is waited for).

Both answer the same four questions, so the batch engine (runtime/batch_engine.py) does not
care which: submit a file, find a batch submitted under a name (a run killed between creating a
batch and journaling it), how a batch stands, and fetch its output."""

from __future__ import annotations

import http.client
import json
import os
import shlex
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .. import ir
from ..endpoints import key_consent_problem, model_problems
from ..values import load_json
from .base import EngineDead, EngineOptions
from .batch_format import BATCH_URL, COMPACT_BACKENDS, input_file, output_files, served_name
from .openai_compat import _OPENER, RETRY_STATUS, _error_detail, _retry_after

MAX_STATUS_BYTES = 1 << 20          # a batch object or a list of them
DOWNLOAD_CHUNK = 1 << 20
MAX_DOWNLOAD_BYTES = 8 << 30        # an output file of 50,000 long completions stays far below
TRIES = 5                           # of one Batch API call on 429, 5xx and dropped connections
COMPLETION_WINDOW = "24h"           # the only window OpenAI's Batch API offers
RUNNING = ("validating", "in_progress", "finalizing", "cancelling")
DONE = ("completed",)
ENDED_EARLY = ("expired", "cancelled")      # ended before every request was run; its output holds the rest
FIND_PAGES = 20                     # pages of 100 batches looked through for one created but not journaled
NAME_KEY = "synthc_batch"           # the metadata key naming a batch by its file's name


@dataclass(frozen=True)
class BatchState:
    state: str                      # "running", "done" or "failed"
    detail: str = ""                # the service's status, counts, why it failed
    outputs: tuple[str, ...] = ()   # what fetch downloads: the output file and the error file


class BatchRunner(Protocol):
    where: str                      # for messages: the service or the folder

    def submit(self, name: str, input_path: Path, requests: int) -> str:
        """Hand the input file over; a handle to poll it by."""

    def find(self, name: str) -> str | None:
        """The handle of a batch submitted under `name` and not journaled, if any."""

    def poll(self, handle: str) -> BatchState: ...

    def fetch(self, handle: str, state: BatchState, folder: Path, name: str) -> list[Path]:
        """The batch's output files, written under `folder`."""


class NotFound(EngineDead):
    """The service answered 404 for a batch or file it was asked about."""


class BatchAPI:
    """OpenAI's Batch API, as OpenAI and compatible servers offer it, at the model's endpoint."""

    def __init__(self, model: ir.Model, options: EngineOptions, timeout: float = 120.0, backoff: float = 0.5):
        if not model.endpoint:
            raise EngineDead(f"model `{model.name}`: batch files through a Batch API need an `endpoint`")
        problems = model_problems(model.endpoint, model.api_key_env)
        if problems:
            raise EngineDead(f"model `{model.name}`: {'; '.join(p for _, p in problems)}")
        refusal = model.api_key_env and key_consent_problem(model.name, model.endpoint, model.api_key_env,
                                                            options.key_endpoints)
        if refusal:
            raise EngineDead(refusal)
        self.base = model.endpoint.rstrip("/")
        self.where = f"the Batch API at {self.base}"
        self.api_key = os.environ.get(model.api_key_env, "") if model.api_key_env else ""
        if model.api_key_env and not self.api_key:
            raise EngineDead(f"model `{model.name}`: the environment variable {model.api_key_env} is not set")
        self.timeout, self.backoff = timeout, backoff

    # the protocol ---------------------------------------------------------------------------------
    def submit(self, name: str, input_path: Path, requests: int) -> str:
        uploaded = self._call("POST", "/files", multipart=("batch", input_path))
        file_id = _text(uploaded, "id", "the uploaded file")
        created = self._call("POST", "/batches", {"input_file_id": file_id, "endpoint": BATCH_URL,
                                                  "completion_window": COMPLETION_WINDOW,
                                                  "metadata": {NAME_KEY: name}})
        return _text(created, "id", "the created batch")

    def find(self, name: str) -> str | None:
        """The batch created under `name`, looked for among the account's latest FIND_PAGES pages
        of batches (newest first: one created by a run killed just after is among the first)."""
        after = ""
        for _ in range(FIND_PAGES):
            listed = self._call("GET", "/batches?limit=100" + (f"&after={urllib.parse.quote(after)}" if after else ""))
            data = listed.get("data")
            batches = [b for b in data if isinstance(b, dict)] if isinstance(data, list) else []
            for b in batches:
                if isinstance(b.get("metadata"), dict) and b["metadata"].get(NAME_KEY) == name \
                        and isinstance(b.get("id"), str) and b.get("status") not in ("failed", "expired", "cancelled"):
                    return str(b["id"])
            last = batches[-1].get("id") if batches else None
            if listed.get("has_more") is not True or not isinstance(last, str):
                return None
            after = last
        return None

    def poll(self, handle: str) -> BatchState:
        try:
            b = self._call("GET", f"/batches/{_safe_id(handle)}")
        except NotFound:  # deleted, or another account's: failed, so its requests go in a new batch
            return BatchState("failed", "the service no longer knows this batch (HTTP 404)")
        status = b.get("status")
        counts = b.get("request_counts") if isinstance(b.get("request_counts"), dict) else {}
        detail = f"{status}" + (f", {counts.get('completed', 0)} of {counts.get('total', '?')} done" if counts else "")
        if status in RUNNING:
            return BatchState("running", detail)
        outputs = tuple(str(b[k]) for k in ("output_file_id", "error_file_id") if isinstance(b.get(k), str))
        if status in DONE:
            return BatchState("done", detail, outputs)
        if status in ENDED_EARLY and outputs:
            # an expired or cancelled batch keeps what it finished: those results are read, the
            # rest of its requests come back without one and go in the next batch
            return BatchState("done", detail, outputs)
        errors = b.get("errors")
        why = json.dumps(errors)[:300] if errors else ""
        return BatchState("failed", f"{status}{': ' + why if why else ''}")

    def fetch(self, handle: str, state: BatchState, folder: Path, name: str) -> list[Path]:
        paths = []
        for file_id, path in zip(state.outputs, output_files(folder, name)):
            self._download(f"/files/{_safe_id(file_id)}/content", path)
            paths.append(path)
        return paths

    # HTTP ---------------------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _request(self, method: str, path: str, body: dict | None, multipart: tuple[str, Path] | None):
        headers = self._headers()
        data = None
        if multipart is not None:
            boundary = uuid.uuid4().hex
            purpose, file = multipart
            try:
                content = file.read_bytes()
            except OSError as exc:  # this machine's file, not the service: not asked again
                raise EngineDead(f"could not read {file}: {exc.strerror or exc}") from None
            data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n"
                    f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file.name}\"\r\n"
                    "Content-Type: application/jsonl\r\n\r\n").encode() + content + \
                f"\r\n--{boundary}--\r\n".encode()
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        return urllib.request.Request(self.base + path, data=data, headers=headers, method=method)

    def _call(self, method: str, path: str, body: dict | None = None,
              multipart: tuple[str, Path] | None = None) -> dict:
        def read(resp) -> dict:
            raw = resp.read(MAX_STATUS_BYTES + 1)
            if len(raw) > MAX_STATUS_BYTES:
                raise EngineDead(f"{self.where}: the reply to {method} {path} is larger than "
                                 f"{MAX_STATUS_BYTES:,} bytes")
            try:
                out = load_json(raw.decode("utf-8"), max_depth=16)
            except (UnicodeDecodeError, ValueError):
                raise EngineDead(f"{self.where}: the reply to {method} {path} is not JSON: {raw[:120]!r}") from None
            if not isinstance(out, dict):
                raise EngineDead(f"{self.where}: the reply to {method} {path} is not a JSON object")
            return out

        return self._with_retries(method, path, lambda: self._request(method, path, body, multipart), read)

    def _download(self, path: str, into: Path) -> None:
        def save(resp) -> None:
            tmp = into.with_name(into.name + ".tmp")
            size = 0
            try:
                fh = open(tmp, "wb")  # noqa: SIM115 - closed by the `with fh` below; the open alone is guarded
            except OSError as exc:  # this machine's disk, not the service: not asked again
                raise EngineDead(f"could not write {tmp}: {exc.strerror or exc}") from None
            with fh:
                while chunk := resp.read(DOWNLOAD_CHUNK):
                    size += len(chunk)
                    if size > MAX_DOWNLOAD_BYTES:
                        raise EngineDead(f"{self.where}: {path} is larger than {MAX_DOWNLOAD_BYTES:,} bytes")
                    try:
                        fh.write(chunk)
                    except OSError as exc:
                        raise EngineDead(f"could not write {tmp}: {exc.strerror or exc}") from None
            try:
                tmp.replace(into)
            except OSError as exc:
                raise EngineDead(f"could not write {into}: {exc.strerror or exc}") from None

        self._with_retries("GET", path, lambda: self._request("GET", path, None, None), save)

    def _with_retries(self, method, path, make, read):
        last = ""
        for attempt in range(TRIES):
            wait = None
            try:
                with _OPENER.open(make(), timeout=self.timeout) as resp:
                    return read(resp)
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {_error_detail(exc)}"
                if exc.code == 404:
                    raise NotFound(f"{self.where} does not know {method} {path}: {last}") from None
                if exc.code not in RETRY_STATUS:
                    raise EngineDead(f"{self.where} refused {method} {path}: {last}") from None
                wait = _retry_after(exc)
            except (OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            if attempt + 1 < TRIES:
                time.sleep(wait if wait is not None else self.backoff * 2 ** attempt)
        raise EngineDead(f"{self.where} did not answer {method} {path} after {TRIES} tries: {last}")


class OfflineRunner:
    """The batch file left in the run's folder; the output file next to it is waited for (a
    runner such as vLLM's writes it, one line per request, when the whole file is done)."""

    def __init__(self, model: ir.Model, folder: Path):
        self.model = model
        self.folder = folder
        self.where = f"an offline runner (files in {folder})"
        self.announce = True

    def output_path(self, name: str) -> Path:
        return output_files(self.folder, name)[0]

    def submit(self, name: str, input_path: Path, requests: int) -> str:
        if self.announce:
            how = (f", e.g. from: {runner_command(self.model, input_path, self.output_path(name))}"
                   if self.model.engine == "vllm" else " from an OpenAI-format batch runner")
            print(f"batch {name}: {requests} requests in {input_path}; waiting for {self.output_path(name)}{how}",
                  file=sys.stderr, flush=True)
        return name

    def find(self, name: str) -> str | None:
        return name if input_file(self.folder, name).is_file() else None

    def poll(self, handle: str) -> BatchState:
        path = self.output_path(handle)
        wanted = _lines(input_file(self.folder, handle))
        have = _lines(path) if path.is_file() else 0
        if wanted and have >= wanted:
            return BatchState("done", f"{have} lines", (str(path),))
        return BatchState("running", f"{have} of {wanted} lines")

    def fetch(self, handle: str, state: BatchState, folder: Path, name: str) -> list[Path]:
        return [self.output_path(handle)]


def runner_command(model: ir.Model, input_path: Path, output_path: Path) -> str:
    """A command that runs an input file offline: vLLM's batch runner, for `engine vllm`."""
    from .prepare_vllm import prepared_path

    weights = str(prepared_path()) if ir.is_embedded(model.model) else model.model
    backend = ir.ENGINE_BACKENDS.get("vllm", {}).get(model.backend, "guidance")
    # compact JSON, as the in-process engine has it: vLLM reads this from its config only
    config = json.dumps({"backend": backend, "disable_any_whitespace": backend in COMPACT_BACKENDS})
    return shlex.join(["python", "-m", "vllm.entrypoints.openai.run_batch", "-i", str(input_path), "-o",
                       str(output_path), "--model", weights, "--served-model-name", served_name(model),
                       "--max-model-len", str(model.n_ctx), "--structured-outputs-config", config])


def _lines(path: Path) -> int:
    """Whole lines (ending in a newline) a file holds."""
    try:
        with open(path, "rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(DOWNLOAD_CHUNK), b""))
    except OSError:
        return 0


def _text(obj: dict, key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise EngineDead(f"the Batch API's reply for {what} has no `{key}`")
    return value


def _safe_id(value: str) -> str:
    """An id a service gave, as a path segment: nothing that leaves the segment."""
    if not value or any(c in value for c in "/?#%\\ ") or len(value) > 200:
        raise EngineDead(f"the Batch API gave an id synthc does not send back: {value[:80]!r}")
    return value
