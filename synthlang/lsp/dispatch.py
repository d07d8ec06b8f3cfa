"""From the bodies framing.py reads to pygls's handlers, with every message checked once, here,
before any handler sees it: a request that cannot be handled (not JSON, not JSON-RPC, params
not of the shape its method takes) is answered with the JSON-RPC error that says what is wrong,
and such a notification is dropped with a warning to the client's log. pygls's own loop drops
both without a word, which leaves the client waiting forever for the reply."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import attrs
import cattrs
from pygls.exceptions import JsonRpcException
from pygls.protocol import JsonRPCProtocol

from .framing import FrameReader, Garbled, RequestId

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602

_MISSING = object()
log = logging.getLogger(__name__)


async def serve(stop: threading.Event, frames: FrameReader, protocol: JsonRPCProtocol, reads: Executor,
                warn: Callable[[str], None]) -> None:
    """Hands each message off the stream to the protocol until the stream ends or the server
    stops; `warn` tells the client's log of a notification dropped. Reads block, so they run in
    `reads`, off the event loop."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        frame = await loop.run_in_executor(reads, frames.next)
        if frame is None:
            break
        if isinstance(frame, Garbled):
            log.warning("unreadable message: %s", frame.reason)
            reply_error(protocol, frame.request_id, INVALID_REQUEST, frame.reason)
        else:
            deliver(protocol, frame, warn)


def deliver(protocol: JsonRPCProtocol, body: bytes, warn: Callable[[str], None]) -> None:
    """Parses one body, checks it and hands it to its handler, or answers or drops it as the
    module says."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:   # RecursionError: nested deeper than the parser goes
        reply_error(protocol, None, PARSE_ERROR, f"message is not JSON: {exc}")
        return
    wrong = _not_json_rpc(data)
    if wrong is not None:
        if isinstance(data, dict) and "method" not in data:   # a response from the client is not answered
            log.warning("dropped a response: %s", wrong)
        else:
            reply_error(protocol, _id_of(data), INVALID_REQUEST, wrong)
        return
    try:
        message = protocol.structure_message(data)
    except JsonRpcException as exc:
        _refuse(protocol, data, exc, warn)
        return
    try:
        protocol.handle_message(message)
    except Exception:   # pygls answers a request whose handler fails; this is a failure around that
        log.exception("handling %s failed", data.get("method", "a response"))


def reply_error(protocol: JsonRPCProtocol, request_id: RequestId, code: int, message: str) -> None:
    """Sends the error response to a request, or, with request_id None, to a message whose id could
    not be told."""
    # built here, not as pygls's ResponseErrorMessage: its converter leaves out an id of None,
    # and JSON-RPC wants `"id": null` there
    protocol._send_data({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})


def _not_json_rpc(data: Any) -> str | None:
    """Why the parsed body is no JSON-RPC 2.0 message; None when it is one."""
    if not isinstance(data, dict):
        return "message is not a JSON object (batches are not taken)"
    if data.get("jsonrpc") != "2.0":
        return 'message is not JSON-RPC 2.0: `"jsonrpc": "2.0"` is missing'
    if "method" in data and not isinstance(data["method"], str):
        return "method is not a string"
    if "id" in data and _id_of(data) is None:
        return "id is not a number or a string"
    return None


def _id_of(data: Any) -> RequestId:
    ident = data.get("id") if isinstance(data, dict) else None
    return ident if isinstance(ident, (int, str)) and not isinstance(ident, bool) else None


def _refuse(protocol: JsonRPCProtocol, data: dict, exc: JsonRpcException, warn: Callable[[str], None]) -> None:
    """Answers a request that did not structure with what is wrong in it; drops a notification
    (or a response from the client) with a warning."""
    cause = exc.__cause__
    problems = _problems(cause, data) if isinstance(cause, cattrs.BaseValidationError) else [str(cause or exc)]
    method = data.get("method")
    said = f"{method or 'response'}: " + "; ".join(problems)
    if method is None or "id" not in data:
        warn(f"dropped {said}")
        return
    in_params = all(p.startswith("params") for p in problems)
    reply_error(protocol, _id_of(data), INVALID_PARAMS if in_params else INVALID_REQUEST, said)


# what is wrong, in the client's words ---------------------------------------------------------------
def _problems(error: cattrs.BaseValidationError, data: dict) -> list[str]:
    """Each thing wrong in a message that did not structure, as `where: what`, `where` the path in
    the message as the client wrote it (`params.textDocument.uri`)."""
    out: list[str] = []
    for line in cattrs.transform_error(error, path="", format_exception=_what):
        what, _, path = line.rpartition(" @ ")
        problem = _problem(data, _steps(path), what)
        if problem not in out:
            out.append(problem)
    return out


def _what(exc: BaseException, type_: Any) -> str:
    """What went wrong structuring one value into type_ (None where a class's validator refused it)."""
    if isinstance(exc, KeyError):
        return "required field missing"
    if type_ is None:
        return str(exc)   # a validator's message names the field and the range it wants
    if attrs.has(type_):
        return "expected an object"
    return f"expected {getattr(type_, '__name__', type_)}"


def _steps(path: str) -> list[str | int]:
    """`.params.text_document.uri` or `.params.content_changes[0]` as steps in the client's names."""
    steps: list[str | int] = []
    for part in path.replace("[", ".[").split(".")[1:]:
        if part.startswith("[") and part.endswith("]") and part[1:-1].isdigit():
            steps.append(int(part[1:-1]))
        elif part:
            head, *rest = part.rstrip("_").split("_")   # lsprotocol's attributes are the wire's camelCase names
            steps.append(head + "".join(w.title() for w in rest))
    return steps


def _problem(data: Any, steps: list[str | int], what: str) -> str:
    """`where: what` for one failure, said of the first value on the way that is not the object or
    array the path goes into, if there is one: cattrs blames the first field it could not read
    from a 5 where an object should be, but the 5 is what the client got wrong."""
    value, where = data, ""
    for step in steps:
        if value is _MISSING:
            break
        container = list if isinstance(step, int) else dict
        if not isinstance(value, container):
            return f"{where}: expected {'an array' if container is list else 'an object'}, got {_shown(value)}"
        value = _into(value, step)
        where += f"[{step}]" if isinstance(step, int) else f"{'.' if where else ''}{step}"
    if value is not _MISSING and what.startswith("expected"):
        what += f", got {_shown(value)}"
    return f"{where}: {what}"


def _into(value: list | dict, step: str | int) -> Any:
    """The item or member a step names; _MISSING when there is none."""
    if isinstance(value, list):
        return value[step] if isinstance(step, int) and 0 <= step < len(value) else _MISSING
    return value.get(step, _MISSING)


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
