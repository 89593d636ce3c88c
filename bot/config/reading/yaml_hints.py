"""What to fix when YAML cannot be read for its layout: a key indented more or less than
the keys it belongs with, a list item out of line with the items above it, a tab, a colon
with no space after it. PyYAML says where it stopped ("mapping values are not allowed
here", "expected <block end>"); :func:`layout_hint` reads the lines around that place and
says, in an operator's words, which line is wrong and how to put it right. ``None`` when
the mistake is not one of these; the caller then says what YAML said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

__all__ = ["layout_hint", "tight_colon"]

_ITEM = re.compile(r"(?P<indent> *)(?P<dashes>(?:- +)*)(?P<rest>.*)")
_KEY = re.compile(r"(?P<key>[^\s:#'\"{}\[\],&*!|>%@`][^:#]*?)[ \t]*:(?:[ \t]|$)")
_TIGHT = re.compile(r"(?P<key>[A-Za-z_][\w.-]*):(?P<value>[^\s/:][^\s]*)")


@dataclass(frozen=True, slots=True)
class _Line:
    """One line of the file as its layout reads: where its content starts (after any list
    dashes), its key if it starts with one, and where its first dash is."""

    number: int  # 1-based
    text: str
    dash: int | None  # 1-based column of its first `- `, if it is a list item
    column: int  # 1-based column of its content, after the dashes
    key: str | None

    @property
    def where(self) -> str:
        return f"line {self.number}"


def _read(number: int, text: str) -> _Line | None:
    """``text`` (line ``number``) as layout, or ``None`` for a blank line or a comment."""
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return None
    match = _ITEM.fullmatch(text.rstrip("\r\n"))
    if match is None:  # a tab or another blank before the content
        return None
    indent, dashes, rest = match["indent"], match["dashes"], match["rest"]
    dash = len(indent) + 1 if dashes else None
    key = _KEY.match(rest)
    return _Line(number, text, dash, len(indent) + len(dashes) + 1, key["key"] if key else None)


def _above(lines: list[str], number: int) -> _Line | None:
    """The nearest line above line ``number`` with something on it."""
    for n in range(number - 1, 0, -1):
        read = _read(n, lines[n - 1])
        if read is not None:
            return read
    return None


def layout_hint(exc: yaml.MarkedYAMLError, text: str) -> tuple[int, str] | None:
    """The line to fix and what to do, when ``exc`` comes of the file's layout."""
    mark = exc.problem_mark
    if mark is None:
        return None
    lines = text.splitlines()
    number = mark.line + 1
    problem = exc.problem or ""
    if "'\\t'" in problem:
        return number, (
            "a tab indents this line; YAML indents with spaces only: replace the tab with "
            "spaces, lining the line up with the ones it belongs with"
        )
    if number > len(lines):
        return None
    here = _read(number, lines[number - 1])
    above = _above(lines, number)
    if here is None or above is None:
        return None
    if problem == "mapping values are not allowed here":
        return _tight_colon(above, here) or _deeper_key(above, here)
    if problem.startswith("expected <block end>"):
        if "'-'" in problem or "<block sequence start>" in problem:
            return _stray_item(lines, here)
        if "<block mapping start>" in problem and here.key is not None:
            return _shallower_key(lines, above, here)
    return None


def _tight_colon(above: _Line, here: _Line) -> tuple[int, str] | None:
    """``key:value`` on the line above: one text to YAML, so this line's key is stray."""
    for line in (above, here):
        rest = line.text[line.column - 1 :].strip()
        tight = _TIGHT.match(rest)
        if tight is not None and line.key is None:
            key, value = tight["key"], tight["value"]
            return line.number, (
                f"put a space after the colon: `{key}: {value}`, not `{key}:{value}`; "
                "without it YAML reads the line as one piece of text, not a key and its value"
            )
    return None


def _deeper_key(above: _Line, here: _Line) -> tuple[int, str] | None:
    if here.key is None or above.key is None or here.column <= above.column:
        return None
    return here.number, (
        f"`{here.key}` is indented more than `{above.key}` on {above.where} (column "
        f"{here.column}, not {above.column}); keys of one mapping line up: start it at "
        f"column {above.column}, or, to put it under `{above.key}`, move `{above.key}`'s "
        "value off its line"
    )


def _shallower_key(lines: list[str], above: _Line, here: _Line) -> tuple[int, str] | None:
    """A key indented less than the keys above it, but more than their parent's."""
    siblings = above
    for n in range(above.number, 0, -1):  # the nearest key above that starts further right
        read = _read(n, lines[n - 1])
        if read is not None and read.key is not None and read.column > here.column:
            siblings = read
            break
    if siblings.key is None or siblings.column <= here.column:
        return None
    return here.number, (
        f"`{here.key}` is indented less than `{siblings.key}` on {siblings.where} (column "
        f"{here.column}, not {siblings.column}); keys of one mapping line up: start it at "
        f"column {siblings.column}, or further left to end that mapping"
    )


def _stray_item(lines: list[str], here: _Line) -> tuple[int, str] | None:
    """A list item whose dash is not under the dashes of the items above it."""
    if here.dash is None:
        return None
    for n in range(here.number - 1, 0, -1):
        read = _read(n, lines[n - 1])
        if read is not None and read.dash is not None and read.dash != here.dash:
            return here.number, (
                f"this list item's `-` is at column {here.dash}, the items above it at column "
                f"{read.dash} ({read.where}); items of one list line up: start its `-` at "
                f"column {read.dash}"
            )
    return None


def tight_colon(value: str) -> str:
    """For a text found where a mapping belongs: ``"; put a space after the colon…"`` when
    it reads as ``key:value`` written without the space, else ``""``."""
    tight = _TIGHT.fullmatch(value.strip())
    if tight is None:
        return ""
    key, rest = tight["key"], tight["value"]
    return f"; put a space after the colon to make it a key and its value: `{key}: {rest}`"
