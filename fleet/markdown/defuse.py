"""What an agent wrote, made fit for Fleetwarden to post on a forge: :func:`defuse` for a
comment's or a description's markdown, :func:`escape_cell` for one value on a line of
ours (the footer's, the status comment's). One text serves every kind of forge: what
GitHub, Gitea or GitLab would read as live is neutralised for all three.

An agent's text is hostile: it must not ping people (the forges notify every ``@login``,
``@org/team`` and GitLab's ``@group/sub`` and ``@all`` written outside code), act on
issues it was not given, run a GitLab quick action, carry what it read out of its
sandbox, or pass for, hide or break what Fleetwarden adds after it (the provenance footer,
a ``<details>`` block). :func:`defuse` keeps the agent's markdown (headings, lists, links,
code) and:

* wraps each mention outside code in a code span, `` `@login` ``: it reads the same and
  notifies no one (one in a web address too, ``https://host/`@login` ``: whether the
  address is linked, and so the mention quiet, differs from one renderer to the next);
* wraps each reference outside code in a code span but those of the run's own issue
  and pull request (``own``; a GitLab run's merge request: ``own_pulls``, which GitLab
  numbers apart — :mod:`fleet.markdown.inert` says how): ``#N``, ``!N`` (Gitea's, and
  GitLab's merge requests), ``GH-N``, ``GL-N``; any ``owner/repo#N`` or ``x#N`` (it may
  name another repository's issue of the same number); GitLab's labels, milestones,
  snippets, epics, iterations, ``[vulnerability:N]`` and the other forms
  (:mod:`fleet.markdown.glfm`); and any web address of an issue, a pull or merge request
  or another object GitLab links (``…/issues/N``, ``/pull/N``, ``/pulls/N``,
  ``/-/merge_requests/N``, ``/-/epics/N``…: the forge's host is not known here). A closing
  keyword before one stays outside the span: a keyword before code closes nothing, while
  GitLab reads its closing statements in the text as written, code spans and all. So
  merging a pull request closes no issue but its own, and no other issue is told it was
  mentioned. A link to an issue, or to one reference (``[x](#5)``), becomes its text and
  its address as code;
* turns each image into its text and its address as code, `` alt (image: `https://…`) ``:
  a forge shows an image by fetching its address (GitHub through its image proxy, Gitea
  from the reader's browser), and an address can carry what the agent read past the
  sandbox's egress lock. A ``![`` it cannot read as an image is escaped (``\\![``); a
  diagram block (``mermaid`` and the like, which the forges draw) is shown as code;
* escapes ``<`` and ``&`` outside code (``&lt;``, ``&amp;``): no raw HTML, so no ``<img>``,
  no ``<details>`` to fake a footer, no ``</details>`` or ``<!--`` to break or hide ours,
  and no entity (``&#64;``) that becomes a mention once the forge decodes it. In code,
  where nothing is HTML, the text stays as written. A ``$`` beside a code span of its
  making is escaped too (GitLab's math, ``$`…`$``, would take the span);
* keeps every line from running as a GitLab quick action (``/close``, ``/merge``… at a
  line's start: :mod:`fleet.markdown.gitlab_raw`): a ``/`` starting a line of prose is
  escaped (``\\/close``, which shows as ``/close``), a line break inside a code span is
  a space (which a code span shows anyway), and a code block the quick actions' reader
  does not skip (a ``~~~`` or a longer fence) holding one is written anew
  (:mod:`fleet.markdown.blocks`); a line ``>>>`` (GitLab's quote, which left open
  swallows what follows) is escaped too;
* breaks each closing statement naming another issue in code (```` `Fixes #9` ````, which
  GitLab would act on): the spaces after its keyword become no-break spaces, which read
  the same;
* closes a code block left open at the end, which would swallow what follows.

Then it checks its work: with markdown-it (:func:`fleet.markdown.live_markdown.safe`),
and with the forges' own renderers (:func:`fleet.markdown.inert.inert`: cmark-gfm, which
GitHub renders with and which reads some corners otherwise, such as a run of backticks left
open earlier in a paragraph; comrak, GitLab's): no HTML and no image left, no mention or
reference left outside code, no link to an issue, no quick action, no closing statement,
and a ``<details>`` after it still starts a block of its own. Where any fails (markdown
only a parser could untangle: backticks in a link's title, a stray double backtick), the
whole text is posted as one code block instead — its fence longer than any run of
backticks in it, or its lines indented where a longer fence holds a quick action — which
nothing can leave.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, NamedTuple

from markdown_it.common.utils import normalizeReference, unescapeAll

from fleet.markdown.blocks import as_code, code_lines, fenced
from fleet.markdown.gitlab_raw import unclosed
from fleet.markdown.glfm import KINDS
from fleet.markdown.hidden import cap, unseen_free
from fleet.markdown.inert import inert
from fleet.markdown.live_markdown import PARSER, TRAILING, mentions, references, safe, to_issue
from fleet.redaction.guard import guarded

__all__ = ["BODY_LIMIT", "CELL_CAP", "POST_CAP", "as_code", "defuse", "escape_cell", "fenced"]
# fenced and as_code (fleet.markdown.blocks) are given from here too, with the rest.

BODY_LIMIT: Final = 65_536
"""Characters of one comment or description a forge takes (GitHub's limit)."""
POST_CAP: Final = 45_000
"""Characters of an agent's text in one post: room is left for the footer (at most
:data:`fleet.forge.posts.footer.FOOTER_CAP`) within :data:`BODY_LIMIT`."""
CELL_CAP: Final = 200
"""Characters of one value on a line of ours, unless its caller says otherwise."""
_WORD: Final = re.compile(r"\S+")
_RISKY: Final = re.compile(
    r"@|(?:[#!&]|G[HL]-)[0-9]|://|www\.|%\"|%[^\s\"<]*\w|\*iteration:|[\w.-]/[\w.-]*>"
    r"|\[(?:" + "|".join(KINDS) + "):",
    re.IGNORECASE,
)
"""In a value of ours, what puts its word in code: a mention, a reference (GitLab's too:
``x#5``, ``&5``, ``%v1``, ``[vulnerability:5]``, ``group/project>``; its ``~label`` and
``$5`` are escaped, ``\\~``, ``\\$``, which GitLab reads as text), an address."""
_BEFORE: Final = "(\"'"  # punctuation before a mention or a reference, kept out of code
_AFTER: Final = TRAILING + ")\"'"  # and after one
_SLASH_START: Final = re.compile(r"(\n[ \t]*)/")
_QUOTE_FENCE: Final = re.compile(r"(\n {0,3})(>>>[ \t]*)(?=\n|\Z)")  # opens GitLab's quote
_BRACKET: Final = re.compile(
    r"\[(?P<text>(?:[^\[\]\\`]|\\.){0,999})\]"
    r"(?:\(\s*(?:<(?P<angled>(?:[^<>\n\\]|\\.)*)>|(?P<dest>(?:[^\s()<>\\]|\\.)*))"
    r"(?:\s+(?:\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\((?:[^()\\]|\\.)*\)))?\s*\)"
    r"|\[(?P<label>(?:[^\[\]\\]|\\.){0,999})\])?"
)
_OPENING: Final = re.compile(r"\[")
_BANG: Final = re.compile(r"(?<!\\)((?:\\\\)*)!\[")
_CARET: Final = re.compile(r"(?<!\\)((?:\\\\)*)\[\^")
_RUN: Final = re.compile(r"`+")
_BLANK: Final = re.compile(r"[ \t]*")
_CELL_ESCAPES: Final = {c: "\\" + c for c in "\\`*_~[]|$"} | {
    "<": "&lt;",
    ">": "&gt;",
    "&": "&amp;",
}


_Span = tuple[int, int, str | bool]  # where, and what shows instead or whether a reference


class _Scope(NamedTuple):
    own: frozenset[int]  # the issue and pull request numbers the text may name
    pulls: frozenset[int] | None  # a GitLab run's merge request's (None: own's namespace)
    links: Mapping[str, str]  # the text's link definitions: address by normalised label


def defuse(
    text: str,
    limit: int = POST_CAP,
    *,
    own: Sequence[int] = (),
    own_pulls: Sequence[int] | None = None,
) -> str:
    """``text`` (an agent's markdown) fit to post on a forge, at most ``limit`` characters,
    references to the issues and pull requests ``own`` (and a GitLab run's merge requests
    ``own_pulls``: :mod:`fleet.markdown.inert`) left live (the module says how;
    escaping lengthens it, so a long text is cut shorter)."""
    seen = unseen_free(text).strip("\n")
    mine = frozenset(own)
    pulls = None if own_pulls is None else frozenset(own_pulls)
    room = limit
    for _ in range(4):
        short = cap(seen, room)
        out = _defused(short, mine, pulls)
        if not (safe(out, mine, pulls) and inert(out, mine, own_pulls=pulls)):
            out = as_code(short, mine)
        if len(out) <= limit:
            return out
        room = max(room * limit // len(out) - 64, 0)
    return as_code(cap(seen, limit // 3 - 64), mine)


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
    """``line`` with each word that holds an ``@``, an issue reference or a web address in
    a code span (a value of ours pings no one and links nothing: an address of another
    issue would be a reference too), the rest escaped; a ``/`` it starts with escaped too,
    should a line of ours start with it (GitLab would run ``/close`` as a command)."""
    out: list[str] = []
    at = 0
    for word in _WORD.finditer(line):
        if _RISKY.search(word[0]):  # its pieces between "<"s: no "<" even in code
            pieces = [
                _coded(p) if _RISKY.search(p) else _escape_plain(p) for p in word[0].split("<")
            ]
            out += [_escape_plain(line[at : word.start()]), "&lt;".join(pieces)]
            at = word.end()
    out.append(_escape_plain(line[at:]))
    return _SLASH_START.sub(r"\1\\/", "\n" + "".join(out), count=1)[1:]


def _coded(piece: str) -> str:
    """A risky ``piece`` of a word in a code span, the punctuation around it outside
    (``(`@ann`),`` rather than a span holding the comma); what is left in the span
    is still risky, or the whole piece goes in it."""
    core = piece.lstrip(_BEFORE).rstrip(_AFTER)
    if not core or not _RISKY.search(core):
        return _code(piece)
    start = piece.index(core)
    head, tail = piece[:start], piece[start + len(core) :]
    return f"{_escape_plain(head)}{_code(core)}{_escape_plain(tail)}"


def _escape_plain(text: str) -> str:
    return "".join(_CELL_ESCAPES.get(c, c) for c in text)


def _defused(text: str, own: frozenset[int], pulls: frozenset[int] | None = None) -> str:
    """``text`` with mentions, references and images made inert and ``<``, ``&`` escaped
    outside code, a diagram block shown as code, a code block left open at the end
    closed, no line GitLab would run as a quick action and no closing statement but the
    run's own (:func:`defuse` says how)."""
    lines = text.split("\n")
    env: dict[str, Any] = {}
    blocks = code_lines(lines, PARSER.parse(text, env))
    links = {label: str(found["href"]) for label, found in env.get("references", {}).items()}
    scope = _Scope(own, pulls, links)
    out: list[str] = []
    prose: list[str] = []
    for index, line in enumerate(lines):
        if index in blocks.code or _BLANK.fullmatch(line):
            if prose:
                out.append(_inline("\n".join(prose), scope))
                prose = []
            if index in blocks.instead:
                out.append(blocks.instead[index])
            elif index not in blocks.dropped:
                out.append(line)
        else:
            prose.append(line)
    if prose:
        out.append(_inline("\n".join(prose), scope))
    return unclosed("\n".join(out) + blocks.tail, own)


def _inline(text: str, scope: _Scope) -> str:
    """One paragraph's lines with code spans kept as written; elsewhere made inert by
    :func:`_prose` (CommonMark's code span: a run of backticks up to the next run of the
    same length; a backslash escapes a backtick outside one)."""
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
        out.append(_prose(text[plain_from:at], scope, plain_from == 0))
        out.append(text[at:closing].replace("\n", " "))  # a code span shows a space: one line
        at = plain_from = closing
    out.append(_prose(text[plain_from:], scope, plain_from == 0))
    return "".join(out)


def _closing_run(text: str, start: int, length: int) -> int | None:
    """Where the code span opened by ``length`` backticks before ``start`` ends (after
    its closing run), if it does."""
    for run in _RUN.finditer(text, start):
        if len(run.group(0)) == length:
            return run.end()
    return None


def _prose(text: str, scope: _Scope, line_start: bool = False) -> str:
    """Text outside code: images and links to an issue made text, mentions and references
    in code spans (a backslash before one would only be eaten, and leave it live);
    elsewhere ``&``, ``<`` and ``![`` escaped, and a ``/`` starting a line (``text`` starts
    one: ``line_start``)."""
    words: list[_Span] = [
        (_unescaped_from(text, start), end, False) for start, end in mentions(text)
    ]
    found = references(text, scope.own, scope.pulls, written=True)
    words += [(_unescaped_from(text, s), e, True) for s, e in found]
    chosen: list[_Span] = []
    for start, end, what in sorted([*_brackets(text, scope), *words], key=_earliest):
        joined = chosen and not isinstance(what, str) and not isinstance(chosen[-1][2], str)
        if joined and start <= chosen[-1][1]:
            first, last, was = chosen[-1]  # mentions and references meet: one span
            chosen[-1] = (first, max(last, end), bool(was) or what)
        elif not chosen or start >= chosen[-1][1]:
            chosen.append((start, end, what))
    out: list[str] = ["\n" if line_start else ""]
    at = 0
    for start, end, what in chosen:
        out.append(_unmath(_plain(text[at:start]), out[-1]))
        out.append(what if isinstance(what, str) else _code(unescapeAll(text[start:end])))
        if out[-1].startswith("`") and out[-2].endswith("$") and not out[-2].endswith("\\$"):
            out[-2] = out[-2][:-1] + "\\$"
        at = end
    out.append(_unmath(_plain(text[at:]), out[-1]))
    shown = _SLASH_START.sub(r"\1\\/", "".join(out))
    return _QUOTE_FENCE.sub(r"\1\\\2", shown)[1 if line_start else 0 :]


def _unmath(plain: str, before: str) -> str:
    """``plain`` with a ``$`` it starts with escaped after a code span: ```` `…`$ ```` would
    end GitLab's math (``$`…`$``), which shows no code span."""
    return "\\" + plain if plain.startswith("$") and before.endswith("`") else plain


def _earliest(span: _Span) -> tuple[int, int]:
    return span[0], -span[1]


def _brackets(text: str, scope: _Scope) -> Iterator[_Span]:
    """The images in ``text`` made text naming their address, and the links to an
    issue made their text and address: (start, end, what shows instead)."""
    for opening in _OPENING.finditer(text):
        at = opening.start()
        found = None if _unescaped_from(text, at) < at else _BRACKET.match(text, at)
        target = None if found is None else _target(found, scope.links)
        if found is None or target is None:
            continue
        label = found.group("text")
        if at > 0 and text[at - 1] == "!" and _unescaped_from(text, at - 1) == at - 1:
            words = _prose(label, scope).strip()
            shown = f"image: {_code(target)}" if target.strip() else "image"
            yield at - 1, found.end(), f"{words} ({shown})" if words else shown
        elif to_issue(target) and not _defines(text, found):
            words = _prose(label, scope).strip()
            same = not words or unescapeAll(label).strip() == target
            yield at, found.end(), _code(target) if same else f"{words} ({_code(target)})"


def _defines(text: str, found: re.Match[str]) -> bool:
    """Whether ``found`` (a ``[label]``) opens a link's definition, ``[label]: address``,
    which shows nothing."""
    alone = all(found.group(part) is None for part in ("angled", "dest", "label"))
    return alone and text.startswith(":", found.end())


def _target(found: re.Match[str], links: Mapping[str, str]) -> str | None:
    """The address a ``[…](…)``, ``[…][…]`` or ``[…]`` links to, if it links."""
    for inline in (found.group("angled"), found.group("dest")):
        if inline is not None:
            return unescapeAll(inline)
    return links.get(normalizeReference(found.group("label") or found.group("text")))


def _unescaped_from(text: str, at: int) -> int:
    """Where what starts at ``at`` starts with the backslash escaping it, if one does."""
    before = at
    while before > 0 and text[before - 1] == "\\":
        before -= 1
    return at - 1 if (at - before) % 2 else at


def _code(text: str) -> str:
    """``text`` as a code span no backtick in it can close, on one line (a code span shows
    a line break as a space: no line of it starts with what GitLab could run)."""
    text = text.replace("\n", " ")
    longest = max((len(run) for run in _RUN.findall(text)), default=0)
    pad = " " if text[:1] == "`" or text[-1:] == "`" else ""
    fence = "`" * (longest + 1)
    return f"{fence}{pad}{text}{pad}{fence}"


def _plain(text: str) -> str:
    """Prose escaped: no image, no entity, no HTML, and no footnote (a forge lists a
    footnote after everything, Fleetwarden's footer too)."""
    text = _BANG.sub(r"\1\\![", text)
    text = _CARET.sub(r"\1\\[^", text)
    return text.replace("&", "&amp;").replace("<", "&lt;")
