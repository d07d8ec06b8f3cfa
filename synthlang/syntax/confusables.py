"""Characters outside ASCII where the grammar wants ASCII: what to call them, and which ASCII
character they are easily taken for.

A name is ASCII (`[A-Za-z_][A-Za-z0-9_]*`), so a Cyrillic `\u0430` typed or pasted into one stops the
lexer with a character that looks exactly like the one the user thinks they wrote. The message
must say which character it really is (its code point and Unicode name), and which one it
looks like, or the user cannot see what to fix."""

from __future__ import annotations

import unicodedata

# Letters of other scripts drawn like a Latin letter (the common entries of Unicode's
# confusables list for Cyrillic, Greek and Armenian), and typographic punctuation that editors
# and word processors put in place of ASCII. Full-width forms, ligatures and the like are found
# by NFKC instead (full-width `A`, the ligature `fi`).
_LOOKS_LIKE = {
    # Cyrillic
    "\u0430": "a", "\u0432": "B", "\u0435": "e", "\u04bb": "h", "\u0456": "i", "\u0458": "j",
    "\u043a": "k", "\u043c": "M", "\u043d": "H", "\u043e": "o", "\u0440": "p", "\u0441": "c",
    "\u0442": "T", "\u0443": "y", "\u0445": "x", "\u0455": "s", "\u0501": "d", "\u051b": "q",
    "\u051d": "w", "\u04af": "y", "\u0261": "g", "\u0410": "A", "\u0412": "B", "\u0415": "E",
    "\u0417": "3", "\u0406": "I", "\u0408": "J", "\u041a": "K", "\u041c": "M", "\u041d": "H",
    "\u041e": "O", "\u0420": "P", "\u0421": "C", "\u0422": "T", "\u0425": "X", "\u0423": "Y",
    "\u04ae": "Y", "\u0405": "S", "\u0500": "D", "\u051a": "Q", "\u051c": "W",
    # Greek
    "\u03b1": "a", "\u03b9": "i", "\u03ba": "k", "\u03bd": "v", "\u03bf": "o", "\u03c1": "p",
    "\u03c4": "t", "\u03c5": "u", "\u03c7": "x", "\u0391": "A", "\u0392": "B", "\u0395": "E",
    "\u0396": "Z", "\u0397": "H", "\u0399": "I", "\u039a": "K", "\u039c": "M", "\u039d": "N",
    "\u039f": "O", "\u03a1": "P", "\u03a4": "T", "\u03a5": "Y", "\u03a7": "X",
    # Armenian
    "\u0585": "o", "\u057d": "u", "\u0570": "h", "\u0578": "n",
    # punctuation and spaces
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"',
    "\u00bb": '"', "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
    "\u2212": "-", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u3000": " ", "\u2044": "/",
    "\u2215": "/", "\u00d7": "*", "\u2024": ".", "\u2025": "..", "\u2026": "...", "\u037e": ";",
}


def describe_character(ch: str) -> str:
    """`U+0430 CYRILLIC SMALL LETTER A`: the code point and, where Unicode names it, its name."""
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X} {name}" if name else f"U+{ord(ch):04X}"


def looks_like(ch: str) -> str | None:
    """The ASCII text `ch` is easily taken for (Cyrillic `\u0430` -> `a`), or None for one that looks like
    no ASCII character."""
    if ch in _LOOKS_LIKE:
        return _LOOKS_LIKE[ch]
    folded = unicodedata.normalize("NFKC", ch)
    if folded != ch and folded.isascii() and folded.isprintable():
        return folded
    # a Latin letter with a mark (e with an acute accent): the letter without it
    bare = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
    if bare != ch and bare.isascii() and bare.isprintable() and bare:
        return bare
    return None


def character_problem(ch: str) -> tuple[str, str | None]:
    """(message, help) for a character the lexer stopped at, when it is not ASCII: the message
    names the code point; the help names the ASCII character it looks like, if any."""
    visible = ch.isprintable() and not ch.isspace() and not unicodedata.combining(ch)
    shown = f"`{ch}` ({describe_character(ch)})" if visible else describe_character(ch)
    if unicodedata.combining(ch):
        return (f"unexpected character {shown}",
                "an accent that joins the character before it; names are written in ASCII letters, "
                "digits and `_`")
    like = looks_like(ch)
    if like is None and unicodedata.category(ch) in ("Cf", "Zs", "Zl", "Zp"):
        return f"unexpected character {shown}", "it is invisible (often pasted in with other text): delete it"
    if like is None:
        return f"unexpected character {shown}", None
    if like.isalnum():
        kind = "letter" if like.isalpha() else "digit"
        return (f"unexpected character {shown}",
                f"it looks like the ASCII {kind} `{like}`, but is not one: names are written in ASCII "
                f"letters, digits and `_`; type `{like}` in its place")
    if like.strip() == "":
        return f"unexpected character {shown}", "it looks like a space, but is not one: type a plain space"
    return f"unexpected character {shown}", f"it looks like `{like}`, but is not: type `{like}` in its place"
