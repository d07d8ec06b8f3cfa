"""`engine openai`: any OpenAI-compatible chat-completions server (`vllm serve`,
llama-cpp-python's server, hosted APIs), with the schema sent the way the server expects,
a concurrency limit, and retries with backoff on 429, 5xx, timeouts and dropped connections.
Every output is validated again by the runtime, and the conformance probe catches a server
that ignores the constraint."""

from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from .. import ir
from ..endpoints import model_problems
from .base import EngineDead, EngineOptions, GenerationRequest, GenerationResult, TokenChoices, merge_pieces

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


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


def _token_choices(choice: dict) -> list[TokenChoices] | None:
    """A choice's `logprobs.content` as token choices; None when the server sent none."""
    content = (choice.get("logprobs") or {}).get("content")
    if not isinstance(content, list):
        return None
    return [(str(t.get("token", "")), merge_pieces((str(a["token"]), float(a["logprob"]))
                                                  for a in t.get("top_logprobs") or []))
            for t in content]


class OpenAICompatEngine:
    def __init__(self, model: ir.Model, options: EngineOptions, max_retries: int = 5, timeout: float = 300.0,
                 backoff: float = 0.5):
        if not model.endpoint:
            raise EngineDead(f"model `{model.name}`: engine openai needs an `endpoint`")
        problems = model_problems(model.endpoint, model.api_key_env)  # a plan may come from anyone
        if problems:
            raise EngineDead(f"model `{model.name}`: {'; '.join(p for _, p in problems)}")
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

    def _body(self, r: GenerationRequest) -> dict:
        body = {"model": self.model.model, "messages": list(r.messages), "max_tokens": r.max_tokens,
                "temperature": r.temperature, "top_p": r.top_p, "seed": r.seed % (2**31)}
        if r.logprobs:
            body["logprobs"], body["top_logprobs"] = True, min(r.logprobs, 20)  # OpenAI's most
        if not self.constrained:
            return body
        if self.schema_format == "json_schema":
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "record", "schema": r.json_schema, "strict": True}}
        elif self.schema_format == "structured_outputs":
            body["structured_outputs"] = {"json": r.json_schema}
        else:
            body["response_format"] = {"type": "json_object", "schema": r.json_schema}
        return body

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        with _OPENER.open(req, timeout=self.timeout) as resp:
            return json.loads(resp.read().decode("utf-8"))

    def _one(self, r: GenerationRequest) -> GenerationResult:
        start = time.perf_counter()
        body = self._body(r)
        last = "no attempt"
        rng = random.Random(r.seed)
        for attempt in range(self.max_retries + 1):
            wait = None
            try:
                out = self._post(body)
                choice = out["choices"][0]
                text = choice["message"].get("content") or ""
                tokens = (out.get("usage") or {}).get("completion_tokens", 0)
                if choice.get("finish_reason") == "length":
                    return GenerationResult(None, tokens=tokens, error="output cut at max_tokens",
                                            seconds=time.perf_counter() - start)
                return GenerationResult(text, tokens=tokens, seconds=time.perf_counter() - start,
                                        logprobs=_token_choices(choice) if r.logprobs else None)
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", errors="replace")[:300] if exc.fp else ""
                last = f"HTTP {exc.code}: {detail}"
                if exc.code not in RETRY_STATUS:
                    return GenerationResult(None, error=last, seconds=time.perf_counter() - start)
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    wait = min(float(retry_after), 60.0)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            except (KeyError, IndexError, ValueError) as exc:
                return GenerationResult(None, error=f"malformed response: {exc}", seconds=time.perf_counter() - start)
            if attempt < self.max_retries:
                time.sleep(wait if wait is not None else self.backoff * (2 ** attempt) * (0.5 + rng.random()))
        return GenerationResult(None, error=f"gave up after {self.max_retries + 1} tries: {last}",
                                seconds=time.perf_counter() - start)

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        results = list(self.pool.map(self._one, requests))
        failed = sum(1 for x in results if x.error and x.error.startswith("gave up"))
        self.consecutive_failures = self.consecutive_failures + failed if failed == len(results) else 0
        if self.consecutive_failures >= 3 * max(1, len(results)):
            raise EngineDead(f"{self.url} does not answer: {results[-1].error}")
        return results

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
