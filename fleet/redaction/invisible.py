"""Characters a reader cannot see, taken out of a text before it is redacted and sent.

A secret with a zero-width space inside it reads as the secret in chat but matches no
pattern and no known value; a right-to-left override makes a line read backwards; a tag
character hides words in what looks like an emoji. :func:`visible` removes them all, so
what the redactor sees is what a person reads:

* every format character (Unicode category ``Cf``): zero-width space, joiner and
  non-joiner, word joiner, BOM, soft hyphen, the bidi embeddings, overrides and isolates
  (U+202A–202E, U+2066–2069), the tag characters (U+E0000 block), invisible operators;
* the control characters (``Cc``) but tab and line feed: an escape sequence would drive
  a terminal (the console connector); a lone carriage return, and the line and paragraph
  separators, become line feeds;
* fillers and blanks that are letters or symbols only by category (Hangul fillers,
  the braille blank, the combining grapheme joiner, Khmer's inherent vowels);
* variation selectors, but one right after a visible character that is not ASCII (an
  emoji's text or colour presentation, a CJK variant): a run of them, or one after a
  space or an ASCII letter, only carries hidden data.

Emoji joined by a zero-width joiner show side by side instead of as one: the price of
knowing that nothing hides between two letters.

Where a person must see that something was there (an ask's command, a model name on the
dashboard, a terminal), :func:`reveal` shows those characters instead, as their code
points (``[U+202E]``), with the blanks that are not a space or a tab and the letters a
homoglyph would pass for.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Final

# Invisible, though their category is not Cf or Cc.
_BLANKS: Final = "\u034f\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0"
_SELECTORS: Final = "\ufe00-\ufe0f\U000e0100-\U000e01ef"
_LINE_BREAKS: Final = re.compile(r"\r\n?|[\u2028\u2029\x85]")


def _invisible_class() -> str:
    """A character class of every code point :func:`visible` removes outright. Format and
    control characters are all in planes 0, 1 and 14 (Unicode 15): only those are read."""
    codes = (*range(0x20000), *range(0xE0000, 0xE1000))
    chars = [
        chr(code)
        for code in codes
        if unicodedata.category(chr(code)) in ("Cf", "Cc") and chr(code) not in "\t\n\r\x85"
    ]
    ranges: list[str] = []
    start = prev = ord(chars[0])
    for char in [*chars[1:], "\U0010ffff"]:  # a sentinel that never extends a range
        code = ord(char)
        if code == prev + 1:
            prev = code
            continue
        ranges.append(re.escape(chr(start)) + ("-" + re.escape(chr(prev)) if prev > start else ""))
        start = prev = code
    return "".join(ranges) + re.escape(_BLANKS)


@functools.cache
def _invisible() -> re.Pattern[str]:
    """The run of invisible characters, made at its first use: reading every code point's
    category takes a while, and a start that shows no text pays nothing for it."""
    return re.compile(f"[{_invisible_class()}]+")


_SELECTOR_RUN: Final = re.compile(f"[{_SELECTORS}]+")


def visible(text: str) -> str:
    """``text`` without the characters a reader cannot see (the module says which)."""
    if text.isascii() and not _has_controls(text):
        return text
    text = _LINE_BREAKS.sub("\n", text)
    text = _invisible().sub("", text)
    if text.isascii() or _SELECTOR_RUN.search(text) is None:
        return text

    def selector(run: re.Match[str]) -> str:
        # Kept: one, right after a visible character that is not ASCII (an emoji, a CJK
        # ideograph). Between ASCII letters a selector only hides something.
        before = text[run.start() - 1] if run.start() else " "
        return run.group()[0] if not before.isascii() and not before.isspace() else ""

    return _SELECTOR_RUN.sub(selector, text)


_PLAIN: Final = re.compile(r"[ -~]*")  # printable ASCII: nothing to reveal
_WORD: Final = re.compile(r"[^\W_]+")


def reveal(text: str) -> str:
    """``text`` with every character :func:`visible` would take out (but line feed and
    tab), and every blank that is not a space (a no-break space, U+3000), shown as
    ``[U+XXXX]``; so are the letters outside ASCII of each word that mixes scripts
    (``gіthub`` with a Cyrillic ``і``), so a homoglyph cannot pass for the letter it
    mimics."""
    if _PLAIN.fullmatch(text.replace("\n", " ").replace("\t", " ")):
        return text
    mixed = _mixed_letters(text)
    out = []
    for index, char in enumerate(text):
        blank = char.isspace() and char not in " \n\t"  # a space that is not one
        shown = char in "\n\t" or (visible(char) == char and not blank and index not in mixed)
        out.append(char if shown else f"[U+{ord(char):04X}]")
    return "".join(out)


def _mixed_letters(text: str) -> set[int]:
    """Indexes of the non-ASCII letters of every word written in more than one script."""
    out: set[int] = set()
    for word in _WORD.finditer(text):
        scripts = {_script(char) for char in word.group(0) if char.isalpha()}
        if len(scripts) > 1:
            start = word.start()
            out.update(start + i for i, char in enumerate(word.group(0)) if not char.isascii())
    return out


def _script(char: str) -> str:
    """A letter's script, as the first word of its Unicode name says it (``LATIN``,
    ``CYRILLIC``, ``GREEK``…): close enough to tell a homoglyph from its look-alike."""
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"


def _has_controls(text: str) -> bool:
    """Whether an ASCII ``text`` holds a control character other than tab and line feed."""
    return _ASCII_CONTROL.search(text) is not None


_ASCII_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
