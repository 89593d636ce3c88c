"""A text as its escapes spell it, and the way back to where each of its characters was.

A secret may reach a text escaped one character at a time, each escape of another kind or
none: JSON's ``\\u0074`` (either hex case, a surrogate pair for a character past U+FFFF),
a backslash before punctuation (markdown's ``\\_``, JSON's ``\\"``, a backslash escaped
again for each level of nesting), JSON's ``\\n``, and percent-encoding of any octet in
either case (``%74``, ``%2f``, a character's UTF-8 octets ``%C3%A9``). Listing the forms a
value may take cannot end; :class:`Decoded` instead reads the text once as those escapes
spell it (:attr:`Decoded.text`), so a matcher looks for the plain value there, and
:meth:`Decoded.back` says where a find was in the text: every escape that spelled a
character of it, whole. A text escaped again after being escaped (a percent-encoded JSON,
``\\u0025`` before two hex digits) is read again, :data:`ROUNDS` times at most.

A form's text (``application/x-www-form-urlencoded``) is read as one decoding, as
:func:`urllib.parse.unquote_plus` reads it: each ``+`` a space and each ``%XX`` its octet
together, so ``my%20secret+value`` is ``my secret value`` however the spaces were
written. Read so only when asked (``Decoded(text, form=True)``): a ``+`` is a space in a
form only, and only in its first reading — a ``%2B`` stays a ``+``.

The work is one regular-expression scan (no backtracking past a run of backslashes) and a
step per escape found: linear in the text.
"""

from __future__ import annotations

import bisect
import contextlib
import re
from collections.abc import Iterable, Iterator
from typing import Final, NamedTuple

ROUNDS: Final = 3
"""Times a text is read again for escapes its escapes spelled (escaped three deep)."""
ESCAPES: Final = re.compile(
    # Its first character a set of two, so the scan skips to a candidate at C's speed.
    r"[\\%](?:"
    r"(?<=\\)\\*(?:"  # a backslash, or several (escaped again when nested), then:
    r"u([dD][89abAB][0-9A-Fa-f]{2})\\+u([dD][c-fC-F][0-9A-Fa-f]{2})"  # a surrogate pair
    r"|u([0-9A-Fa-f]{4})"  # JSON's \uXXXX
    r"|([!-/:-@\[-`{-~])"  # punctuation: markdown's and JSON's escapes
    r"|([bfnrt]))"  # JSON's escapes of control characters
    r"|(?<=%)[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*"  # percent-encoded octets, a run together
    r")"
)
FORM_ESCAPES: Final = re.compile(
    ESCAPES.pattern.replace(r"[\\%]", r"[\\%+]", 1)[:-1] + r"|(?<=\+))"
)
""":data:`ESCAPES` and a form's ``+`` for a space."""
_CONTROL: Final = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class _Piece(NamedTuple):
    """What a stretch of the text reads as: ``shown`` (one character that ``width``
    characters of the text spelled, or — ``width`` 0 — ``shown`` as it is written),
    starting at ``at`` in the text."""

    shown: str
    at: int
    width: int


class _Layer:
    """One reading of a text: the characters it spells, and where each came from. A view
    character at ``i`` in segment ``k`` came from ``starts[k] + (i - views[k]) * widths[k]``,
    ``widths[k]`` characters of the text (1 where the text was copied)."""

    __slots__ = ("starts", "text", "views", "widths")

    def __init__(self, text: str, views: list[int], starts: list[int], widths: list[int]) -> None:
        self.text = text
        self.views = views
        self.starts = starts
        self.widths = widths

    @classmethod
    def of(cls, text: str, escapes: re.Pattern[str] = ESCAPES) -> _Layer:
        """``text`` read once, and where each character it spells came from."""
        layer = cls("", [], [], [])
        shown: list[str] = []
        at = 0
        for match in escapes.finditer(text):
            if match.start() > at:
                layer._add(shown, _Piece(text[at : match.start()], at, 0))
            for piece in _pieces(match):
                layer._add(shown, piece)
            at = match.end()
        if at < len(text):
            layer._add(shown, _Piece(text[at:], at, 0))
        layer.text = "".join(shown)
        return layer

    def _add(self, shown: list[str], piece: _Piece) -> None:
        self.views.append(self.views[-1] + len(shown[-1]) if shown else 0)
        self.starts.append(piece.at)
        self.widths.append(piece.width or 1)
        shown.append(piece.shown)

    def back(self, start: int, end: int) -> tuple[int, int]:
        """The text's stretch the view's ``[start, end)`` was read from (``end > start``)."""
        first = bisect.bisect_right(self.views, start) - 1
        last = bisect.bisect_right(self.views, end - 1) - 1
        width = self.widths[last]
        return (
            self.starts[first] + (start - self.views[first]) * self.widths[first],
            self.starts[last] + (end - 1 - self.views[last]) * width + width,
        )


def _pieces(match: re.Match[str]) -> Iterator[_Piece]:
    """What one escape (or a run of percent-encoded octets) reads as."""
    width = match.end() - match.start()
    if match.group(1) is not None:
        high, low = int(match.group(1), 16) - 0xD800, int(match.group(2), 16) - 0xDC00
        yield _Piece(chr(0x10000 + (high << 10) + low), match.start(), width)
    elif match.group(3) is not None:
        yield _Piece(chr(int(match.group(3), 16)), match.start(), width)
    elif match.group(4) is not None:
        yield _Piece(match.group(4), match.start(), width)
    elif match.group(5) is not None:
        yield _Piece(_CONTROL[match.group(5)], match.start(), width)
    elif width == 1:  # a form's ``+``
        yield _Piece(" ", match.start(), width)
    else:
        yield from _octets(match.group(), match.start())


def _octets(run: str, at: int) -> Iterator[_Piece]:
    """A run of ``%XX``: each character its UTF-8 octets spell; an octet that begins none
    stays as written."""
    data = bytes.fromhex(run.replace("%", ""))
    index = 0
    while index < len(data):
        size = _utf8_size(data[index])
        char = None
        if size and index + size <= len(data):
            try:
                char = data[index : index + size].decode()
            except UnicodeDecodeError:
                char = None
        if char is None:
            yield _Piece(run[3 * index : 3 * index + 3], at + 3 * index, 0)
            index += 1
        else:
            yield _Piece(char, at + 3 * index, 3 * size)
            index += size


def _utf8_size(lead: int) -> int:
    """Octets of the UTF-8 sequence ``lead`` begins (0: it begins none)."""
    if lead < 0x80:
        return 1
    if 0xC2 <= lead < 0xE0:
        return 2
    if 0xE0 <= lead < 0xF0:
        return 3
    return 4 if 0xF0 <= lead < 0xF5 else 0


class Decoded:
    """``text`` as its escapes spell it (:attr:`text`), read again while that spells
    more, :data:`ROUNDS` times at most; :meth:`back` maps a find in it to the text. The
    reading is a substitution (one call per escape); where each character came from is
    worked out only when a find is to be mapped back — most texts hold none."""

    __slots__ = ("_layers", "_patterns", "_readings", "text")

    def __init__(self, text: str, *, form: bool = False) -> None:
        """``form``: read ``text`` as a form's, each ``+`` a space in the first reading."""
        readings = [text]
        patterns: list[re.Pattern[str]] = []
        for round_ in range(ROUNDS):
            pattern = FORM_ESCAPES if form and not round_ else ESCAPES
            read = pattern.sub(_spelled, readings[-1])
            if read == readings[-1]:
                break
            readings.append(read)
            patterns.append(pattern)
        self._readings = readings
        self._patterns = patterns
        self._layers: list[_Layer] | None = None
        self.text = readings[-1]

    def back(self, spans: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
        """``spans`` of :attr:`text`, as spans of the text it was read from: each covers
        every escape that spelled a character of it."""
        out: list[tuple[int, int, str]] = []
        for start, end, what in spans:
            if end <= start:
                continue
            if self._layers is None:
                self._layers = [
                    _Layer.of(read, pattern)
                    for read, pattern in zip(self._readings[:-1], self._patterns, strict=True)
                ]
            for layer in reversed(self._layers):
                start, end = layer.back(start, end)
            out.append((start, end, what))
        return out


_SPELLED: Final[dict[str, str]] = {}
"""Escapes met, by what they spell (most texts repeat a few: ``%20``, ``\\"``, ``\\n``)."""


def _spelled(match: re.Match[str]) -> str:
    escape = match.group()
    known = _SPELLED.get(escape)
    if known is None and escape[0] == "%":
        with contextlib.suppress(UnicodeDecodeError):  # a long run read at once, if it can be
            known = bytes.fromhex(escape.replace("%", "")).decode()
    if known is None:
        known = "".join(piece.shown for piece in _pieces(match))
        if len(_SPELLED) < 65536 and len(escape) <= 16:
            _SPELLED[escape] = known
    return known


def has_escapes(text: str) -> bool:
    """Whether ``text`` holds anything :class:`Decoded` would read otherwise."""
    return ("\\" in text or "%" in text) and ESCAPES.search(text) is not None
