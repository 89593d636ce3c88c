"""What a reader sees of a text read as HTML: :func:`readable`, the text without what is
hidden from readers, the tags of what is shown rebuilt with only their ``href`` and
``src`` (a ``title`` or an ``alt`` is text no reader sees).

Hidden: comments (one never closed runs to the end), declarations and processing
instructions, and elements hidden with all they hold (:func:`fleet.markdown.tags.hides`:
a ``hidden`` attribute, a style that hides, ``script``, ``style``, ``template`` and the like). A tag
never closed swallows what follows it, as in a browser: to the end of its paragraph.

The text is read several times (:mod:`fleet.markdown.reading`), and what any reading hides
is taken out (:func:`readable` says why): leniently, as a browser reads HTML; strictly,
as a forge's markdown parser does; each markdown block on its own; and all of that again
with inline code blanked. Each reading takes linear time, and so does all of it.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from typing import Final

from fleet.markdown.reading import Reading, Scrub

_BLANK_LINE: Final = re.compile(r"\n[ \t]*\n")
_RUN: Final = re.compile(r"`+")


def readable(text: str, chunks: Sequence[tuple[int, int]] = ()) -> str:
    """What a reader sees of ``text``: hidden wherever either reading hides it.

    The forge's markdown parser passes on as HTML only what CommonMark's grammar takes for
    a tag; a browser then reads that HTML leniently. One reading follows each (the strict
    one takes a ``<`` CommonMark would not for text), and what either hides is taken out:
    ``<b<script>…`` is one odd tag to a browser, but text and a script to the forge. A tag
    hides its own attributes, so what either reading takes for a tag is not shown as
    text; a tag is shown, rebuilt, where nothing of it is hidden otherwise.

    CommonMark also reads each block's inline HTML in that block alone (``<!a`` at the
    end of a paragraph ends there, and does not swallow the next block's ``<div
    hidden>``): a third reading, strict, reads each of the ``chunks`` on its own. And in
    inline code nothing is HTML: a ``</script>`` there closes nothing, and the script
    runs on. So the three readings are made again of the text with its code spans
    blanked (:func:`_code_masked`)."""
    readings: list[Reading] = []
    masked = _code_masked(text)
    for source in (text, masked) if masked != text else (text,):
        readings += [Scrub(source, strict=False).read(), Scrub(source, strict=True).read()]
        for start, end in chunks:
            alone = Scrub(source[start:end], strict=True).read()
            readings.append(
                Reading(
                    [(a + start, b + start) for a, b in alone.hidden],
                    [(a + start, b + start, tag) for a, b, tag in alone.tags],
                )
            )
    hidden = bytearray(len(text))
    covered = bytearray(len(text))  # hidden, or inside a tag
    tags = sorted(
        (tag for reading in readings for tag in reading.tags), key=lambda t: (t[0], -t[1])
    )
    for reading in readings:
        for start, end in reading.hidden:
            hidden[start:end] = covered[start:end] = b"\x01" * (end - start)
    for start, end, _ in tags:
        covered[start:end] = b"\x01" * (end - start)
    out: list[str] = []
    at = shown_to = 0
    for start, end, rebuilt in [*tags, (len(text), len(text), "")]:
        if start < shown_to or hidden.find(1, start, end) >= 0:
            continue  # within a tag shown already, or partly hidden
        out.append(_uncovered(text, covered, at, start))
        out.append(rebuilt)
        at = start
        shown_to = max(end, start + 1)
    return "".join(out)


def _code_masked(text: str) -> str:
    """``text`` with what its code spans hold blanked (``x``, line ends kept): as
    CommonMark reads them, a run of backticks up to the next run of the same length,
    within a paragraph. Read only to hide more: a span taken for code that is not hides
    nothing less, as the text is read unmasked too."""
    runs = [(m.start(), m.end()) for m in _RUN.finditer(text)]
    if len(runs) < 2:
        return text
    by_length: dict[int, list[int]] = {}
    for index, (start, end) in enumerate(runs):
        by_length.setdefault(end - start, []).append(index)
    chars = list(text)
    index = 0
    while index < len(runs):
        start, end = runs[index]
        same = by_length[end - start]
        later = bisect_right(same, index)
        closing = same[later] if later < len(same) else None
        if closing is None or _BLANK_LINE.search(text, end, runs[closing][0]):
            index += 1
            continue
        for at in range(end, runs[closing][0]):
            if chars[at] != "\n":
                chars[at] = "x"
        index = closing + 1
    return "".join(chars)


def _uncovered(text: str, covered: bytearray, start: int, end: int) -> str:
    """The characters of ``text[start:end]`` that ``covered`` does not mark."""
    out: list[str] = []
    at = start
    while at < end:
        hole = covered.find(1, at, end)
        stop = end if hole < 0 else hole
        out.append(text[at:stop])
        if hole < 0:
            break
        back = covered.find(0, hole, end)
        at = end if back < 0 else back
    return "".join(out)
