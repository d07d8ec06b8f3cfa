"""The names of Faker's standard providers (methods of a default Faker instance)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def provider_names() -> frozenset[str]:
    from faker import Faker  # imported only when a spec uses `~ faker(...)`

    fake = Faker()
    names = set()
    for provider in fake.providers:
        names.update(n for n in dir(provider) if not n.startswith("_") and callable(getattr(provider, n, None)))
    names -= {"generator", "random_element", "random_elements", "random_choices", "random_sample",
              "bothify", "numerify", "lexify", "hexify", "language_locale_codes"}
    return frozenset(names)
