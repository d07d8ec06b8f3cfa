"""Faker's standard providers: their names, and whether what one returns can fill a field."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def provider_names() -> frozenset[str]:
    from faker import Faker  # imported only when a spec uses `~ faker(...)`

    fake = Faker()
    names: set[str] = set()
    for provider in fake.providers:
        names.update(n for n in dir(provider) if not n.startswith("_") and callable(getattr(provider, n, None)))
    names -= {"generator", "random_element", "random_elements", "random_choices", "random_sample",
              "bothify", "numerify", "lexify", "hexify", "language_locale_codes"}
    return frozenset(names)


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


@lru_cache(maxsize=256)
def _sample(name: str) -> tuple[object, str | None]:
    """One value of the provider (fixed seed), or the name of the error calling it raised."""
    from faker import Faker

    fake = Faker()
    fake.seed_instance(0)
    try:
        return getattr(fake, name)(), None
    except Exception as exc:  # noqa: BLE001 - any provider error means it cannot be used here
        return None, type(exc).__name__


def provider_fits(name: str, kind: str) -> bool:
    value, error = _sample(name)
    return error is None and value_fits(value, kind)


def provider_value_type(name: str) -> str:
    """What the provider returns, in words, for a diagnostic."""
    value, error = _sample(name)
    return f"an error ({error}) when called without arguments" if error else type(value).__name__
