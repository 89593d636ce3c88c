"""What in markdown is live once a forge shows it: a mention that notifies (``@login``,
``@org/team``, GitLab's ``@group/sub`` and ``@all``, or an ``@`` a renderer may read as
one), a reference to an issue or a pull request (``#N``, ``!N``, ``GH-N``,
``owner/repo#N``, an issue's web address) and GitLab's other references (``~label``,
``%milestone``, ``$N``, ``&N``, ``x#N``…: :mod:`fleet.markdown.glfm`), a link to an
issue, an image the forge fetches, raw HTML. :func:`mentions` and :func:`references` find
them in plain text, for :mod:`fleet.markdown.defuse` to put in code; :func:`safe` looks for
any left in its work as markdown-it reads it, the first of the checks a defused text must
pass (the others are the forges' own renderers', :mod:`fleet.markdown.inert`).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Collection, Mapping
from typing import Any, Final
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.token import Token

from fleet.markdown import glfm

# GitHub's logins: letters, digits, "-"; Gitea's also "_" and "." (not at the end); GitLab's
# may start with "." and name a subgroup, @group/sub/team.
_MENTION: Final = re.compile(
    r"(?<![A-Za-z0-9_])@[A-Za-z0-9_.](?:[\w.-]*[\w-])?(?:/[A-Za-z0-9_](?:[\w.-]*[\w-])?)*",
    re.ASCII,
)
# Issue references: owner/repo#N (or !N, Gitea's pull requests); #N, !N, GH-N, GL-N.
# (an address right after one is linked apart, "#1https://…": the reference ends there)
_NUMBERED: Final = re.compile(
    r"(?:(?<![\w.-])[\w.-]+/[\w.-]+[#!][0-9]+"
    r"|(?<![A-Za-z0-9])(?P<sign>[#!]|G[HL]\\?-)(?P<number>[0-9]+))"
    r"(?:(?![A-Za-z0-9])|(?=[A-Za-z]+://))",
    re.ASCII | re.IGNORECASE,
)
# A web address both forges link (GFM's extended autolink: a domain with a dot, where an
# autolink may start, up to a space or "<"), which holds no reference of its own ...
_AT_WORD: Final = re.compile(r"(?<![\w.+-])[\w.+-]+@[^\s`]*", re.ASCII)  # a word with an "@"
_EMAIL: Final = re.compile(r"[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}", re.ASCII)
_URL_WORD: Final = re.compile(
    r"(?<![^\s*_~(])(?:https?://|www\.)(?:[\w-]+\.)+[A-Za-z]{2,63}(?![\w-])"
    r"(?:[/?#][\w/.#?=&%~+:-]*)?",
    re.ASCII | re.IGNORECASE,
)
# ... and any address, which may be an issue's: put in code up to what ends it in prose,
# and looked for whole once the text is rendered.
_SCHEME: Final = r"(?<![A-Za-z])(?:[A-Za-z]+://|www\.)"
_URL_SPAN: Final = re.compile(_SCHEME + r"[^\s<>`()\[\]\"']*", re.ASCII | re.IGNORECASE)
_ANY_URL: Final = re.compile(_SCHEME + r"\S*", re.ASCII | re.IGNORECASE)
_ISSUE_PATH: Final = re.compile(
    r"/(?:issues|pulls?|merge_requests|work_items|epics|milestones|snippets|iterations"
    r"|vulnerabilities|alert_management|feature_flags)/[0-9]+(?![0-9])",
    re.IGNORECASE,
)  # GitHub's and Gitea's issues and pull requests, GitLab's objects that a link names
TRAILING: Final = ".,:;!?*_~"  # not part of a web address at its end (GFM's autolinks)
PARSER: Final = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
"""markdown-it as an agent's text is read here and in :mod:`fleet.markdown.defuse`: CommonMark
with tables and strikethrough, raw HTML kept so that any is seen."""
_PROBE: Final = "<details>"


def safe(markdown: str, own: Collection[int] = (), pulls: Collection[int] | None = None) -> bool:
    """Whether ``markdown`` holds no HTML, no image, no live mention, no live reference
    but to ``own`` (and ``pulls``: :func:`references`) and no link to an issue, and a
    ``<details>`` after it would start a block of its own (nothing left open swallows
    it)."""
    env: dict[str, Any] = {}
    tokens = PARSER.parse(f"{markdown}\n\n{_PROBE}", env)
    last = tokens[-1] if tokens else None
    if last is None or last.type != "html_block" or last.level != 0:
        return False
    if last.content.strip() != _PROBE:
        return False
    notes = [token for note in _footnotes(markdown, env) for token in PARSER.parse(note)]
    return not any(
        t.type == "html_block" or live_mentions(t) or live_references(t, own, pulls)
        for t in [*tokens[:-1], *notes]
    )


def live_mentions(token: Token) -> list[str]:
    """The mentions that notify in a block ``token``'s text (its inline children, outside
    code and raw HTML, which :func:`safe` refuses on its own), or raw HTML inline."""
    found: list[str] = []
    words = ""  # adjacent text children, read as one
    for child in [*(token.children or ()), None]:
        if child is not None and child.type == "text":
            words += child.content
            continue
        found.extend(words[start:end] for start, end in mentions(words))
        words = ""
        if child is not None and child.type == "html_inline":
            found.append(child.content)
    return found


def live_references(
    token: Token, own: Collection[int] = (), pulls: Collection[int] | None = None
) -> list[str]:
    """What in a block ``token``'s inline children would name an issue, or fetch: its
    images, its links to an issue, and the references in its text (outside code) but
    those to ``own`` and ``pulls``."""
    found: list[str] = []
    words = ""
    for child in [*(token.children or ()), None]:
        if child is not None and child.type == "text":
            words += child.content
            continue
        found.extend(words[start:end] for start, end in references(words, own, pulls))
        found.extend(u.group(0) for u in _ANY_URL.finditer(words) if to_issue(u.group(0)))
        words = ""
        if child is not None and child.type == "image":
            found.append(str(child.attrGet("src")))
        if child is not None and child.type == "link_open":
            href = str(child.attrGet("href") or "")
            found.extend([href] if to_issue(href) else [])
    return found


def mentions(text: str) -> list[tuple[int, int]]:
    """The ``@login`` (and ``@org/team``) in ``text`` that a forge may notify: all but
    those in an e-mail address — even in the path of a web address, which one renderer
    links and another does not (goldmark's address ends where cmark-gfm's goes on) — and
    each ``@`` of a word that is not one plain e-mail address, whose end the renderers
    also see differently (``a@b.c1.a@b``)."""
    found = {m.start(): m.end() for m in _MENTION.finditer(text)}
    for word in _AT_WORD.finditer(text):
        core = word[0].rstrip(TRAILING + "'\")]")
        if "@" in core and not _EMAIL.fullmatch(core):
            found.setdefault(word.start(), word.start() + len(core))
    return [(start, found[start]) for start in sorted(found)]


def references(
    text: str,
    own: Collection[int],
    pulls: Collection[int] | None = None,
    *,
    written: bool = False,
) -> list[tuple[int, int]]:
    """Where ``text`` names an issue or a pull request (but those of ``own``, and the merge
    requests of ``pulls``: GitLab numbers them apart; ``None``: one namespace, ``own``),
    or another of GitLab's objects: web addresses of one, ``owner/repo#N``, and ``#N``,
    ``!N``, ``GH-N`` and GitLab's forms (:mod:`fleet.markdown.glfm`) not in the path of a
    web address every renderer links (its fragment, say: the forge links it instead).
    ``written``: ``text`` is markdown as written (:func:`fleet.markdown.glfm.references`)."""
    mine = own if pulls is None else pulls
    found = [
        (url.start(), url.start() + len(url.group(0).rstrip(TRAILING)))
        for url in _URL_SPAN.finditer(text)
        if to_issue(url.group(0))
    ]
    urls = [url.span() for url in _URL_WORD.finditer(text)]
    starts = [start for start, _ in urls]
    for numbered in _NUMBERED.finditer(text):
        number, sign = numbered.group("number"), numbered.group("sign")
        ours = mine if sign == "!" else own
        if number is not None and len(number) < 19 and int(number) in ours:
            continue
        if _linked(urls, starts, numbered.start()) is None:
            found.append(numbered.span())
    for ref in glfm.references(text, own, pulls, written=written):
        if _linked(urls, starts, ref.sigil) is not None:
            continue  # in a web address every renderer links
        url = _linked(urls, starts, ref.start)  # the path before it may be an address's end
        found.append((ref.start if url is None else url[1], ref.end))
    return sorted(found)


def _linked(urls: list[tuple[int, int]], starts: list[int], at: int) -> tuple[int, int] | None:
    """The web address (of ``urls``, by their ``starts``) that holds position ``at``."""
    index = bisect_right(starts, at) - 1
    return urls[index] if index >= 0 and urls[index][1] > at else None


def to_issue(address: str) -> bool:
    """Whether ``address`` is an issue's or a pull request's (or another object's GitLab
    links: a merge request, an epic, a milestone, a snippet…), on any host, or one GitLab
    reference as a whole (``#5``, ``~bug``: GitLab makes a link to it a reference)."""
    unquoted = unquote(address)
    return _ISSUE_PATH.search(unquoted) is not None or glfm.names_one(unquoted)


def _footnotes(markdown: str, env: Mapping[str, Any]) -> list[str]:
    """The text of each ``[^label]: text``, which GitHub shows as a footnote and
    markdown-it reads as a link's definition, showing nothing of it."""
    lines = markdown.split("\n")
    notes = []
    for label, found in env.get("references", {}).items():
        if label.startswith("^") and found.get("map"):
            start, end = found["map"]
            notes.append("\n".join(lines[start:end]).split("]:", 1)[-1])
    return notes
