"""Where a spec may send requests, and which secret it may send along: the rules shared by the
checker (`model` blocks), the plan validator and the OpenAI-compatible engine (which applies them
again to a plan).

A spec comes from anyone; the environment it runs in holds the user's secrets. So an endpoint is
an http(s) URL written in plain ASCII and nothing else (no `file://`, no credentials in the URL,
no character that could forge a printed line), an API key comes only from a variable whose name
says it is one, and a key never travels in clear text to another machine."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

KEY_VARIABLE = re.compile(r"[A-Z][A-Z0-9_]*(_API_KEY|_TOKEN)|API_KEY")
KEY_VARIABLE_HELP = "an API key is read only from a variable named like OPENAI_API_KEY or HF_TOKEN " \
                    "(upper case, ending in _API_KEY or _TOKEN)"


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

