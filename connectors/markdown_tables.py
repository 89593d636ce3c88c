"""The top-level GFM tables of a message, found without parsing the whole of it.

``ps`` on a fleet of a thousand agents is a table of a thousand rows; parsing it with
markdown-it builds tens of thousands of tokens to learn what a line scan already knows.
:func:`find_tables` finds the tables a bot reply holds at the top level — a line starting
with ``|`` after a blank line (or the start), a delimiter row under it, rows until a blank
line — by markdown-it's own rules for a table (its cell splitting, its trimming, its
alignment row), so :mod:`connectors.markdown` renders them directly and hands only the
text between them to the parser.

It answers only when it is sure: a message whose structure a line scan cannot settle (a
fence that is not at the top level, a reference definition the parts would no longer share, a
table running into a non-blank line, carriage returns markdown-it normalizes) gets
``None``, and is parsed whole as before. Cells with inline markup are still rendered by
markdown-it, one cell at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from markdown_it.common.utils import mdTrim
from markdown_it.rules_block.table import MAX_AUTOCOMPLETED_CELLS, escapedSplit

_DELIMITER_CELL: Final = re.compile(r"^:?-+:?$")
_DELIMITER_LINE: Final = re.compile(r"^[-:|][-:| \t]+$")
_FENCE: Final = re.compile(r"^ {0,3}(`{3,}|~{3,})")
PLAIN_CELL: Final = re.compile(r"^[^\\`~*_\[\]!<>&\"]*$")
"""A cell whose text markdown-it would render as it is (no escape, code, emphasis, link,
image, autolink, entity, strikethrough, or a quote HTML would escape)."""


@dataclass(frozen=True, slots=True)
class Table:
    """One table: lines ``start`` to ``end`` (exclusive) of the message; its cells' sources
    (inline markdown), every row as wide as the header; each column's alignment."""

    start: int
    end: int
    aligns: tuple[str, ...]  # "", "left", "right" or "center"
    head: tuple[str, ...]
    body: tuple[tuple[str, ...], ...]


def find_tables(lines: list[str]) -> list[Table] | None:
    """The top-level tables in ``lines`` (a message split on ``\\n``), in order; ``None``
    when a line scan cannot be sure what markdown-it would make of the message."""
    tables: list[Table] = []
    fence: tuple[str, int] | None = None  # the open fence's character and length
    blank_before = True
    index = 0
    while index < len(lines):
        line = lines[index]
        if "\r" in line or "\0" in line or "]:" in line:
            return None  # normalized by markdown-it, or a reference definition
        opened = _FENCE.match(line)
        if fence is not None:
            marker = opened.group(1) if opened else ""
            closes = marker[:1] == fence[0] and len(marker) >= fence[1]
            if closes and not line.strip().strip(fence[0]):
                fence = None
            index += 1
            blank_before = False
            continue
        if opened:
            if not line.startswith(opened.group(1)):
                return None  # an indented fence may be a list item's, open past its end
            fence = (opened.group(1)[0], len(opened.group(1)))
            index += 1
            blank_before = False
            continue
        if "```" in line or "~~~" in line:
            return None  # a fence inside a quote or a list item (or inline code)
        if line.startswith("|") and index + 1 < len(lines) and _is_delimiter(lines[index + 1]):
            if not blank_before:
                return None  # a table that may interrupt a paragraph: let the parser say
            table = _table_at(lines, index)
            if table is None:
                return None
            tables.append(table)
            index = table.end
            blank_before = False
            continue
        blank_before = not line.strip()
        index += 1
    return tables


def _is_delimiter(line: str) -> bool:
    """Whether markdown-it could take ``line`` for a table's alignment row (a ``-`` and a
    space begin a list item instead)."""
    if "|" not in line or _DELIMITER_LINE.match(line) is None:
        return False
    return not (line[0] == "-" and line[1] in " \t")


def _table_at(lines: list[str], start: int) -> Table | None:
    """The table whose header is line ``start`` — when markdown-it reads it as one that
    ends at a blank line or the end of the message."""
    aligns: list[str] = []
    columns = lines[start + 1].split("|")
    for i, column in enumerate(columns):
        cell = mdTrim(column)
        if not cell:
            if i == 0 or i == len(columns) - 1:
                continue
            return None
        if not _DELIMITER_CELL.match(cell):
            return None
        if cell.endswith(":"):
            aligns.append("center" if cell.startswith(":") else "right")
        elif cell.startswith(":"):
            aligns.append("left")
        else:
            aligns.append("")
    head = _cells(lines[start])
    if not head or len(head) != len(aligns):
        return None
    body: list[tuple[str, ...]] = []
    autocompleted = 0
    end = start + 2
    while end < len(lines) and lines[end].startswith("|"):
        cells = _cells(lines[end])
        autocompleted += len(head) - len(cells)
        if autocompleted > MAX_AUTOCOMPLETED_CELLS:
            return None
        body.append(tuple((cells + [""] * len(head))[: len(head)]))
        end += 1
    if end < len(lines) and lines[end].strip():
        return None  # markdown-it may read the next line as a row, or end the table there
    return Table(start, end, tuple(aligns), tuple(head), tuple(body))


def _cells(line: str) -> list[str]:
    columns = escapedSplit(mdTrim(line))
    if columns and columns[0] == "":
        columns.pop(0)
    if columns and columns[-1] == "":
        columns.pop()
    return [mdTrim(column) for column in columns]
