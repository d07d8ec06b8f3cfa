"""Where a spec may send requests, and which secret it may send along: the rules shared by the
checker (`model` blocks), the plan validator and the OpenAI-compatible engine (which applies them
again to a plan).

A spec comes from anyone; the environment it runs in holds the user's secrets. So an endpoint is
an http(s) URL written in plain ASCII and nothing else (no `file://`, no credentials in the URL,
no character that could forge a printed line), an API key comes only from a variable whose name
says it is one, a key never travels in clear text to another machine, and a key goes only to a
server the user (never the spec) allowed with --allow-endpoint or $SYNTHC_ALLOW_ENDPOINTS."""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable, Mapping
from urllib.parse import SplitResult, urlsplit

KEY_VARIABLE = re.compile(r"[A-Z][A-Z0-9_]*(_API_KEY|_TOKEN)|API_KEY")
KEY_VARIABLE_HELP = "an API key is read only from a variable named like OPENAI_API_KEY or HF_TOKEN " \
                    "(upper case, ending in _API_KEY or _TOKEN)"


ALLOW_FLAG = "--allow-endpoint"
ALLOW_ENV = "SYNTHC_ALLOW_ENDPOINTS"
DEFAULT_PORTS = {"http": 80, "https": 443}

# What an endpoint may hold: printable ASCII without spaces. A CR or LF printed with the endpoint
# forges a line of its own (a `network:` line saying something else), urlsplit silently drops
# TAB and LF (the URL checked would not be the URL shown), http.client refuses any of them
# mid-run, and a non-ASCII letter can pass for another host's.
_URL_CHARACTERS = re.compile(r"[\x21-\x7e]*")
_HOST_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")


def _shown(char: str) -> str:
    """A character as an escape that prints as itself: \\x0a, U+00E9."""
    return f"\\x{ord(char):02x}" if ord(char) < 0x80 else f"U+{ord(char):04X}"


def _character_problem(text: str) -> str | None:
    if _URL_CHARACTERS.fullmatch(text):
        return None
    bad = next(c for c in text if not _URL_CHARACTERS.fullmatch(c))
    what = "a space" if bad == " " else "a control character" if ord(bad) < 0x20 or 0x7f <= ord(bad) < 0xa0 \
        else "a non-ASCII character"
    return (f"the URL holds {what} ({_shown(bad)}): an endpoint is printable ASCII without spaces "
            "(percent-encode a path, write a host name in its xn-- form)")


def _host_problem(host: str) -> str | None:
    """Why `host` (as urlsplit gives it: no brackets, lower case) names no server, or None."""
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
            return None
        except ValueError:
            return f"`{host}` is not an IPv6 address"
    if not _HOST_NAME.fullmatch(host):
        return f"`{host}` is not a host name or an IP address"
    return None


def endpoint_problem(url: str) -> str | None:
    """Why the URL cannot be an endpoint, or None."""
    problem = _character_problem(url)
    if problem:
        return problem
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"endpoints are http:// or https:// URLs, not `{parts.scheme or url}`"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username or parts.password:
        return "the URL carries credentials; use `api_key_env` instead"
    return _host_problem(parts.hostname)


def key_variable_problem(name: str) -> str | None:
    if not KEY_VARIABLE.fullmatch(name):
        return f"`{name}` does not name an API key variable: {KEY_VARIABLE_HELP}"
    return None


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def key_transport_problem(url: str) -> str | None:
    """A key may go over plain http only to this machine."""
    parts = urlsplit(url)
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        return (f"the API key would be sent in clear text to {parts.hostname}: use an https:// endpoint "
                "(plain http is allowed only for servers on this machine)")
    return None


def model_problems(endpoint: str | None, key_variable: str | None) -> list[tuple[str, str]]:
    """Every rule above that a model's endpoint and key variable break, as (setting, problem)."""
    problems = []
    if endpoint is not None:
        problem = endpoint_problem(endpoint)
        if problem:
            problems.append(("endpoint", problem))
    if key_variable is not None:
        problem = key_variable_problem(key_variable)
        if problem is None and endpoint is not None and not problems:
            problem = key_transport_problem(endpoint)
        if problem:
            problems.append(("api_key_env", problem))
    return problems


# ---- which servers the user lets a key go to -------------------------------------------------

Allowance = tuple[str | None, str, int | None]  # (scheme or None: any, host, port or None: any)


def _host_key(host: str) -> str:
    return host.lower().rstrip(".")


def _port(parts: SplitResult) -> int:
    return parts.port or DEFAULT_PORTS[parts.scheme]


def parse_allowance(text: str) -> Allowance:
    """What one --allow-endpoint value lets a key go to. A URL allows its server: its scheme,
    host and port (the scheme's default when none is written), whatever the path. HOST:PORT
    allows that port over http or https; a bare HOST allows every port of it. Raises ValueError
    saying why the text is none of these."""
    value = text.strip()
    problem = _character_problem(value)
    if problem:
        raise ValueError(problem.replace("the URL holds", "it holds", 1))
    if "://" in value:
        problem = endpoint_problem(value)
        if problem:
            raise ValueError(problem)
        parts = urlsplit(value)
        return parts.scheme, _host_key(parts.hostname or ""), _port(parts)
    try:
        parts = urlsplit("//" + value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a host or HOST:PORT ({exc})") from None
    if not parts.hostname or parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("a value is a URL (https://host[:port]), a HOST:PORT or a HOST")
    problem = _host_problem(parts.hostname)
    if problem:
        raise ValueError(problem)
    return None, _host_key(parts.hostname), port


def allowed_endpoints(flag_values: Iterable[str], environ: Mapping[str, str]) -> tuple[str, ...]:
    """The --allow-endpoint values followed by those of $SYNTHC_ALLOW_ENDPOINTS (comma-separated,
    blanks ignored), each checked with parse_allowance. Raises ValueError naming the bad one."""
    values = list(flag_values)
    for value in environ.get(ALLOW_ENV, "").split(","):
        if value.strip():
            try:
                parse_allowance(value)
            except ValueError as exc:
                raise ValueError(f"${ALLOW_ENV} holds `{value.strip()}`, which allows nothing: {exc}") from None
            values.append(value.strip())
    return tuple(values)


def key_allowed(url: str, allowed: Iterable[str]) -> bool:
    """Whether one of the allowed values covers the endpoint's server. Hosts are compared as
    written, never resolved: `127.1` is not `127.0.0.1`, so a look-alike is refused, not let
    through."""
    parts = urlsplit(url)
    host, port = _host_key(parts.hostname or ""), _port(parts)
    for value in allowed:
        scheme, allowed_host, allowed_port = parse_allowance(value)
        if allowed_host == host and scheme in (None, parts.scheme) and allowed_port in (None, port):
            return True
    return False


def server_of(url: str) -> str:
    """The endpoint's scheme://host[:port], the narrowest --allow-endpoint value that allows it."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def key_consent_problem(model_name: str, url: str, key_variable: str, allowed: Iterable[str]) -> str | None:
    """Why the model's key may not go to its endpoint (the user did not allow that server), with
    what to pass to allow it; None when it may. Loopback needs consent too: any local user or
    process can listen on a free port of 127.0.0.1, and a port forward can lead anywhere."""
    if key_allowed(url, allowed):
        return None
    server = server_of(url)
    return (f"model `{model_name}` would send the key in ${key_variable} to {server}, a server you have not "
            f"allowed (a spec cannot choose where your keys go). If you trust it, pass "
            f"{ALLOW_FLAG} {shlex.quote(server)} or add it to ${ALLOW_ENV}")
