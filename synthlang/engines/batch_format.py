"""OpenAI-format batch files, the one place their lines are defined.

An input line is {"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}: the body
is the chat-completions request a live call would send (openai_compat.chat_body), or for
`engine vllm` the request vLLM's own batch runner reads, the schema in `structured_outputs` (for
the Outlines backend, as the same exact regex the in-process engine sends) and the seed as the
in-process engine passes it.
An output line is {"id", "custom_id", "response": {"status_code", "body"}, "error"}; each is read
back, bounded like a live reply, to the GenerationResult a live call would have given."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import ir
from ..values import load_json
from .base import GenerationRequest, GenerationResult, deterministic
from .json_regex import json_regex
from .openai_compat import MALFORMED, MAX_REPLY_BYTES, RETRY_STATUS, MalformedReply, chat_body, parse_reply

BATCH_URL = "/v1/chat/completions"
MAX_BATCH_REQUESTS = 50_000          # OpenAI's limit of requests in one batch file
MAX_BATCH_BYTES = 190 << 20          # and under its 200 MB limit of one file's size
MAX_OUTPUT_LINE = MAX_REPLY_BYTES + 4096
COMPACT_BACKENDS = ("guidance", "xgrammar")   # vLLM's disable_any_whitespace covers these


def served_name(model: ir.Model) -> str:
    """The model name a batch line's body carries (the runner's --served-model-name)."""
    return model.model


def request_body(model: ir.Model, r: GenerationRequest, constrained: bool = True) -> dict[str, Any]:
    """What a batch line asks for: the live call's body on `engine openai`; on `engine vllm`, the
    structured-output fields vLLM's batch runner reads."""
    if model.engine != "vllm":
        return chat_body(served_name(model), r, model.schema_format if constrained else None)
    body = chat_body(served_name(model), r, None)
    body["seed"] = r.seed % (2**63)   # as the in-process engine seeds it: the same request, the same output
    if constrained:
        backend = ir.ENGINE_BACKENDS["vllm"].get(model.backend, "guidance")
        # compact JSON is the runner's setting (vLLM reads disable_any_whitespace from its
        # --structured-outputs-config only, not per request: batch_runners.runner_command)
        body["structured_outputs"] = ({"regex": json_regex(r.json_schema)} if backend == "outlines"
                                      else {"json": r.json_schema})
    return body


def request_line(custom_id: str, body: dict[str, Any]) -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": BATCH_URL, "body": body},
                      ensure_ascii=False, separators=(",", ":")) + "\n"


def write_input(path: Path, lines: Iterable[str]) -> int:
    """The input file, written whole then renamed into place (a kill leaves none or all of it);
    its size in bytes."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line)
        fh.flush()
        size = fh.tell()
    tmp.replace(path)
    return size


def input_file(folder: Path, name: str) -> Path:
    """Where batch `name`'s requests are written."""
    return folder / f"{name}.input.jsonl"


def output_files(folder: Path, name: str) -> list[Path]:
    """Where batch `name`'s results land: its output file (an offline runner's, or the one a
    Batch API's is downloaded to) and, from a Batch API, its error file."""
    return [folder / f"{name}.output.jsonl", folder / f"{name}.errors.jsonl"]


def read_output(path: Path, wanted: set[str]) -> tuple[dict[str, GenerationResult], int]:
    """The results of an output (or error) file by custom_id, for the ids in `wanted` (others,
    and lines that are not output lines, are left out and counted: the second value)."""
    found: dict[str, GenerationResult] = {}
    odd = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        while True:
            line = fh.readline(MAX_OUTPUT_LINE + 1)
            if not line:
                break
            if not line.strip():
                continue
            custom_id, result = parse_output_line(line)
            if custom_id is None or custom_id not in wanted or result is None:
                odd += 1
                continue
            found[custom_id] = result
    return found, odd


def parse_output_line(line: str) -> tuple[str | None, GenerationResult | None]:
    """(custom_id, result) of one output line; (None, None) for a line that is not one."""
    if len(line) > MAX_OUTPUT_LINE:
        return None, None
    try:
        out = load_json(line, max_depth=24)
    except ValueError:
        return None, None
    if not isinstance(out, dict) or not isinstance(out.get("custom_id"), str):
        return None, None
    custom_id = out["custom_id"]
    response = out.get("response")
    error = out.get("error")
    if not isinstance(response, dict):
        why = json.dumps(error)[:300] if error is not None else "no response"
        # transient, and the batch was its try: a later attempt asks again in the next batch
        return custom_id, GenerationResult(None, error=f"batch: {why}", error_kind="exhausted")
    status = response.get("status_code")
    body = response.get("body")
    if not isinstance(status, int) or isinstance(status, bool):
        return custom_id, deterministic(f"{MALFORMED}: a batch output line without a status code", "malformed_reply")
    if status != 200 or not isinstance(body, dict):
        why = f"HTTP {status}: {json.dumps(error if error is not None else body)[:300]}"
        if status in RETRY_STATUS:
            return custom_id, GenerationResult(None, error=f"batch: {why}", error_kind="exhausted")
        return custom_id, deterministic(f"batch: {why}", "request_refused")
    try:
        reply = parse_reply(json.dumps(body).encode("utf-8"), logprobs=True)
    except MalformedReply as exc:
        return custom_id, deterministic(f"{MALFORMED}: {exc}", "malformed_reply")
    if reply.finish_reason == "length":
        return custom_id, deterministic("output cut at max_tokens", "max_tokens", tokens=reply.tokens)
    return custom_id, GenerationResult(reply.text, tokens=reply.tokens, logprobs=reply.logprobs)
