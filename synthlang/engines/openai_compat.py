"""`engine openai`: any OpenAI-compatible chat-completions server (`vllm serve`,
llama-cpp-python's server, hosted APIs), with the schema sent the way the server expects,
a concurrency limit, and retries with backoff on 429, 5xx, timeouts and dropped connections.
Every output is validated again by the runtime, and the conformance probe catches a server
that ignores the constraint.

A try has `timeout` seconds for its whole reply, however the server spreads its bytes. A try
that times out is retried once; a request that gets no reply in time twice means the server is
stuck (it takes connections and never answers) or far slower than the timeout: the requests
not yet sent are not sent and the run stops (EngineDead, resumable), about two timeouts after
the stall began, instead of six tries of every request, call after call. The attempts of that
call are not rejected, so the resume asks them again.

The server is the spec's choice, so its replies are data from anyone: each is read up to a
size, parsed with bounded nesting and checked for the shape of a chat completion (parse_reply)
before anything in it is used; an API key goes only to a server the user allowed."""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .. import ir
from ..endpoints import key_consent_problem, model_problems
from ..values import load_json
from .base import (
    EngineDead,
    EngineOptions,
    GenerationRequest,
    GenerationResult,
    TokenChoices,
    deterministic,
    merge_pieces,
)

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_REPLY_BYTES = 64 * 2**20    # a long completion with 20 likely tokens per step stays far below
MAX_REPLY_DEPTH = 16            # a reply's token probabilities lie 8 arrays and objects deep
MAX_ERROR_BYTES = 4096          # of an error reply's body, for its reason
MAX_TOKEN_COUNT = 2**31         # a count past this is no count (and would overflow the cache's columns)
MALFORMED = "malformed reply"   # starts the error of a request whose reply was not a chat completion
MALFORMED_IN_A_ROW = 3          # replies like that, with none well formed between, that end the run
TIMEOUT_TRIES = 2               # tries of one request that time out before the server is taken as stuck
READ_CHUNK = 1 << 16            # a reply is read this much at a time, the deadline checked between
_SECONDS = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: following one would carry the Authorization header to whatever
    host the server names."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# only http and https: no file://, ftp:// or data: handlers, and no redirects
_OPENER = urllib.request.OpenerDirector()
for _handler in (urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(), urllib.request.HTTPErrorProcessor(),
                 urllib.request.HTTPDefaultErrorHandler(), _NoRedirect()):
    _OPENER.add_handler(_handler)


class MalformedReply(ValueError):
    """A server's 200 reply is not a chat completion; the message says what is wrong."""


@dataclass(frozen=True)
class Reply:
    text: str
    tokens: int
    finish_reason: str | None
    logprobs: list[TokenChoices] | None


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", dict: "an object", list: "a list"}


def _field(obj: dict, key: str, kinds: tuple[type, ...], where: str, default: Any = None) -> Any:
    """obj[key] when it is one of `kinds` (a bool is never a number), `default` when missing or
    null; else MalformedReply naming the field."""
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise MalformedReply(f"`{where}{key}` is not {' or '.join(_KIND_NAMES[k] for k in kinds)}")
    return value


def _logprob(obj: dict, where: str) -> float:
    """obj["logprob"] as a finite float: 1e999 reads as infinity, and an integer of hundreds of
    digits is no float at all."""
    value = _field(obj, "logprob", (int, float), where, default=0.0)
    try:
        value = float(value)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise MalformedReply(f"`{where}logprob` is not a finite number")
    return value


def _token_choices(logprobs: Any) -> list[TokenChoices] | None:
    """A choice's `logprobs.content` as token choices; None when the server sent none."""
    if logprobs is None:
        return None
    if not isinstance(logprobs, dict):
        raise MalformedReply("`choices[0].logprobs` is not an object")
    content = _field(logprobs, "content", (list,), "choices[0].logprobs.")
    if content is None:
        return None
    out = []
    for i, t in enumerate(content):
        if not isinstance(t, dict):
            raise MalformedReply(f"`choices[0].logprobs.content[{i}]` is not an object")
        where = f"choices[0].logprobs.content[{i}]."
        top = []
        for a in _field(t, "top_logprobs", (list,), where, default=[]):
            if not isinstance(a, dict):
                raise MalformedReply(f"`{where}top_logprobs` holds something that is not an object")
            top.append((_field(a, "token", (str,), where + "top_logprobs[].", default=""),
                        _logprob(a, where + "top_logprobs[].")))
        out.append((_field(t, "token", (str,), where, default=""), merge_pieces(top)))
    return out


def parse_reply(data: bytes, logprobs: bool) -> Reply:
    """A chat-completions reply's first choice: its text ("" for a null content), completion
    tokens, finish reason, and token choices when `logprobs`. Raises MalformedReply saying why
    the bytes are not such a reply: not UTF-8, not JSON, nested too deeply, or the wrong shape."""
    if len(data) > MAX_REPLY_BYTES:
        raise MalformedReply(f"the reply is larger than {MAX_REPLY_BYTES:,} bytes")
    try:
        out = load_json(data.decode("utf-8"), max_depth=MAX_REPLY_DEPTH)  # no NaN, no lone surrogates
    except UnicodeDecodeError:
        raise MalformedReply("the reply is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise MalformedReply(f"the reply is not JSON: {str(exc)[:200]}") from None
    except ValueError as exc:  # too deep, NaN, a lone surrogate, an integer of thousands of digits
        raise MalformedReply(f"the reply is refused: {str(exc)[:200]}") from None
    if not isinstance(out, dict):
        raise MalformedReply("the reply is not a JSON object")
    choices = _field(out, "choices", (list,), "", default=[])
    if not choices or not isinstance(choices[0], dict):
        raise MalformedReply("`choices` holds no choice object")
    choice = choices[0]
    message = _field(choice, "message", (dict,), "choices[0].")
    if message is None:
        raise MalformedReply("`choices[0].message` is missing")
    usage = _field(out, "usage", (dict,), "", default={})
    tokens = _field(usage, "completion_tokens", (int,), "usage.", default=0)
    if not 0 <= tokens < MAX_TOKEN_COUNT:
        raise MalformedReply(f"`usage.completion_tokens` is not a token count: {tokens}")
    return Reply(text=_field(message, "content", (str,), "choices[0].message.", default=""), tokens=tokens,
                 finish_reason=_field(choice, "finish_reason", (str,), "choices[0]."),
                 logprobs=_token_choices(choice.get("logprobs")) if logprobs else None)


def _read_before(resp: Any, limit: int, deadline: float, timeout: float) -> bytes:
    """Up to `limit` bytes of a reply's body, or TimeoutError once `deadline` (a monotonic time)
    has passed: the socket's timeout bounds one wait, so a server sending a byte now and then
    would otherwise hold the try for ever."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the reply took longer than {timeout:g} s")
        chunk = resp.read1(min(READ_CHUNK, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _timed_out(exc: BaseException) -> bool:
    """A try that waited its timeout out (while connecting, for the headers or for the body)."""
    return isinstance(exc, TimeoutError) or (isinstance(exc, urllib.error.URLError)
                                             and isinstance(exc.reason, TimeoutError))


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """The start of an error reply's body (read only that far: the server may send gigabytes)."""
    try:
        return exc.read(MAX_ERROR_BYTES).decode("utf-8", errors="replace")[:300] if exc.fp else ""
    except (OSError, http.client.HTTPException):
        return ""


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    """The seconds a Retry-After header asks for (at most 60); None without a number there."""
    value = exc.headers.get("Retry-After") if exc.headers else None
    return min(float(value), 60.0) if value and _SECONDS.fullmatch(value.strip()) else None


def chat_body(served_model: str, r: GenerationRequest, schema_format: str | None) -> dict:
    """The chat-completions request body of `r`, its schema sent as `schema_format` says (None:
    unconstrained). Live calls and batch files (batch_format.py) send the same body."""
    body: dict[str, Any] = {"model": served_model, "messages": list(r.messages), "max_tokens": r.max_tokens,
                            "temperature": r.temperature, "top_p": r.top_p, "seed": r.seed % (2**31)}
    if r.logprobs:
        body["logprobs"], body["top_logprobs"] = True, min(r.logprobs, 20)  # OpenAI's most
    if schema_format is None:
        return body
    if schema_format == "json_schema":
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "record", "schema": r.json_schema, "strict": True}}
    elif schema_format == "structured_outputs":
        body["structured_outputs"] = {"json": r.json_schema}
    else:
        body["response_format"] = {"type": "json_object", "schema": r.json_schema}
    return body


class OpenAICompatEngine:
    def __init__(self, model: ir.Model, options: EngineOptions, max_retries: int = 5, timeout: float = 300.0,
                 backoff: float = 0.5):
        if not model.endpoint:
            raise EngineDead(f"model `{model.name}`: engine openai needs an `endpoint`")
        problems = model_problems(model.endpoint, model.api_key_env)  # a plan may come from anyone
        if problems:
            raise EngineDead(f"model `{model.name}`: {'; '.join(p for _, p in problems)}")
        refusal = model.api_key_env and key_consent_problem(model.name, model.endpoint, model.api_key_env,
                                                            options.key_endpoints)
        if refusal:  # the command line refuses this before; a caller of the engine gets it here
            raise EngineDead(refusal)
        self.name = f"openai:{model.model}@{model.endpoint}"
        self.capabilities = None  # a remote server: what it enforces is probed
        # `concurrency` requests at a time, as many again queued so a finished one is replaced
        self.in_flight = options.batch or 2 * max(1, model.concurrency)
        self.model = model
        self.url = model.endpoint.rstrip("/") + "/chat/completions"
        self.api_key = os.environ.get(model.api_key_env, "") if model.api_key_env else ""
        if model.api_key_env and not self.api_key:
            raise EngineDead(f"model `{model.name}`: the environment variable {model.api_key_env} is not set")
        self.schema_format = model.schema_format
        self.constrained = options.constrained
        self.max_retries, self.timeout, self.backoff = max_retries, timeout, backoff
        self.pool = ThreadPoolExecutor(max_workers=max(1, model.concurrency))
        self.consecutive_failures = 0
        self.malformed_in_a_row = 0
        self.stuck: str | None = None  # why the server is taken as stuck: nothing more is sent

    def _body(self, r: GenerationRequest) -> dict:
        return chat_body(self.model.model, r, self.schema_format if self.constrained else None)

    def _post(self, body: dict, logprobs: bool) -> Reply:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        deadline = time.monotonic() + self.timeout
        with _OPENER.open(req, timeout=self.timeout) as resp:
            return parse_reply(_read_before(resp, MAX_REPLY_BYTES + 1, deadline, self.timeout), logprobs)

    def _one(self, r: GenerationRequest) -> GenerationResult:
        start = time.perf_counter()
        body = self._body(r)
        last = "no attempt"
        rng = random.Random(r.seed)
        tries = timeouts = 0
        for attempt in range(self.max_retries + 1):
            if self.stuck is not None:  # another request found the server stuck: generate() raises
                break
            wait = None
            tries += 1
            try:
                reply = self._post(body, bool(r.logprobs))
                if reply.finish_reason == "length":
                    return deterministic("output cut at max_tokens", "max_tokens", tokens=reply.tokens,
                                         seconds=time.perf_counter() - start)
                return GenerationResult(reply.text, tokens=reply.tokens, seconds=time.perf_counter() - start,
                                        logprobs=reply.logprobs)
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {_error_detail(exc)}"
                if exc.code not in RETRY_STATUS:  # 400, 401, 404, ...: the server refuses this request
                    return deterministic(last, "request_refused", seconds=time.perf_counter() - start)
                wait = _retry_after(exc)
            except MalformedReply as exc:  # asking again gets the same reply: not retried
                return deterministic(f"{MALFORMED}: {exc}", "malformed_reply", seconds=time.perf_counter() - start)
            except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, a bad status line
                if _timed_out(exc):
                    timeouts += 1
                    last = f"no reply within {self.timeout:g} s"
                    if timeouts >= TIMEOUT_TRIES:
                        self.stuck = (f"{self.url} sent no reply within {self.timeout:g} s to a request, "
                                      f"{timeouts} times; the server is stuck or slower than that")
                        break
                else:
                    last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            if attempt < self.max_retries:
                time.sleep(wait if wait is not None else self.backoff * (2 ** attempt) * (0.5 + rng.random()))
        return GenerationResult(None, error=f"gave up after {tries} tr{'y' if tries == 1 else 'ies'}: {last}",
                                seconds=time.perf_counter() - start, error_kind="exhausted")

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        results = list(self.pool.map(self._one, requests))
        if self.stuck is not None:  # none of this call's results is kept: the resume asks again
            raise EngineDead(self.stuck)
        self._count_malformed(results)
        failed = sum(1 for x in results if x.error and x.error.startswith("gave up"))
        self.consecutive_failures = self.consecutive_failures + failed if failed == len(results) else 0
        if self.consecutive_failures >= 3 * max(1, len(results)):
            raise EngineDead(f"{self.url} does not answer: {results[-1].error}")
        return results

    def _count_malformed(self, results: list[GenerationResult]) -> None:
        """Raise EngineDead once MALFORMED_IN_A_ROW replies in a row were not chat completions: the
        runtime would otherwise ask again, attempt after attempt, a server that answers so each time."""
        for x in results:
            if x.error is not None and x.error.startswith(MALFORMED):
                self.malformed_in_a_row += 1
                if self.malformed_in_a_row >= MALFORMED_IN_A_ROW:
                    raise EngineDead(f"{self.url} keeps sending replies that are not chat completions "
                                     f"({x.error.removeprefix(MALFORMED + ': ')})")
            elif x.error is None:
                self.malformed_in_a_row = 0

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
