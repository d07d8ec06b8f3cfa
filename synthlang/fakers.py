"""Faker's standard providers: their names, and whether what one returns can fill a field."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from importlib import metadata

from .files import user_cache_dir


@lru_cache(maxsize=1)
def _catalogue() -> dict:
    """Faker's provider names and what each returns, listed once per Faker version and kept in
    the user's cache: importing Faker and listing its providers takes longer than checking a
    whole spec. {"providers": [...], "returns": {name: [kind, error]}}, filled as names are
    asked about."""
    try:
        version = metadata.version("faker")
    except metadata.PackageNotFoundError:
        version = "unknown"
    path = user_cache_dir() / f"faker-{version}.json"
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("providers"), list) and isinstance(data.get("returns"), dict):
            data["path"] = path
            return data
    except (OSError, ValueError):
        pass
    return {"providers": sorted(_list_providers()), "returns": {}, "path": path}


def _save(data: dict) -> None:
    path = data["path"]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({k: v for k, v in data.items() if k != "path"}))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs the listing again


def _list_providers() -> set[str]:
    from faker import Faker  # imported only when a spec uses `~ faker(...)` and the catalogue is cold

    fake = Faker()
    names: set[str] = set()
    for provider in fake.providers:
        names.update(n for n in dir(provider) if not n.startswith("_") and callable(getattr(provider, n, None)))
    names -= {"generator", "random_element", "random_elements", "random_choices", "random_sample",
              "bothify", "numerify", "lexify", "hexify", "language_locale_codes"}
    return names


def provider_names() -> frozenset[str]:
    data = _catalogue()
    if not data["path"].exists():
        _save(data)
    return frozenset(data["providers"])


def value_fits(value, kind: str) -> bool:
    """Whether a provider's value can fill a field of this kind (str, int, float, date) as it is:
    text for text, never bytes, dicts or lists turned into their Python spelling."""
    from datetime import date

    match kind:
        case "str":
            return isinstance(value, str)
        case "int":
            return isinstance(value, int) and not isinstance(value, bool)
        case "float":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        case "date":
            return isinstance(value, date)
    return False


def _returns(name: str) -> tuple[str | None, str | None]:
    """The kind of value the provider returns (`str`, `int`, `float`, `bool`, `date`,
    `datetime` or another type's name), or the name of the error calling it raised."""
    data = _catalogue()
    known = data["returns"].get(name)
    if known is None:
        from datetime import date, datetime

        from faker import Faker

        fake = Faker()
        fake.seed_instance(0)
        try:
            value = getattr(fake, name)()
        except Exception as exc:  # noqa: BLE001 - any provider error means it cannot be used here
            known = [None, type(exc).__name__]
        else:
            kind = ("bool" if isinstance(value, bool) else "datetime" if isinstance(value, datetime)
                    else "date" if isinstance(value, date) else type(value).__name__)
            known = [kind, None]
        data["returns"][name] = known
        _save(data)
    return known[0], known[1]


def provider_fits(name: str, kind: str) -> bool:
    """Whether what the provider returns can fill a field of this kind (as value_fits)."""
    returned, error = _returns(name)
    if error is not None:
        return False
    return {"str": returned == "str", "int": returned == "int", "float": returned in ("int", "float"),
            "date": returned in ("date", "datetime")}.get(kind, False)


def provider_value_type(name: str) -> str:
    """What the provider returns, in words, for a diagnostic."""
    returned, error = _returns(name)
    return f"an error ({error}) when called without arguments" if error else str(returned)
