"""One reading of a text as HTML (:class:`Scrub`): leniently, as a browser reads it, or
strictly, taking a tag only where CommonMark's grammar (as markdown-it has it) takes one,
as a forge's markdown parser does; what it hides from readers and the tags it shows
(:class:`Reading`).

The text is read with the standard library's :class:`html.parser.HTMLParser`, never with
a regular expression over HTML. Reading takes linear time: the parser's own scans for a
construct's end are checked first against where the last such end is, and each strict
reading of a construct looks no further than where it can end
(:meth:`Scrub._strictly`).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Final

from markdown_it.common.html_re import cdata, close_tag, comment, declaration, open_tag, processing

from fleet.markdown.tags import VOID_TAGS, hides, rebuilt

_UNCLOSED_TAG: Final = re.compile(r"</?[A-Za-z]")
_BLANK_LINE: Final = re.compile(r"\n[ \t]*\n")
_OPEN_TAG: Final = re.compile(open_tag)  # CommonMark's grammar, as markdown-it has it
_CLOSE_TAG: Final = re.compile(close_tag)
_COMMENT: Final = re.compile(comment)
_DECLARATION: Final = re.compile(f"{comment}|{declaration}|{cdata}")
_PROCESSING: Final = re.compile(processing)
_SHORT_COMMENTS: Final = ("<!-->", "<!--->")  # whole comments to a browser (HTML's spec)
_NOT_DASH: Final = re.compile(r"[^-]")
_CDATA_START: Final = "<![CDATA["
_COMMENT_CLOSE: Final = re.compile(r"--!?>")
"""Where a browser ends a comment (HTML's tokenizer): ``-->`` or ``--!>``, never ``-- >``
(the standard library's parser ends one there, and at no ``--!>``)."""


class _Stop(Exception):
    """The rest of the text is hidden: a reading ends early."""


@dataclass(frozen=True, slots=True)
class Reading:
    """What one reading of a text as HTML found: the ranges hidden from readers, and the
    tags of elements shown: where each starts and ends, and the tag rebuilt."""

    hidden: list[tuple[int, int]]
    tags: list[tuple[int, int, str]]


class Scrub(HTMLParser):
    """One reading of the text as HTML (the standard library's parser, lenient as a
    browser; or ``strict``: a tag only where CommonMark's grammar takes one), noting for
    each piece from where it starts to where the next does what a reader sees of it."""

    def __init__(self, text: str, *, strict: bool) -> None:
        # Character references read with the text: the parser's own handling of a lone
        # "&#" stops it short, and gives back all the rest, comments too, as text.
        super().__init__(convert_charrefs=True)
        self._text = text
        self._strict = strict
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        # (where the piece starts, what stands for it: None to keep it as written,
        # "" to drop it, else the tag rebuilt; where the text is cut to, if it is)
        self._pieces: list[tuple[int, str | None, int]] = []
        self._open: list[str] = []
        self._hidden_from: int | None = None  # the depth where a hidden element opened
        self._gts = [m.start() for m in re.finditer(">", text)]
        self._gaps = [m.start() for m in _BLANK_LINE.finditer(text)]
        closes = [m.start() for m in _COMMENT_CLOSE.finditer(text)]
        self._last = {end: text.rfind(end) for end in (">", "-->", "?>")}
        self._last |= {"--": closes[-1] if closes else -1, "": len(text)}
        self._ends = {
            end: [m.start() for m in re.finditer(re.escape(end), text)] for end in ("]]>", "?>")
        }
        self._dead_from = len(text) + 1  # see _strict_comment

    def read(self) -> Reading:
        try:
            self.feed(self._text)
            self.close()
        except _Stop:
            pass
        except AssertionError:  # a construct the parser gives up on: nothing after it shows
            first = self._text.find("<")
            return Reading([(max(first, 0), len(self._text))], [])
        hidden: list[tuple[int, int]] = []
        tags: list[tuple[int, int, str]] = []
        ends = [start for start, _, _ in self._pieces[1:]] + [len(self._text)]
        for (start, instead, cut), end in zip(self._pieces, ends[: len(self._pieces)], strict=True):
            if instead == "":
                hidden.append((start, end))
            elif instead is not None:
                tags.append((start, end, instead))
            if cut > start:
                hidden.append((start, cut))
        return Reading(hidden, tags)

    # The parser's own scans for a construct's end run to the end of the text when there
    # is none, once for each "<": each is checked here first against where the last such
    # end is, so that no text takes more than linear time.

    def parse_starttag(self, i: int) -> int:
        at = self._at()
        if self._strict and not self._found(_OPEN_TAG, i, self._last_after(">", at)):
            self._piece(None)  # CommonMark reads this "<" as text
            return i + 1
        if self._last[">"] < at:  # a tag never closed: a browser swallows what follows
            gap = self._after(self._gaps, at)
            self._piece(None, cut=gap)
            return i + gap - at
        return super().parse_starttag(i)

    def parse_endtag(self, i: int) -> int:
        if self._strict and not self._found(_CLOSE_TAG, i, self._last_after(">", self._at())):
            self._piece(None)
            return i + 1
        self._unclosed_to_end(">")
        return super().parse_endtag(i)

    def parse_comment(self, i: int, report: bool = True) -> int:
        if self._strict:
            return self._strict_comment(i)
        for empty in _SHORT_COMMENTS:  # whole comments to a browser; not to the parser
            if self.rawdata.startswith(empty, i):
                self._piece("")
                return i + len(empty)
        self._unclosed_to_end("--")
        close = _COMMENT_CLOSE.search(self.rawdata, i + 4)  # as a browser ends it
        if close is None:
            return -1
        if report:
            self.handle_comment(self.rawdata[i + 4 : close.start()])
        return close.end()

    def parse_html_declaration(self, i: int) -> int:
        if self._strict:
            at = self._at()
            if self._text.startswith(_CDATA_START, at):
                return self._strictly(_DECLARATION, i, self._first(self._ends["]]>"], at + 9, 3))
            return self._strictly(_DECLARATION, i, self._first(self._gts, at, 1))
        self._unclosed_to_end(">")
        return super().parse_html_declaration(i)

    def parse_pi(self, i: int) -> int:
        if self._strict:
            return self._strictly(_PROCESSING, i, self._first(self._ends["?>"], self._at() + 2, 2))
        self._unclosed_to_end(">")
        return super().parse_pi(i)

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        """``<![…`` as HTML reads it outside SVG and MathML: a bogus comment to the next
        ``>``, ``<![CDATA[`` too (a CDATA section to its ``]]>`` is CommonMark's, which the
        strict reading takes), never an error."""
        self._unclosed_to_end(">")
        end = self.rawdata.find(">", i + 3)
        if end < 0:
            return -1
        if report:
            self.unknown_decl(self.rawdata[i + 3 : end])
        return end + 1

    def _strictly(self, grammar: re.Pattern[str], i: int, end: int | None) -> int:
        """A comment, declaration or processing instruction where CommonMark's grammar
        takes one, looked for no further than ``end`` (in the text), where the construct
        can end at the furthest (None: nowhere): hidden, all of it; else a ``<`` of text."""
        return self._took(i, self._found(grammar, i, end))

    def _found(self, grammar: re.Pattern[str], i: int, end: int | None) -> re.Match[str] | None:
        """``grammar`` matched at ``i`` in what the parser holds, up to ``end`` in the text."""
        return None if end is None else grammar.match(self.rawdata, i, end - self._at() + i)

    def _took(self, i: int, found: re.Match[str] | None) -> int:
        """What a strict reading found at ``i`` hidden, or the ``<`` there read as text."""
        self._piece(None if found is None else "")
        return i + 1 if found is None else found.end()

    def _last_after(self, end: str, at: int) -> int | None:
        """Where the last ``end`` of the text ends, if it is after ``at`` (None: there is
        none): as far as a construct closed by ``end`` can reach."""
        return None if self._last[end] < at else self._last[end] + len(end)

    def _first(self, positions: list[int], at: int, length: int) -> int | None:
        """Where the first end of ``length`` characters in ``positions`` at or after
        ``at`` ends (None: there is none)."""
        index = bisect_left(positions, at)
        return positions[index] + length if index < len(positions) else None

    def _strict_comment(self, i: int) -> int:
        """A comment where CommonMark's grammar (as markdown-it has it) takes one.

        Its body is read one way only, in pieces: a character not ``-``, ``-`` and one not
        ``-``, or ``--`` and one not ``>``; the comment ends at the first ``-->`` where a
        piece ends, and there is none if no piece is followed by one. Every character not
        ``-`` ends a piece, whatever came before it: after the first one, the pieces are the
        same from any ``<!--``. So once a comment was not found, no piece after that
        character is followed by ``-->`` up to the text's end, and a later ``<!--`` can end
        only before its own first character not ``-``: the text is read in linear time."""
        at = self._at()
        if self._text.startswith(_SHORT_COMMENTS, at):
            return self._strictly(_COMMENT, i, at + 6)
        if self._last["-->"] < at:
            return self._took(i, None)
        first = _NOT_DASH.search(self._text, at + 4)
        synced = len(self._text) if first is None else first.end()
        if synced >= self._dead_from:
            return self._strictly(_COMMENT, i, synced)
        found = self._found(_COMMENT, i, self._last["-->"] + 3)
        if found is None:
            self._dead_from = synced
        return self._took(i, found)

    def _unclosed_to_end(self, end: str) -> None:
        """With no ``end`` after here, what starts here runs to the end of the text,
        hidden: the reading ends."""
        if self._last[end] < self._at():
            self._piece("", cut=len(self._text))
            raise _Stop

    def _after(self, positions: list[int], at: int) -> int:
        """The first of ``positions`` at or after ``at`` (the text's end if none)."""
        index = bisect_left(positions, at)
        return positions[index] if index < len(positions) else len(self._text)

    @property
    def _hidden(self) -> bool:
        return self._hidden_from is not None

    def _at(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def _piece(self, instead: str | None, cut: int = 0) -> None:
        self._pieces.append((self._at(), "" if self._hidden else instead, cut))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        hidden = hides(tag, attrs)
        if tag in VOID_TAGS:
            self._piece("" if hidden else rebuilt(self._name(tag), attrs))
            return
        if hidden and not self._hidden:
            self._piece("")
            self._hidden_from = len(self._open)
        else:
            self._piece(rebuilt(self._name(tag), attrs))
        self._open.append(tag)

    def _name(self, tag: str) -> str:
        """The tag's name as written (the parser gives it lowercased)."""
        written = self.get_starttag_text() or ""
        return written[1 : 1 + len(tag)] if written[1 : 1 + len(tag)].lower() == tag else tag

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID_TAGS:  # HTML reads ``<div hidden/>`` as an opening tag
            self.handle_starttag(tag, attrs)
            return
        self._piece("" if hides(tag, attrs) else rebuilt(self._name(tag), attrs, close="/"))

    def handle_endtag(self, tag: str) -> None:
        if tag not in self._open:
            self._piece(f"</{tag}>")
            return
        self._piece(f"</{tag}>")
        while self._open and self._open.pop() != tag:
            pass
        if self._hidden_from is not None and len(self._open) <= self._hidden_from:
            self._hidden_from = None

    def handle_data(self, data: str) -> None:
        at = self._at()
        if self._text.startswith("<!--", at):
            # A comment never closed (the parser gives it back as text): it hides the rest.
            self._piece("", cut=len(self._text))
            raise _Stop
        if self._text.startswith(("<!", "<?", "</"), at):
            # A declaration or an end tag never closed: a browser reads it as a comment
            # to the next ">".
            self._piece("", cut=min(self._after(self._gts, at) + 1, len(self._text)))
        elif _UNCLOSED_TAG.match(self._text, at, at + 2):
            # A tag without its ">": a browser swallows what follows into it.
            self._piece(None, cut=self._after(self._gaps, at))
        else:
            self._piece(None)

    def handle_comment(self, data: str) -> None:
        self._piece("")

    def handle_decl(self, decl: str) -> None:
        self._piece("")

    def unknown_decl(self, data: str) -> None:
        self._piece("")

    def handle_pi(self, data: str) -> None:
        self._piece("")
