"""What an agent wrote, made fit for Fleetwarden to post on a forge: :func:`defuse` for a
comment's or a description's markdown, :func:`escape_cell` for one value on a line of
ours (the footer's, the status comment's).

An agent's text is hostile: it must not ping people (GitHub and Gitea notify every
``@login`` and ``@org/team`` written outside code), and it must not pass for, hide or
break what Fleetwarden adds after it (the provenance footer, a ``<details>`` block).
:func:`defuse` keeps the agent's markdown (headings, lists, links, code) and:

* wraps each mention outside code in a code span, `` `@login` ``: it reads the same and
  notifies no one (a mention in a link's address, ``https://host/@login``, is left: the
  forge links it and notifies no one);
* escapes ``<`` and ``&`` outside code (``&lt;``, ``&amp;``): no raw HTML, so no
  ``<details>`` to fake a footer, no ``</details>`` or ``<!--`` to break or hide ours,
  and no entity (``&#64;``) that becomes a mention once the forge decodes it. In code,
  where nothing is HTML, the text stays as written;
* closes a code block left open at the end, which would swallow what follows.

Then it checks its work with markdown-it, the CommonMark parser the forges' own match: no
HTML left, no mention left outside code, and a ``<details>`` after it still starts a block
of its own. Where any fails (markdown only a parser could untangle: backticks in a link's
title), the whole text is posted as one code block instead, which nothing can leave.
"""

from __future__ import annotations

import re
from typing import Final

from markdown_it import MarkdownIt
from markdown_it.token import Token

from fleet.forge.hidden import cap, unseen_free
from fleet.redaction.guard import guarded

POST_CAP: Final = 50_000
"""Characters of an agent's text in one post: room is left for the footer within the
forges' limit (GitHub's is 65,536)."""
CELL_CAP: Final = 200
"""Characters of one value on a line of ours, unless its caller says otherwise."""
# GitHub's logins: letters, digits, "-"; Gitea's also "_" and "." (not at the end).
_MENTION: Final = re.compile(
    r"(?<![A-Za-z0-9_])@[A-Za-z0-9_](?:[\w.-]*[\w-])?(?:/[A-Za-z0-9_](?:[\w.-]*[\w-])?)?",
    re.ASCII,
)
_URL_PATH: Final = re.compile(r"(?:https?://|www\.)[\w-]+(?:\.[\w-]+)+(?::\d+)?/\S*\Z", re.ASCII)
_RUN: Final = re.compile(r"`+")
_FENCE_LINE: Final = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*")
_BLANK: Final = re.compile(r"[ \t]*")
_CELL_ESCAPES: Final = {c: "\\" + c for c in "\\`*_~[]|$"} | {
    "<": "&lt;",
    ">": "&gt;",
    "&": "&amp;",
}
_PARSER: Final = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
_PROBE: Final = "<details>"


def defuse(text: str, limit: int = POST_CAP) -> str:
    """``text`` (an agent's markdown) fit to post on a forge, at most ``limit`` characters
    (the module says how; escaping lengthens it, so a long text is cut shorter)."""
    seen = unseen_free(text).strip("\n")
    room = limit
    for _ in range(4):
        short = cap(seen, room)
        out = _defused(short)
        if not safe(out):
            out = fenced(short)
        if len(out) <= limit:
            return out
        room = max(room * limit // len(out) - 64, 0)
    return fenced(cap(seen, limit // 3 - 64))


def safe(markdown: str) -> bool:
    """Whether ``markdown`` holds no HTML and no live mention, and a ``<details>`` after
    it would start a block of its own (nothing left open swallows it)."""
    tokens = _PARSER.parse(f"{markdown}\n\n{_PROBE}")
    last = tokens[-1] if tokens else None
    if last is None or last.type != "html_block" or last.level != 0:
        return False
    if last.content.strip() != _PROBE:
        return False
    return not any(t.type == "html_block" or live_mentions(t) for t in tokens[:-1])


def live_mentions(token: Token) -> list[str]:
    """The mentions that notify in a block ``token``'s text (its inline children, outside
    code and raw HTML, which :func:`safe` refuses on its own), or raw HTML inline."""
    found: list[str] = []
    words = ""  # adjacent text children, read as one
    for child in [*(token.children or ()), None]:
        if child is not None and child.type == "text":
            words += child.content
            continue
        found.extend(m.group(0) for m in _mentions(words))
        words = ""
        if child is not None and child.type == "html_inline":
            found.append(child.content)
    return found


def fenced(text: str, info: str = "") -> str:
    """``text`` in a fenced code block no line of it can close: the fence is longer than
    any run of backticks in it."""
    longest = max((len(run) for run in _RUN.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def escape_cell(text: str | None, limit: int = CELL_CAP) -> str:
    """``text`` (a value an agent, a model or a forge user chose) as plain markdown on one
    line of ours, at most ``limit`` characters of it: nothing hidden, no line break, no
    markup (``|``, backticks, emphasis, links, HTML escaped), mentions in code spans. A
    long value is cut in the middle, around ``…``."""
    seen = unseen_free(text or "")
    room = limit
    for _ in range(4):
        out = _cell(guarded(seen, limit=room))
        if len(out) <= limit:
            return out
        room = max(room * limit // len(out) - 2, 1)
    return _cell(guarded(seen, limit=max(limit // 6, 1)))


def _cell(line: str) -> str:
    out: list[str] = []
    at = 0
    for found in _mentions(line):
        out.append(_escape_plain(line[at : found.start()]))
        out.append(f"`{found.group(0)}`")
        at = found.end()
    out.append(_escape_plain(line[at:]))
    return "".join(out)


def _escape_plain(text: str) -> str:
    return "".join(_CELL_ESCAPES.get(c, c) for c in text)


def _mentions(text: str) -> list[re.Match[str]]:
    """The ``@login`` (and ``@org/team``) in ``text`` that a forge would notify: not in an
    e-mail address, not in the path of a web address (which the forge links instead)."""
    found = []
    for mention in _MENTION.finditer(text):
        start = mention.start()
        word = text[max(text.rfind(" ", 0, start), text.rfind("\n", 0, start)) + 1 : start]
        if not _URL_PATH.search(word):
            found.append(mention)
    return found


def _defused(text: str) -> str:
    """``text`` with mentions wrapped and ``<``, ``&`` escaped outside code, and a code
    block left open at the end closed."""
    lines = text.split("\n")
    code: set[int] = set()
    tail = ""
    for token in _PARSER.parse(text):
        if token.type in ("fence", "code_block") and token.map is not None:
            start, end = token.map
            code.update(range(start, end))
            at_end = token.type == "fence" and token.level == 0 and end >= len(lines)
            if at_end and not _closes(lines[-1], token):
                tail = "\n" + token.markup
    out: list[str] = []
    prose: list[str] = []
    for index, line in enumerate(lines):
        if index in code or _BLANK.fullmatch(line):
            if prose:
                out.append(_inline("\n".join(prose)))
                prose = []
            out.append(line)
        else:
            prose.append(line)
    if prose:
        out.append(_inline("\n".join(prose)))
    return "\n".join(out) + tail


def _closes(line: str, fence: Token) -> bool:
    """Whether ``line`` closes the code block ``fence`` opened (and is not its opening)."""
    found = _FENCE_LINE.fullmatch(line)
    if found is None or fence.map is None or fence.map[1] - fence.map[0] < 2:
        return False
    run = found.group(1)
    return run[0] == fence.markup[0] and len(run) >= len(fence.markup)


def _inline(text: str) -> str:
    """One paragraph's lines with code spans kept as written; elsewhere mentions wrapped
    and ``<``, ``&`` escaped (CommonMark's code span: a run of backticks up to the next
    run of the same length; a backslash escapes a backtick outside one)."""
    out: list[str] = []
    at = 0
    plain_from = 0
    while at < len(text):
        char = text[at]
        if char == "\\" and at + 1 < len(text) and text[at + 1] == "`":
            at += 2
            continue
        if char != "`":
            at += 1
            continue
        run = _RUN.match(text, at)
        assert run is not None
        closing = _closing_run(text, run.end(), len(run.group(0)))
        if closing is None:
            at = run.end()
            continue
        out.append(_prose(text[plain_from:at]))
        out.append(text[at:closing])
        at = plain_from = closing
    out.append(_prose(text[plain_from:]))
    return "".join(out)


def _closing_run(text: str, start: int, length: int) -> int | None:
    """Where the code span opened by ``length`` backticks before ``start`` ends (after
    its closing run), if it does."""
    for run in _RUN.finditer(text, start):
        if len(run.group(0)) == length:
            return run.end()
    return None


def _prose(text: str) -> str:
    """Text outside code: ``&`` and ``<`` escaped, mentions in code spans (a backslash
    before one would only be eaten, and leave the mention live)."""
    out: list[str] = []
    at = 0
    for found in _mentions(text):
        before = text[at : found.start()]
        out.append(_entities(before.removesuffix("\\")))
        out.append(f"`{found.group(0)}`")
        at = found.end()
    out.append(_entities(text[at:]))
    return "".join(out)


def _entities(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")
