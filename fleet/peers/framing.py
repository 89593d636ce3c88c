"""The frame: how a message, a task handed on or a review's verdict reaches an agent — a
header naming its sender, every line of its text quoted with ``> ``, and a footer saying
how to answer::

    ── message 12 from coder (claude on local) ──
    > first line of the text
    > second line
    ── end of message 12 · answer: fw-msg send coder "…" ──

The text is defused first (:func:`defuse`): ANSI escapes, control characters, direction
overrides and every other invisible format character dropped, every line break made
``\\n``, and cut at a cap. No line of it can then be a frame line, so the receiver cannot
be made to believe another sender: only the header says who wrote."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

MAX_FRAMED: Final = 16_000
"""The most characters of a text a frame carries; the rest is cut, saying so."""
QUOTE: Final = "> "
RULE: Final = "──"
_CUT: Final = "… (cut here: the text is over {limit} characters)"

# ESC [ … final (CSI), ESC ] … BEL or ESC \ (OSC), ESC P/X/^/_ … ESC \ (strings), ESC x.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def defuse(text: str, limit: int = MAX_FRAMED) -> str:
    """``text`` safe to quote: escapes and control characters dropped (tabs kept as a
    space), line breaks made ``\\n``, at most ``limit`` characters (said where cut)."""
    text = _ANSI.sub("", text)
    text = _BREAKS.sub("\n", text)
    text = _CONTROLS.sub("", text.replace("\t", "    ")).replace("\x1b", "")
    # Every other format character too: the invisible tag letters (U+E0020…) a model reads
    # as text while chat and the dashboard show nothing, word joiners, the byte-order mark.
    text = "".join(char for char in text if unicodedata.category(char) != "Cf")
    if len(text) > limit:
        text = text[:limit] + "\n" + _CUT.format(limit=limit)
    return text


def quoted(text: str, limit: int = MAX_FRAMED) -> str:
    """``text`` defused, every line of it starting with ``> ``."""
    lines = defuse(text, limit).strip("\n").split("\n")
    return "\n".join(QUOTE + line.rstrip() for line in lines)


def header(what: str, number: int, sender: str, runtime: str, host: str) -> str:
    """``── message 12 from coder (claude on local) ──``; ``what``: message, task or review."""
    return f"{RULE} {what} {number} from {sender} ({runtime} on {host}) {RULE}"


def footer(what: str, number: int, sender: str) -> str:
    """``── end of message 12 · answer: fw-msg send coder "…" ──``: how to answer (the
    FLIP rule: the header's sender becomes the one written to)."""
    return f'{RULE} end of {what} {number} · answer: fw-msg send {sender} "…" {RULE}'


def frame(what: str, number: int, sender: str, text: str, *, runtime: str, host: str) -> str:
    """``text`` from ``sender`` (running ``runtime`` on ``host``) framed as ``what``
    ``number``, as the receiving agent reads it."""
    return "\n".join(
        (header(what, number, sender, runtime, host), quoted(text), footer(what, number, sender))
    )
