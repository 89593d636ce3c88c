"""What GitLab reads from a note's or a description's markdown as written, before it renders
anything: the quick actions it runs as the poster (:func:`quick_actions`), and the closing
statements a merge request's description makes (:func:`closings`). Code spans, code blocks
and escapes hide neither from it; :func:`unclosed` takes the live statements out of text
that must show the same.

**Quick actions.** gitlabhq's ``lib/gitlab/quick_actions/extractor.rb`` runs one regular
expression over the text (``\\r`` taken out; Ruby's ``m``: ``.`` takes line ends too; ``i``:
any case) and, from left to right, takes at a line start the first of:

1. a code block: ```` ``` ```` at the line's start, anything, up to the first line that is
   exactly ```` ``` ````;
2. "inline code": anything from the line's start to a backtick, at least one character,
   and a backtick ending a line — the last such in the text, however far;
3. an HTML block: ``<tag>`` ending its line, anything, a line ``</tag>``;
4. a quote: ``>>>``, anything, a line ``>>>``;
5. a command: ``/`` at the very start of the line, a command's name, then a space and
   anything to the line's end, or nothing but blanks to it.

The first four are skipped; each fifth is run, and taken out of the text. Which names are
commands depends on where the text goes (``/close``, ``/merge``, ``/label``, ``/shrug``…);
any run of letters is taken for one here, whatever else it takes too (a name is matched
in any case, and Ruby folds ``ſ`` to ``s``). So a line ``/close`` runs unless a backtick
after it has another at the end of a later line; a ``~~~`` block or a block left open
skips nothing; a line indented by a space is never a command.

**Closing statements.** When a merge request merges, GitLab closes each issue its
description's closing statements name (``Closes #5``, ``fixes group/project#6, #7``,
``Implements https://…/-/issues/8``): gitlabhq's ``lib/gitlab/closing_issue_extractor.rb``
finds them with the default ``issue_closing_pattern`` in the text as written, then reads
the statements alone — a statement inside a code span or a code block is one too.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Collection
from typing import Final

from fleet.markdown.live_markdown import to_issue

_COMMAND: Final = re.compile(r"/\S+?(?:[ ][^\n]*)?(?:\s*\n|$)", re.ASCII | re.MULTILINE)
_CODE_CLOSE: Final = re.compile(r"\n```(?=\n|\Z)")
_QUOTE_CLOSE: Final = re.compile(r"\n>>>(?=\n|\Z)")
_HTML_CLOSE: Final = re.compile(r"\n</")
_TICK_AT_END: Final = re.compile(r"`(?=\n|\Z)")
_LINK: Final = r"https?://[^\s>]{1,300}(?<![?!.,:])"
_REFERENCE: Final = (
    rf"(?:{_LINK}|(?:[\w.-]+(?:/[\w.-]+)*)?#[0-9]+|GL-[0-9]+"
    r"|\[(?:issue|work_item):[^\]\s]+\])"
)
CLOSING: Final = re.compile(
    r"\b(?P<keyword>[Cc]los(?:e[sd]?|ing)|\b[Ff]ix(?:e[sd]|ing)?|\b[Rr]esolv(?:e[sd]?|ing)"
    r"|\b[Ii]mplement(?:s|ed|ing)?)(?P<colon>:?)(?P<spaces> +)"
    rf"(?:(?:issues? +)?{_REFERENCE}(?:(?: *,? +and +| *,? *)?)|(?:[A-Z][A-Z0-9_]+-[0-9]+))+",
    re.ASCII,
)
"""GitLab's default ``issue_closing_pattern``, its ``%{issue_ref}`` an issue's reference or
an ``http(s)`` address (``config/initializers/1_settings.rb``)."""
_ISSUE: Final = re.compile(
    rf"{_LINK}|(?P<path>[\w.-]+(?:/[\w.-]+)*)?#(?P<n>[0-9]+)|GL-(?P<gl>[0-9]+)"
    r"|\[(?:issue|work_item):[^\]\s]+\]",
    re.ASCII,
)
_HOLD: Final = "\u00a0"  # a space to the eye, none to the pattern


def quick_actions(text: str) -> list[str]:
    """The lines of ``text`` GitLab runs as quick actions when it is posted (the module says
    how it finds them), each as written."""
    text = text.replace("\r", "")
    skips = _Skips(text)
    found: list[str] = []
    at = 0
    while at <= len(text):
        if at and text[at - 1] != "\n":
            line_end = text.find("\n", at)
            if line_end < 0:
                break
            at = line_end + 1
            continue
        skipped = skips.end(at)
        if skipped is not None:
            at = skipped
            continue
        command = _COMMAND.match(text, at) if text.startswith("/", at) else None
        if command is not None:
            found.append(command[0].split("\n", 1)[0])
            at = command.end()
            continue
        at += 1
    return found


def closings(text: str, own: Collection[int] = ()) -> list[str]:
    """The closing statements in ``text`` that name an issue but ``own`` (a bare ``#N`` of
    it): merged with it as its description, each would close another."""
    return [found[0] for found in CLOSING.finditer(text) if _closes_another(found[0], own)]


def unclosed(text: str, own: Collection[int] = ()) -> str:
    """``text`` with each closing statement naming another issue than ``own`` broken: the
    spaces after its keyword made no-break spaces, which read the same and match
    nothing."""
    for _ in range(4):
        found = [m for m in CLOSING.finditer(text) if _closes_another(m[0], own)]
        if not found:
            return text
        for statement in reversed(found):
            start, end = statement.span("spaces")
            text = text[:start] + _HOLD * (end - start) + text[end:]
    return text


def _closes_another(statement: str, own: Collection[int]) -> bool:
    """Whether ``statement`` names an issue but a bare ``#N`` of ``own``: another
    project's, another number, an issue's address (of this project or not)."""
    for issue in _ISSUE.finditer(statement):
        if issue["n"] is not None:
            bare = issue["path"] is None and len(issue["n"]) < 19
            if not (bare and int(issue["n"]) in own):
                return True
        elif issue["gl"] is not None:
            if len(issue["gl"]) >= 19 or int(issue["gl"]) not in own:
                return True
        elif issue[0].startswith("[") or to_issue(issue[0]):
            return True
    return False


class _Skips:
    """Where each of the extractor's skipped pieces starting at a line start ends."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.ticks = [i for i, char in enumerate(text) if char == "`"]
        ends = [m.start() for m in _TICK_AT_END.finditer(text)]
        self.last_tick_at_end = ends[-1] if ends else -1
        self.code = [m.start() for m in _CODE_CLOSE.finditer(text)]
        self.quote = [m.start() for m in _QUOTE_CLOSE.finditer(text)]
        self.html = [(m.start(), end) for m in _HTML_CLOSE.finditer(text) if (end := self._tag(m))]

    def _tag(self, opening: re.Match[str]) -> int:
        """Where a closing tag ``</…>`` that ends its line ends (0: it does not)."""
        close = self.text.find(">", opening.end())
        at_end = close + 1 == len(self.text) or self.text.startswith("\n", close + 1)
        return close + 1 if close > opening.end() and at_end else 0

    def end(self, at: int) -> int | None:
        """Where the skipped piece starting at line start ``at`` ends (None: none does)."""
        text = self.text
        if text.startswith("```", at) and (close := _after(self.code, at + 4)) is not None:
            return close + 4
        first_tick = _after(self.ticks, at)
        if first_tick is not None and first_tick <= self.last_tick_at_end - 2:
            return self.last_tick_at_end + 1
        if text.startswith("<", at):
            tag_end = text.find(">", at + 1)
            if tag_end >= at + 2 and text.startswith("\n", tag_end + 1):
                index = bisect_left(self.html, (tag_end + 3, 0))
                if index < len(self.html):
                    return self.html[index][1]
        if text.startswith(">>>", at) and (close := _after(self.quote, at + 4)) is not None:
            return close + 4
        return None


def _after(positions: list[int], at: int) -> int | None:
    """The first of ``positions`` at or after ``at``."""
    index = bisect_left(positions, at)
    return positions[index] if index < len(positions) else None
