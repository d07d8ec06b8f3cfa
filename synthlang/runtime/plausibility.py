"""Plausibility filters: a record can match its schema and still be garbage.

Each filter looks at the free text the model wrote (strings without a pattern or a fixed set of
values, in the record and in its nested records and lists) and names what is wrong:

- echo: the value repeats the instructions: the format note ("40-300 characters", "list of up
  to", "one of"), a field name used as a key anywhere (`body:`, `...,priority:2`), a label
  like "Example subject:", or eight words in a row of the prompt itself;
- truncated: free text that reached its maximum length (or came within 5% of it, where the
  next token may not have fitted) without ending a sentence. It is cut
  back to its last sentence end, or else its last word, when what is left still meets the
  minimum length (the field is named in `_meta.trimmed`); otherwise the record is rejected;
- repetition: a list whose items repeat, a text that loops on the same words (a word 3-gram
  covering 30% of the text, or any 4-gram three times);
- hollow: a value that is the field's name, a type word or a placeholder (`text`, `N/A`,
  `...`), free text without a letter, or text with a slot left to fill (`[your name]`,
  `<email>`, `{company_name}`);
- junk: text that is not prose: runs of 8 digits or more, JSON, template or markup leftovers
  (`{"key":`, `{0}`, `[x]`, `[Date]`, `<%= %>`, `</br>`, and outside backticks
  `Your_Last_Reminder` or a pipe), unbalanced brackets or backticks,
  mostly symbols, a mentioned value glued to other characters, or text around mentions that
  is a list of dates, codes and words rather than sentences (under 15% function words). A
  field meant to hold markup takes `allow junk`;
- copies: a value equal (or nearly: 80% of its word trigrams) to the same field of a few-shot
  example or of a seed row, or holding one of 5 words or more nearly whole (80% of its word
  trigrams): a rewrite that is its source row with a few words added.

A `mentions` field is also rejected for a mentioned value written twice (repetition) or a seed
row's mentioned value written into it (copies): either would leave a mention unlabelled.

All are on by default; `allow NAME, ...` in a generate block switches some off. A rejection is
journaled as `NAME: field`, so the manifest and the report count each."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

PLACEHOLDERS = frozenset({"text", "string", "str", "n/a", "na", "none", "null", "nil", "...", "…", "tbd", "todo",
                          "lorem ipsum", "example", "value", "placeholder", "xxx", "sample", "your text here",
                          "insert text", "undefined", "empty", "-", "?"})
TYPE_WORDS = frozenset({"text", "string", "integer", "int", "number", "float", "boolean", "bool", "list", "array",
                        "object", "record", "date", "enum", "true or false", "json"})
FORMAT_NOTE = re.compile(r"\b\d+\s*-\s*\d+\s*(characters|chars)\b|\blist of up to\b|\bone of\s+\"|"
                         r"\breply with one json\b|\bjson object\b|\binteger\s+-?\d+\s*\.\.\s*-?\d+|"
                         r"\b(text|string),\s*\d+|\b(here is|here's|below is)\b.{0,40}\bjson\b|"
                         r"\bjson (object|string|data|format|response)\b|"
                         # the system message's own words (runtime/prompts.py: SYSTEM)
                         r"\brequested json\b|\banswer only with\b", re.IGNORECASE)
KEY = re.compile(r"(?:^|[\s,;{(\"'])([A-Za-z_]{2,30})\s*:(?!//)")
LABEL = re.compile(r"^\s*(example\s+)?[a-z_]{2,20}\s*:", re.IGNORECASE)
MARKUP = re.compile(r"\||<%=?|%>|</?[a-z]+\s*/?>|\$\{|\{\s*\"?\w+\"?\s*:",
                    re.IGNORECASE)
SNAKE = re.compile(r"[A-Za-z0-9]+_[A-Za-z0-9]+_[A-Za-z0-9]+")   # junk in prose, a fine tag on its own
IN_BACKTICKS = re.compile(r"`[^`]*`")
BRACKETED = re.compile(r"(?<![\w.])[\[{]([^\[\]{}]*)[\]}]")  # not an index like `items[0]`
SLOT = re.compile(r"[\[<{]\s*(your|insert|customer|company|user|account|product|name|e-?mail|phone|address|"
                  r"number|date|website|link|order|ticket)\b[^\]>}\n]{0,30}[\]>}]|[\[<{]\w+_\w+[^\]>}\n]{0,20}[\]>}]",
                  re.IGNORECASE)
DIGIT_RUN = re.compile(r"\d{8,}")
# a word glued to a code in prose (`ApostolosV603SH`): 12+ letters and digits, a capital inside
# after lower case, and a digit; a product name is written with spaces (`iPhone 15 Pro`)
GLUED_CODE = re.compile(r"(?<![\w`/.-])(?=[A-Za-z0-9]*[a-z][A-Z])(?=[A-Za-z0-9]*\d)[A-Za-z0-9]{12,}(?![\w`/.-])")
NUMBER_SOUP = 24            # digits in one run without spaces (`20:41:52.115-12-32-2202-16-...`); a UUID has ~20
# words no sentence ends on: text that stops on one was cut, by its cap or by the model closing it
DANGLING = frozenset({"the", "a", "an", "to", "of", "for", "with", "and", "or", "but", "my", "your", "our", "their",
                      "from", "by", "i", "we"})
# ... and words a sentence rarely ends on: a text being cut back anyway is cut past these too
# (`... arrested on charges of fraud on`), but a whole text may end on one (`cannot log in`)
WEAK_ENDINGS = DANGLING | frozenset({"in", "on", "at", "into", "about", "over", "after", "before", "than", "is", "are",
                                     "was", "were", "be", "as", "that", "this", "its", "his", "her", "which",
                                     "who", "when", "where", "while", "if", "so", "not", "no"})
# text that stops on a comma, colon or semicolon was going on (`... that required troubleshooting:`)
OPEN_END = re.compile(r"\w[,;:]\s*$")
CLAUSE_BREAK = re.compile(r"\s*(?:[,;:]|\s[-\u2013\u2014]|\u2014)(?=\s)")
SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")
ENDS_SENTENCE = re.compile(r"[.!?\u2026][\"')\]]*$")
WORD = re.compile(r"\w+", re.UNICODE)
_FUNCTION_WORDS = (
    "a an the to of in on at for with by from into about as is are was were be been will would can could "
    "should must may please and or but so if then than it its this that these those there here i me my we us "
    "our you your he she him her they them their not no do does did have has had go goes send sent let thanks "
    "thank hi hello dear up out off over under next before after until now also just")
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split(" "))
PROSE_SHARE = 0.15      # at least this share of the words around mentions are function words
FOREIGN_WORDS = 12      # free text this long ...
FOREIGN_SHARE = 0.1     # ... with fewer small English words than this is not English prose
# one identifier for a whole value: `SystemRuntimeSerializationMessageFormatException`, a
# dotted name (`System.Runtime.Serialization.SerializationException`), or names glued with
# colons (`System.Runtime.Serialization.MessageFormatException:ProductName:`)
LONG_IDENTIFIER = re.compile(r"(?=(?:[A-Za-z0-9_.:]*[A-Z]){4})[A-Za-z][A-Za-z0-9_.:]{24,}")
# ... or five snake_case words and more (`on_page_add_currency_conversion_action_data`); four
# make a tag (`Password_reset_link_expired`)
LONG_SNAKE = re.compile(r"[A-Za-z0-9]+(?:_[A-Za-z0-9]+){4,}")
LONGEST_WORD = 24       # characters; a token longer than this is no word of prose
ECHO_WORDS = 8          # this many words in a row from the prompt is an echo
NEAR_CAP = 20           # a value within 1/NEAR_CAP of its cap (2 characters at least) may have
                        # been cut there: no longer token fitted
NEAR_COPY = 0.8         # share of a value's word trigrams found in one example or seed value


@dataclass
class Context:
    """What a record's values are compared with."""

    prompt: str                                   # the rendered prompt and the format note
    field_names: frozenset[str]
    references: dict[str, list[str]] = field(default_factory=dict)  # field path -> example and seed values
    mentioned: list[str] = field(default_factory=list)              # mentioned values (junk around them)


@dataclass
class Verdict:
    reason: str | None = None                     # "filter: field" when rejected
    trimmed: list[str] = field(default_factory=list)
    value: str | None = None                      # the rejected value, journaled as the rejection's `err`


def free_text_fields(schema: dict, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict]]:
    """(path, string schema) of every free-text string in a JSON Schema (lists marked by "[]")."""
    if "anyOf" in schema:
        schema = next((s for s in schema["anyOf"] if s.get("type") != "null"), {})
    kind = schema.get("type")
    if kind == "object":
        for name, sub in schema.get("properties", {}).items():
            yield from free_text_fields(sub, (*path, name))
    elif kind == "array":
        yield from free_text_fields(schema.get("items", {}), (*path, "[]"))
    elif kind == "string" and "pattern" not in schema and "enum" not in schema and "format" not in schema:
        yield path, schema


def list_fields(schema: dict, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict]]:
    """(path, item schema) of every list in a JSON Schema."""
    if "anyOf" in schema:
        schema = next((s for s in schema["anyOf"] if s.get("type") != "null"), {})
    if schema.get("type") == "object":
        for name, sub in schema.get("properties", {}).items():
            yield from list_fields(sub, (*path, name))
    elif schema.get("type") == "array":
        yield path, schema.get("items", {})


def _item_key(item: Any, text_keys: list[str]) -> str:
    """What makes two items of a list the same: a string's words; a record's free text where it
    has some (a message repeated by the other side of a dialogue is a repetition, whatever
    its role), else all of it."""
    if isinstance(item, str):
        return _norm(item)
    if isinstance(item, dict) and text_keys:
        return "\x00".join(_norm(str(item.get(k))) for k in text_keys)
    return repr(item)


def _values(record: Any, path: tuple[str, ...]) -> Iterator[tuple[Any, Any, Any]]:
    """(container, key, value) for each value at `path`."""
    if not path:
        return
    head, rest = path[0], path[1:]
    if head == "[]":
        if isinstance(record, list):
            for i, item in enumerate(record):
                if rest:
                    yield from _values(item, rest)
                else:
                    yield record, i, item
        return
    if not isinstance(record, dict) or head not in record:
        return
    if rest:
        yield from _values(record[head], rest)
    else:
        yield record, head, record[head]


def _norm(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


def _trigrams(text: str) -> set[tuple[str, ...]]:
    words = WORD.findall(text.lower())
    return {tuple(words[i:i + 3]) for i in range(len(words) - 2)}


def _label(path: tuple[str, ...]) -> str:
    return ".".join(p for p in path if p != "[]")


# the filters, one value at a time ---------------------------------------------------------------
def hollow(value: str, name: str) -> bool:
    v = value.strip().lower()
    if v in PLACEHOLDERS or v in TYPE_WORDS or v.replace(" ", "_") == name.lower() or SLOT.search(value):
        return True
    return len(v) >= 8 and not any(c.isalpha() for c in v)


def echo(value: str, ctx: Context) -> bool:
    if FORMAT_NOTE.search(value):
        return True
    label = LABEL.match(value)
    if label:
        word = label.group(0).rstrip(": ").lower().split()[-1]
        if label.group(1) or word in ctx.field_names or word in TYPE_WORDS:
            return True
    for key in KEY.findall(value):  # a field name used as a key anywhere: `...,priority:2,`
        if key.lower() in ctx.field_names:
            return True
    words = WORD.findall(value.lower())
    if len(words) < ECHO_WORDS:
        return False
    prompt = " " + _norm(ctx.prompt) + " "
    return any(" " + " ".join(words[i:i + ECHO_WORDS]) + " " in prompt for i in range(len(words) - ECHO_WORDS + 1))


def repetition(value: str) -> bool:
    words = WORD.findall(value.lower())
    if len(words) < 8:
        return False
    grams = Counter(tuple(words[i:i + 3]) for i in range(len(words) - 2))
    top, n = grams.most_common(1)[0]
    if n >= 3 and n * 3 >= len(words) * 0.3:
        return True
    fours = Counter(tuple(words[i:i + 4]) for i in range(len(words) - 3))
    return fours.most_common(1)[0][1] >= 3


def junk(value: str, ctx: Context) -> bool:
    text = value
    for m in ctx.mentioned:
        if not m:
            continue
        start = text.find(m)
        while start >= 0:
            before = text[start - 1] if start > 0 else " "
            end = start + len(m)
            after = text[end] if end < len(text) else " "
            if before.isalnum() or (after.isalnum() and not m[-1:].isspace()):
                return True
            start = text.find(m, end)
        text = text.replace(m, " ")
    prose = IN_BACKTICKS.sub(" ", text)
    if DIGIT_RUN.search(text) or MARKUP.search(prose) or _stray_brackets(text):
        return True
    if any(sum(c.isdigit() for c in run) >= NUMBER_SOUP for run in text.split()):
        return True
    if " " in prose.strip() and (SNAKE.search(prose) or GLUED_CODE.search(prose)):
        return True
    words = WORD.findall(text.lower())
    if ctx.mentioned:  # the text around mentions is prose, not a list of dates, codes and words
        if len(words) >= 4 and sum(w in FUNCTION_WORDS for w in words) < PROSE_SHARE * len(words):
            return True
    # twelve words or more with almost none of English's small words is not English prose
    # (`Lo soglio, inaglirione la responsabilita di fisica ...`); a block that writes another
    # language takes `allow junk`
    elif len(words) >= FOREIGN_WORDS and sum(w in FUNCTION_WORDS for w in words) < FOREIGN_SHARE * len(words):
        return True
    whole = text.strip()
    if " " not in whole and (LONG_IDENTIFIER.fullmatch(whole) or LONG_SNAKE.fullmatch(whole)):
        return True
    if len(whole) >= 40:
        letters = sum(c.isalpha() or c.isspace() for c in text)
        return letters < 0.6 * len(text)
    return False


def _stray_brackets(text: str) -> bool:
    """Brackets prose does not have: unbalanced ones, a value that opens with one, or a bracketed
    word without spaces (`[x]`, `[Date]`, `{name}`, `[mobilenet.2015.232]`). Code in backticks
    or an index (`items[0]`) is not stray."""
    if text.lstrip()[:1] in ("[", "{") or text.count("`") % 2:
        return True
    if text.count("[") != text.count("]") or text.count("{") != text.count("}"):
        return True
    return any(" " not in m.group(1).strip() for m in BRACKETED.finditer(text))


def copied(value: str, references: list[str]) -> bool:
    """`value` the same as one of `references`, made mostly of one (NEAR_COPY of its word
    trigrams), or holding one of 5 words or more nearly whole (NEAR_COPY of the reference's
    trigrams): a rewrite that keeps its source row and adds a few words to it."""
    norm = _norm(value)
    if not norm:
        return False
    grams = _trigrams(value)
    for ref in references:
        if _norm(ref) == norm:
            return True
        other = _trigrams(ref)
        if not other or not grams:
            continue
        shared = len(grams & other)
        if (len(grams) >= 3 and shared >= NEAR_COPY * len(grams)) or \
                (len(other) >= 3 and shared >= NEAR_COPY * len(other)):
            return True
    return False


def trim(value: str, lo: int, capped: bool = False) -> str | None:
    """`value` cut back to its last sentence end if that keeps `lo` characters. Else, for a
    value its cap stopped (`capped`), the model was mid-phrase and any last word leaves a
    fragment (`... free internet with unlimited`): it is cut at its last clause break (`,` `;`
    `:` or a dash) if that keeps half of it, else given up. A value the model itself closed on a
    word such as "the" is cut back past it to its last whole word. None when nothing long enough
    is left."""
    ends = [m.end() for m in SENTENCE_END.finditer(value)]
    if ends and ends[-1] >= lo:
        return value[:ends[-1]]
    if capped:
        end = len(value.rstrip(" ,;:-\u2013\u2014"))   # a break the text stops on is no place to cut
        breaks = [m.start() for m in CLAUSE_BREAK.finditer(value) if m.start() < end]
        cut = value[:breaks[-1]].rstrip() if breaks else ""
        return cut if len(cut) >= max(lo, len(value) // 2) and not dangles(cut, WEAK_ENDINGS) else None
    cut = value.rstrip()
    if not value[-1:].isspace() and not dangles(cut):  # the last word may be cut: drop it
        cut = _drop_last_word(cut)
    cut = cut.rstrip(" ,;:-(\u2013")
    while dangles(cut, WEAK_ENDINGS):
        cut = _drop_last_word(cut)
    return cut if cut and len(cut) >= lo else None


def _drop_last_word(text: str) -> str:
    space = text.rfind(" ")
    return text[:space].rstrip(" ,;:-(\u2013") if space > 0 else ""


def _hit_room(length: int, room: int, text: str) -> bool:
    """Text that filled its room (the last 1/NEAR_CAP, 2 characters at least) without ending
    a sentence: the constraint may have cut it there."""
    return length >= room - max(2, room // NEAR_CAP) and not ENDS_SENTENCE.search(text.rstrip())


def _truncated(value: str, schema: dict) -> bool:
    if dangles(value) or _open_end(value):
        return True
    if dangles(value, WEAK_ENDINGS) and SENTENCE_END.search(value) and not ENDS_SENTENCE.search(value.rstrip()):
        return True   # prose of sentences that stops on `in`, `on`, `is` ... without ending the last one
    hi = schema.get("maxLength")
    # one word short of its cap is whole (`networking` in a cap of 10); one longer than any word
    # that fills the cap's last two characters without ending a sentence was cut, whatever it is
    # (a 78-character identifier in a cap of 80)
    if hi is None or (" " not in value.strip() and len(value) < hi
                      and (len(value) < hi - 2 or len(value) <= LONGEST_WORD)):
        return False
    return _hit_room(len(value), hi, value)


def _open_end(value: str) -> bool:
    """Prose (words with spaces between) that stops on a comma, colon or semicolon."""
    return " " in value.strip() and OPEN_END.search(value) is not None


def dangles(text: str, endings: frozenset[str] = DANGLING) -> bool:
    """Text of three words or more that stops on one no sentence ends on (`... refund the`;
    `N/A` or `the end.` do not)."""
    words = text.lower().split()
    return len(words) >= 3 and words[-1] in endings


# a record ----------------------------------------------------------------------------------------
def judge(record: dict, json_schema: dict, ctx: Context, allow: frozenset[str]) -> Verdict:
    """Check (and, for truncation, repair in place) the model-written values of `record`."""
    verdict = Verdict()
    for path, item_schema in list_fields(json_schema):
        if "repetition" in allow:
            break
        text_keys = [p[0] for p, _ in free_text_fields(item_schema) if len(p) == 1]
        for _, _, items in _values(record, path):
            if isinstance(items, list):
                seen = [_item_key(i, text_keys) for i in items]
                if len(seen) != len(set(seen)):
                    verdict.reason = f"repetition: {_label(path)}"
                    verdict.value = json.dumps(items, ensure_ascii=False)[:300]
                    return verdict
    for path, schema in free_text_fields(json_schema):
        name = path[-1] if path[-1] != "[]" else (path[-2] if len(path) > 1 else "")
        label = _label(path)
        for container, key, value in list(_values(record, path)):
            if not isinstance(value, str):
                continue
            if "truncated" not in allow and _truncated(value, schema):
                hi = schema.get("maxLength")
                # stopped by its cap, or on a comma or colon: mid-phrase, whatever its last word
                capped = (hi is not None and _hit_room(len(value), hi, value)) or _open_end(value)
                fixed = trim(value, schema.get("minLength", 0), capped)
                if fixed is None:
                    verdict.reason, verdict.value = f"truncated: {label}", value[:300]
                    return verdict
                container[key] = value = fixed
                verdict.trimmed.append(label)
            found = _first_problem(value, name, label, ctx, allow)
            if found is not None:
                verdict.reason, verdict.value = f"{found}: {label}", value[:300]
                return verdict
    return verdict


def _first_problem(value: str, name: str, label: str, ctx: Context, allow: frozenset[str]) -> str | None:
    checks = (("hollow", lambda: hollow(value, name)), ("echo", lambda: echo(value, ctx)),
              ("repetition", lambda: repetition(value)), ("junk", lambda: junk(value, ctx)),
              ("copies", lambda: copied(value, ctx.references.get(label, []))))
    for filter_name, check in checks:
        if filter_name not in allow and check():
            return filter_name
    return None


def _occurrences(text: str, value: str) -> int:
    """Occurrences of `value` not inside a longer word or number (`_` does not join)."""
    return len(re.findall(r"(?<![A-Za-z0-9])" + re.escape(value) + r"(?![A-Za-z0-9])", text)) if value else 0


def mentions_problem(text: str, own: list[str], seed_values: list[str], allow: frozenset[str]) -> str | None:
    """A `mentions` field whose spans would mislabel the text: a mentioned value written twice
    (the second is not labelled), or a seed row's mentioned value (an example's address, say)
    written into it, which a tagger would learn as not a mention."""
    if "repetition" not in allow and any(_occurrences(text, v) > 1 for v in own):
        return "repetition"
    if "copies" not in allow:
        mine = set(own)
        if any(len(v) >= 4 and v not in mine and _occurrences(text, v) for v in seed_values):
            return "copies"
    return None


def cut_tail(text: str, values_end: int, tail_max: int, min_len: int) -> str | None:
    """A `mentions` text whose part after the last mentioned value (from `values_end`) reached
    its room (`tail_max` characters) without ending a sentence was cut by its constraint: it is
    cut back to a sentence or word end that keeps every value and `min_len` characters. Returns
    the text unchanged when it was not cut, None when nothing can be kept."""
    if not _hit_room(len(text) - values_end, tail_max, text):
        return text
    fixed = trim(text, min_len, capped=True)
    return fixed if fixed is not None and len(fixed) >= values_end else None


def references_for(rows: list[dict], json_schema: dict) -> dict[str, list[str]]:
    """Each free-text field's values in `rows` (examples shown, seed rows of the schema)."""
    out: dict[str, list[str]] = {}
    for path, _ in free_text_fields(json_schema):
        label = _label(path)
        for row in rows:
            for _, _, value in _values(row, path):
                if isinstance(value, str):
                    out.setdefault(label, []).append(value)
    return out
