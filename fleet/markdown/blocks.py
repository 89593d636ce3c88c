"""Code blocks in what Fleetwarden posts: :func:`fenced` (a text in a fence none of its
lines can close), :func:`as_code` (a whole text as one code block fit for every forge), and
:func:`code_lines` — which lines of an agent's markdown are code, and which of its blocks
:func:`fleet.markdown.defuse.defuse` writes anew.

A code block shows what it holds as written, but not everything reads it as code. GitLab's
quick actions reader skips only a block fenced by a line of exactly three backticks at each
end (:mod:`fleet.markdown.gitlab_raw`): a ``~~~`` block, a longer fence or one left open
holding a line that starts with ``/`` is written anew, fenced by three backticks — or,
where a line of it would close those, indented — showing the same code. A diagram block
(``mermaid`` and the like, which the forges draw) is shown as code (``text mermaid``); a
block left open at the end is closed, or it would swallow what follows.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Final, NamedTuple

from markdown_it.token import Token

from fleet.markdown.gitlab_raw import unclosed

_DIAGRAMS: Final = frozenset({"mermaid", "geojson", "topojson", "stl"})  # drawn, not shown
_RUN: Final = re.compile(r"`+")
_FENCE_LINE: Final = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*")
_CLOSER: Final = re.compile(r" {0,3}`{3,}[ \t]*")  # a line closing a backtick fence
_BLANK: Final = re.compile(r"[ \t]*")
_SLASH_LINE: Final = re.compile(r"^/\S", re.MULTILINE)  # a line GitLab may run as a command


class CodeLines(NamedTuple):
    """The code blocks of a text's lines: which lines are code, the lines written anew
    (by index: a block's first line, standing for the block where its other lines are
    ``dropped``), and what closes a block left open at the end."""

    code: set[int]
    instead: dict[int, str]
    dropped: set[int]
    tail: str


def fenced(text: str, info: str = "") -> str:
    """``text`` in a fenced code block no line of it can close: the fence is longer than
    any run of backticks in it."""
    longest = max((len(run) for run in _RUN.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def as_code(text: str, own: Collection[int] = ()) -> str:
    """``text`` as one code block fit to post on any forge, its closing statements but to
    ``own`` broken (:func:`fleet.markdown.gitlab_raw.unclosed`): fenced, or indented when
    its fence is longer than ```` ``` ```` and a line of it starts with ``/``."""
    text = unclosed(text, own)
    block = fenced(text)
    if not block.startswith("````") or not _SLASH_LINE.search(text):
        return block
    return "\n".join(f"    {line}" if line else line for line in text.split("\n"))


def code_lines(lines: list[str], tokens: Sequence[Token]) -> CodeLines:
    """The code blocks among ``lines``, as markdown-it's block ``tokens`` of them found
    (the module says which are written anew)."""
    found = CodeLines(set(), {}, set(), "")
    tail = ""
    for token in tokens:
        if token.type not in ("fence", "code_block") or token.map is None:
            continue
        start, end = token.map
        found.code.update(range(start, end))
        at_end = token.type == "fence" and token.level == 0 and end >= len(lines)
        closed = not at_end or _closes(lines[-1], token)
        if token.type == "fence" and token.level == 0 and _runs(lines, token, closed):
            found.instead[start] = _skipped(token, lines)
            found.dropped.update(range(start + 1, end))
            continue
        if not closed:
            tail = "\n" + token.markup
        if token.type == "fence" and _DIAGRAMS.intersection(token.info.lower().split()[:1]):
            found.instead[start] = lines[start].replace(token.markup, f"{token.markup}text ", 1)
    return found._replace(tail=tail)


def _runs(lines: list[str], fence: Token, closed: bool) -> bool:
    """Whether the top-level code block ``fence`` holds a line GitLab's quick actions may
    run: one starting with ``/``, in a block not fenced by a line of exactly three
    backticks at both ends (the only one its reader skips for sure)."""
    assert fence.map is not None
    start, end = fence.map
    inside = lines[start + 1 : end - 1 if closed else end]
    if not any(_SLASH_LINE.match(line) for line in inside):
        return False
    closer = lines[end - 1] if closed else fence.markup
    return not (fence.markup == "```" and lines[start].startswith("```") and closer == "```")


def _skipped(fence: Token, lines: list[str]) -> str:
    """The code block ``fence`` written anew so GitLab's quick actions skip it, showing the
    same: fenced by exactly three backticks, or where a line of it would close those,
    indented (a blank line before it, which an indented block needs)."""
    assert fence.map is not None
    start, end = fence.map
    body = fence.content.rstrip("\n").split("\n")
    if not any(_CLOSER.fullmatch(line) for line in body):
        info = "" if "`" in fence.info else fence.info.strip()
        info = f"text {info}" if _DIAGRAMS.intersection(info.lower().split()[:1]) else info
        return "\n".join(["```" + info, *body, "```"])
    block = "\n".join(f"    {line}" if line else line for line in body)
    before = "\n" if start > 0 and not _BLANK.fullmatch(lines[start - 1]) else ""
    after = "\n" if end < len(lines) and not _BLANK.fullmatch(lines[end]) else ""
    return f"{before}{block}{after}"


def _closes(line: str, fence: Token) -> bool:
    """Whether ``line`` closes the code block ``fence`` opened (and is not its opening)."""
    found = _FENCE_LINE.fullmatch(line)
    if found is None or fence.map is None or fence.map[1] - fence.map[0] < 2:
        return False
    run = found.group(1)
    return run[0] == fence.markup[0] and len(run) >= len(fence.markup)
