"""Bot markdown as Slack's mrkdwn, and cut into the parts a Slack message holds.

Slack reads ``*bold*``, ``_italic_``, ``~strike~``, `` `code` ``, fenced blocks, ``> quotes``
and ``<url|label>`` links, and nothing else (no headings, lists or tables): headings become
bold lines, list items start with ``•`` or their number, a table becomes aligned columns in
a code block. Every ``&``, ``<`` and ``>`` of the text itself is escaped (``&amp;``,
``&lt;``, ``&gt;``) — in code too — so no ``<!channel>``, ``<!here>``, ``<@U…>`` or
``<!subteam^…>`` written by an agent is ever a mention, and no text makes a link of its
own: the only ``<…>`` in the output are the links the markdown holds (http(s) and mailto
only) and, added by the connector, the mentions a message means (:func:`mention`).

:func:`parts` cuts the rendered text into pieces of at most :data:`PART_LIMIT` characters
with :func:`connectors.markdown_split.split_markdown`, which closes a code block at a cut
and reopens it in the next piece. Nothing here performs I/O.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Sequence
from typing import Final

import disarm
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from connectors.markdown import list_items, to_plain
from connectors.markdown_split import split_markdown

PART_LIMIT: Final = 3000
"""The most characters one message holds: Slack's limit on a section block's text (each
message is one section, its ``text`` the same), so a message always shows whole."""

_PARSE = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_LINKABLE: Final = re.compile(r"(https?://|mailto:)[^\s<>|]+", re.IGNORECASE)
_ADDRESS_LIKE: Final = re.compile(
    r"(?i)(?:[a-z][a-z0-9+.-]*:|www\.|\b[a-z0-9-]+(?:\.[a-z0-9-]+)+\b)"
)
"""A link label that names an address itself (a URL, a scheme, a domain): not hidden."""
_ONE_DOT: Final = re.compile(r"FULL STOP|\bDOT\b|\bHYPHENATION POINT\b")
_MORE_THAN_A_DOT: Final = re.compile(r"\b(?:TWO|THREE|FOUR|FIVE|DOUBLE|TRIPLE|DOTS|WITH|WITHIN)\b")
_NOT_ROUND: Final = re.compile(r"\b(?:TILDE|SESAME|CIRCLE|RING)\b")
_BACKTICK_RUN: Final = re.compile(r"(?<=``)(?=`)")
_MENTION_ID: Final = re.compile(r"[UW][A-Z0-9]{2,20}")


def escape(text: str) -> str:
    """``text`` with Slack's three control characters escaped: shown as written, never
    read as a mention, a link or a channel-wide ping."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user: str) -> str | None:
    """A mention that notifies ``user`` (``<@U…>``), or ``None`` when it is no user id."""
    return f"<@{user}>" if _MENTION_ID.fullmatch(user) else None


def to_mrkdwn(markdown: str) -> str:
    """``markdown`` as Slack mrkdwn, with all text escaped."""
    root = SyntaxTreeNode(_PARSE.parse(markdown))
    lines = markdown.split("\n")
    return _blocks(root.children, lines, tight=False).strip("\n")


def parts(markdown: str, limit: int = PART_LIMIT) -> list[str]:
    """``markdown`` as mrkdwn pieces of at most ``limit`` characters, code blocks balanced
    across them; none for blank text."""
    return split_markdown(to_mrkdwn(markdown), limit)


def _blocks(nodes: Sequence[SyntaxTreeNode], lines: list[str], *, tight: bool) -> str:
    rendered = [_block(node, lines) for node in nodes]
    return ("\n" if tight else "\n\n").join(text for text in rendered if text)


def _block(node: SyntaxTreeNode, lines: list[str]) -> str:
    kind = node.type
    if kind == "paragraph":
        return "".join(_inline(child) for child in node.children)
    if kind == "heading":
        text = "".join(_inline(child) for child in node.children).strip()
        return f"*{text}*" if text else ""
    if kind in ("fence", "code_block"):
        return _code(node.content.rstrip("\n"))
    if kind in ("bullet_list", "ordered_list"):
        return _list(node, lines)
    if kind == "blockquote":
        inner = _blocks(node.children, lines, tight=False)
        return "\n".join(f"> {line}" if line else ">" for line in inner.split("\n"))
    if kind == "table" and node.map is not None:
        start, end = node.map
        return _code(to_plain("\n".join(lines[start:end])))
    if kind == "hr":
        return "───"
    if kind == "inline":
        return _inline(node)
    if node.children:
        return _blocks(node.children, lines, tight=False)
    return escape(node.content)


def _code(content: str) -> str:
    """A code block Slack cannot end early: no three backticks in a row inside it."""
    return "```\n" + _BACKTICK_RUN.sub("\u200b", escape(content)) + "\n```"


def _list(node: SyntaxTreeNode, lines: list[str]) -> str:
    return list_items(
        node, lambda item, tight, _: _blocks(item.children, lines, tight=tight), "• ", indent=4
    )


def _inline(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind in ("softbreak", "hardbreak"):
        return "\n"
    if kind == "text":
        return escape(node.content)
    if kind == "code_inline":
        return "`" + escape(node.content).replace("`", "'") + "`" if node.content.strip() else ""
    if kind in ("strong", "em", "s"):
        inner = "".join(_inline(child) for child in node.children)
        mark = {"strong": "*", "em": "_", "s": "~"}[kind]
        return f"{mark}{inner}{mark}" if inner.strip() else inner
    if kind == "link":
        label = "".join(_inline(child) for child in node.children)
        if node.markup == "autolink":  # <…> in the text: shown as written (Slack links URLs)
            return f"&lt;{label}&gt;"
        return _link(str(node.attrs.get("href", "")), label)
    if kind == "image":
        alt = "".join(_inline(child) for child in node.children)
        return _link(str(node.attrs.get("src", "")), alt)
    if node.children:
        return "".join(_inline(child) for child in node.children)
    return escape(node.content)


def _link(href: str, label: str) -> str:
    """A Slack link for an http(s) or mailto ``href``; anything else is shown as text."""
    if not _LINKABLE.fullmatch(href):
        return f"{label} ({escape(href)})" if href and label else label or escape(href)
    url = href.replace("&", "&amp;")
    if not label or label == escape(href):
        return f"<{url}>"
    if reads_as_address(label):  # a label that reads as another address: show both
        return f"{label} (<{url}>)"
    return f"<{url}|{label.replace('|', '¦')}>"


def reads_as_address(label: str) -> bool:
    """Whether ``label`` names an address, as written or as it looks: compared by its
    TR39 skeleton (``gіthub.com`` with a Cyrillic ``і``, full-width letters, a one dot
    leader or a middle dot for a dot, a zero-width space inside all read as
    ``github.com``)."""
    if _ADDRESS_LIKE.search(label):
        return True
    looks = disarm.skeleton_key(label.translate(_dots()))
    return _ADDRESS_LIKE.search(looks) is not None


@functools.cache
def _dots() -> dict[int, str]:
    """Every punctuation mark a reader takes for a dot, as a dot: the full stops of every
    script (IDNA reads the ideographic ones as a domain's dot, RFC 3490 3.1), middle dots,
    the one dot leader, the hyphenation point — read from the Unicode data, since no
    confusables fold makes most of them a dot. Marks of several dots or a dot with more
    drawn around it are left as they are."""
    return {
        code: "."
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) == "Po"
        and _ONE_DOT.search(name := unicodedata.name(chr(code), ""))
        and not _MORE_THAN_A_DOT.search(name)
        and not _NOT_ROUND.search(name)
    }
