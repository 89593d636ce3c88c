r"""The characters a reading of text scans, counted (:func:`counted_scans`): a measure of
the work :func:`fleet.markdown.hidden.clean` does that grows with the work alone, however
loaded the machine is, for the tests of how that work grows with the text.

Counted: every search, match and whole-text pass of a compiled pattern kept at the top
of the modules that read the text (the standard library's HTML parser and its base,
markdown-it's, :mod:`fleet.markdown`'s), and every ``find``, ``rfind`` and ``count`` the
HTML parser makes over the text it was fed. A search that finds nothing counts the text
to its end; a match, what it took, or when it takes nothing, as far as the pattern had
to look before it could fail: the longest start of the text (to the end it was given, or
to the text's end) that some text could still go on from into a match (found with the
``regex`` module's partial matches).

What it does not see: the steps a backtracking match takes over what it read (a pattern
like ``\s*\s*y`` reads n characters in n² steps; the patterns counted here each fail in
constant steps at a backtrack point); a search that finds nothing tried from every start
(counted once, to the end); string methods outside the HTML parser's. Quadratic work of
those kinds is kept out by reading: ``hidden.py`` matches a definition's label where its
line starts, and flattens the shown text once for every label."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, SupportsIndex

import pytest
import regex

READERS = ("html.parser", "_markupbase", "markdown_it", "fleet.markdown")
"""The modules (and the packages, each module under them) whose patterns are counted."""


@dataclass
class Scans:
    """The characters scanned so far."""

    characters: int = 0


class _Pattern:
    """A compiled pattern whose every call adds what it scanned to ``scans``."""

    def __init__(self, pattern: re.Pattern[str], scans: Scans) -> None:
        self._pattern = pattern
        self._scans = scans

    def _looked(self, string: str, pos: int, endpos: int | None) -> int:
        """Where a match from ``pos`` that took nothing had looked to: the end of the
        longest start of ``string[pos:endpos]`` that a match could still go on from."""
        end = len(string) if endpos is None else min(len(string), endpos)
        partial = _partial(self._pattern)

        def goes_on(to: int) -> bool:
            return partial.match(string, pos, to, partial=True) is not None

        # Galloping out from pos (most fail within a few characters), then halving: a
        # match can go on from string[pos:low], and cannot from string[pos:high + 1].
        low, step = pos, 1
        while low + step <= end and goes_on(low + step):
            low, step = low + step, step * 2
        high = min(low + step, end + 1) - 1
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if goes_on(middle) else (low, middle - 1)
        return min(low + 1, end)  # the character that told it no

    def _took(self, found: re.Match[str] | None, pos: int, to: int) -> None:
        """A call from ``pos`` took what it found, or the characters up to ``to``."""
        self._scans.characters += max((to if found is None else found.end()) - pos, 1)

    def search(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> Any:
        found = self._pattern.search(string, pos, endpos)
        self._took(found, pos, min(len(string), endpos))  # none: it looked to the end
        return found

    def match(self, string: str, pos: int = 0, endpos: int | None = None) -> Any:
        found = self._pattern.match(string, pos, sys.maxsize if endpos is None else endpos)
        self._took(found, pos, pos if found else self._looked(string, pos, endpos))
        return found

    def fullmatch(self, string: str, pos: int = 0, endpos: int | None = None) -> Any:
        found = self._pattern.fullmatch(string, pos, sys.maxsize if endpos is None else endpos)
        self._took(found, pos, pos if found else self._looked(string, pos, endpos))
        return found

    def _whole(self, name: str) -> Callable[..., Any]:
        """A method that passes over the whole string (its first argument, or the second
        for ``sub`` and ``subn``)."""
        method = getattr(self._pattern, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            string = args[1] if name in ("sub", "subn") else args[0]
            self._scans.characters += len(string) if isinstance(string, str) else 1
            return method(*args, **kwargs)

        return counted

    def __getattr__(self, name: str) -> Any:
        if name in ("finditer", "findall", "sub", "subn", "split"):
            return self._whole(name)
        return getattr(self._pattern, name)


class _Fed(str):
    """The text an HTML parser was fed: its scans counted, as are those of its slices
    (the parser keeps the part it has not read yet)."""

    scans = Scans()

    def __add__(self, other: str) -> _Fed:
        return _Fed(str(self) + other)

    def __radd__(self, other: str) -> _Fed:
        return _Fed(other + str(self))

    def __getitem__(self, key: SupportsIndex | slice) -> _Fed:
        return _Fed(str.__getitem__(self, key))

    def _span(self, start: SupportsIndex | None, end: SupportsIndex | None) -> tuple[int, int]:
        """Where a call from ``start`` to ``end`` looks, as a slice reads them."""
        first, last, _ = slice(start, end).indices(len(self))
        return first, max(first, last)

    def find(
        self, sub: str, start: SupportsIndex | None = None, end: SupportsIndex | None = None
    ) -> int:
        at = str.find(self, sub, start, end)
        first, last = self._span(start, end)
        self.scans.characters += max((at + len(sub) if at >= 0 else last) - first, 1)
        return at

    def rfind(
        self, sub: str, start: SupportsIndex | None = None, end: SupportsIndex | None = None
    ) -> int:
        at = str.rfind(self, sub, start, end)
        first, last = self._span(start, end)
        self.scans.characters += max(last - (at if at >= 0 else first), 1)
        return at

    def count(
        self, sub: str, start: SupportsIndex | None = None, end: SupportsIndex | None = None
    ) -> int:
        first, last = self._span(start, end)
        self.scans.characters += max(last - first, 1)
        return str.count(self, sub, start, end)


_PARTIAL: dict[tuple[str, int], Any] = {}


def _partial(pattern: re.Pattern[str]) -> Any:
    """``pattern`` compiled by the ``regex`` module, which can tell a partial match."""
    key = (pattern.pattern, pattern.flags)
    if key not in _PARTIAL:
        _PARTIAL[key] = regex.compile(pattern.pattern, pattern.flags)
    return _PARTIAL[key]


def _readers() -> Iterator[Any]:
    """The loaded modules whose patterns are counted."""
    for name, module in list(sys.modules.items()):
        if module is not None and any(name == r or name.startswith(f"{r}.") for r in READERS):
            yield module


@contextmanager
def counted_scans() -> Iterator[Scans]:
    """Within it, the characters the readers scan are counted in the scans yielded."""
    scans = Scans()
    feed = HTMLParser.feed

    def fed(self: HTMLParser, data: str) -> None:
        feed(self, _Fed(data))

    with pytest.MonkeyPatch.context() as patch:
        for module in _readers():
            for name, value in list(vars(module).items()):
                if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
                    patch.setattr(module, name, _Pattern(value, scans))
                elif isinstance(getattr(value, "__self__", None), re.Pattern) and callable(value):
                    counted = _Pattern(value.__self__, scans)
                    patch.setattr(module, name, getattr(counted, value.__name__))
        patch.setattr(_Fed, "scans", scans)
        patch.setattr(HTMLParser, "feed", fed)
        yield scans
