"""The words after ``roster set NAME KEY`` read as one value or as several ``KEY VALUE``
pairs (``runtime command argv [python3, -u, bot.py]``), so keys that only go together are
set in one edit.

A value is one item: a plain word, a quoted scalar (``"reviews the PRs"``) or a flow list
or mapping (``[python3, -u, bot.py]``, ``{A: '1'}``), which may hold spaces. The text is
several pairs when it is an odd number of items and every second one is an agent key;
otherwise it is the one value of the first key, as typed (``role reviews the PRs``). A
word where a key would stand that is close to a key but none (``argy``) is refused with
the key meant, since reading it into a prose value would set something else than asked.
Pure: text in, pairs out.
"""

from __future__ import annotations

from collections.abc import Collection

from fleet.schema import did_you_mean

_OPEN = {"[": "]", "{": "}"}


class PairsError(Exception):
    """The words cannot be read as the pairs they look like (the message says why)."""


def key_values(key: str, text: str, keys: Collection[str]) -> tuple[tuple[str, str], ...]:
    """``(KEY, VALUE)`` pairs of ``roster set NAME KEY TEXT``, the first for ``key``;
    raises :class:`PairsError` on a key given twice or a likely misspelt one."""
    found = items(text)
    if found is None:
        words = text.split()
        if len(words) >= 3 and words[1] in keys:  # pairs meant, one of them never closed
            raise PairsError(
                'a quote or bracket is left open: close it ([python3, -u, bot.py], "two words")'
            )
        return ((key, text),)
    if len(found) < 3 or len(found) % 2 == 0:
        return ((key, text),)
    named = found[1::2]
    if all(word in keys for word in named):
        pairs = ((key, found[0]), *zip(named, found[2::2], strict=True))
        seen: set[str] = set()
        for each, _ in pairs:
            if each in seen:
                raise PairsError(f"{each} is given twice: give each key once")
            seen.add(each)
        return pairs
    for word in named:
        near = did_you_mean(word, keys) if word not in keys else None
        if near is not None:
            raise PairsError(
                f"unknown agent key {word!r}: did you mean {near!r}? (to set {key} to "
                f'several words, quote them: {key} "…")'
            )
    return ((key, text),)


def items(text: str) -> list[str] | None:
    """The items of ``text`` as typed (quotes and brackets kept); ``None`` when a quote or
    bracket is left open (the text is then read whole, and YAML says what is wrong)."""
    found: list[str] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return found
        end = _item_end(text, pos)
        if end is None:
            return None
        found.append(text[pos:end])
        pos = end


def _item_end(text: str, start: int) -> int | None:
    """The index after the item at ``start``: its quoted scalars and balanced brackets, then
    up to the next space (a quote inside a plain word, as in ``it's``, is a character)."""
    pos, closers = start, list[str]()
    while pos < len(text) and (closers or not text[pos].isspace()):
        ch = text[pos]
        if ch in "'\"" and (pos == start or text[pos - 1] in "[{,: \t"):
            after = _quoted_end(text, pos)
            if after is None:
                return None
            pos = after
            continue
        if ch in _OPEN:
            closers.append(_OPEN[ch])
        elif closers and ch == closers[-1]:
            closers.pop()
        pos += 1
    return None if closers else pos


def _quoted_end(text: str, start: int) -> int | None:
    """The index after the YAML quoted scalar opening at ``start`` (``''`` inside single
    quotes, a backslash escape inside double ones)."""
    quote, pos = text[start], start + 1
    while pos < len(text):
        ch = text[pos]
        if quote == '"' and ch == "\\":
            pos += 2
            continue
        if ch == quote:
            if quote == "'" and text[pos + 1 : pos + 2] == "'":
                pos += 2
                continue
            return pos + 1
        pos += 1
    return None
