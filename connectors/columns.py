"""Terminal columns: how wide text shows, text wrapped at word boundaries, and a table's
columns narrowed to fit a width.

Pure functions for the console's plain text (:mod:`connectors.markdown`) and its prompt
(:mod:`connectors.console.screen`). A word is never cut: a word wider than the room it has
stays whole on a line of its own, and a table that cannot fit without cutting one stays
wider than asked.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def text_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide (CJK) characters count two, combining marks none."""
    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1
        for char in text
    )


def wrap_words(text: str, width: int) -> list[str]:
    """``text`` on lines of at most ``width`` columns, broken only where it has a space
    (a word wider than ``width`` has a line of its own); a line of ``text`` that fits is
    kept as it is."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        if text_width(paragraph) <= width:
            lines.append(paragraph)
            continue
        line, used = "", 0
        for word in paragraph.split():
            size = text_width(word)
            if line and used + 1 + size > width:
                lines.append(line)
                line, used = "", 0
            line, used = (f"{line} {word}", used + 1 + size) if line else (word, size)
        lines.append(line)
    return lines


def fit_widths(rows: Sequence[Sequence[str]], gap: int, width: int) -> list[int]:
    """Each column's width so that the rows, their columns ``gap`` apart, fit in ``width``
    columns: the widest columns are narrowed first, none below its longest word (so none
    is ever cut mid-word), and nothing is narrowed when the rows fit as they are."""
    columns = max((len(row) for row in rows), default=0)
    cells = [[row[c] for row in rows if c < len(row)] for c in range(columns)]
    natural = [max(map(text_width, column), default=0) for column in cells]
    room = width - gap * max(columns - 1, 0)
    if sum(natural) <= room:
        return natural
    floor = [
        max((text_width(w) for cell in column for w in cell.split()), default=0) for column in cells
    ]

    def widths(cap: int) -> list[int]:
        return [min(n, max(cap, f)) for n, f in zip(natural, floor, strict=True)]

    low, high = 0, max(natural)  # the largest cap whose widths fit (or 0: as narrow as can be)
    while low < high:
        cap = (low + high + 1) // 2
        if sum(widths(cap)) <= room:
            low = cap
        else:
            high = cap - 1
    return widths(low)
