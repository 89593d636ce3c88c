"""Reply fallbacks: the quote a client puts above a reply, and the text written after it.

A reply (``m.relates_to.m.in_reply_to``) from Element carries the message it answers twice:
in ``body`` as leading lines starting with ``>`` (the first ``> <@user:hs> …``) and a blank
line, and in ``formatted_body`` as a leading ``<mx-reply>…</mx-reply>`` block. Newer
clients send no fallback at all; their body is taken as it is. The text after the fallback
is what the person wrote, and the only part a command is parsed from or an agent is sent.

Every function here scans its input once, left to right, with :meth:`str.find` and
:meth:`str.startswith` — no regular expression, no recursion — so a quote nested a thousand
levels deep, or megabytes of it, costs time in proportion to its length.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from connectors.matrix.messages.payloads import JsonDict

_OPEN, _CLOSE = "<mx-reply>", "</mx-reply>"
_HTML = "org.matrix.custom.html"
_BREAKS = frozenset({"br", "p", "div", "li", "pre", "blockquote", "tr", "h1", "h2", "h3"})


def is_reply(content: JsonDict) -> bool:
    """Whether the event is a reply (``m.in_reply_to``) rather than a thread's own fallback
    relation (``is_falling_back``: a plain message in a thread, with nothing quoted)."""
    relates_to = content.get("m.relates_to")
    if not isinstance(relates_to, dict) or not isinstance(relates_to.get("m.in_reply_to"), dict):
        return False
    return not (relates_to.get("rel_type") == "m.thread" and relates_to.get("is_falling_back"))


def strip_body_fallback(body: str) -> tuple[str, bool] | None:
    """``body`` after its leading quote lines; ``None`` when it starts with no quote.

    The flag says whether the quote ended as a fallback does, with a blank line; when it
    is false the split between quote and reply is a guess (the first line not quoted).
    """
    if not body.startswith(">"):
        return None
    position = 0
    while position < len(body) and body.startswith(">", position):
        end = body.find("\n", position)
        if end == -1:
            return "", True  # nothing but quote
        position = end + 1
    end = body.find("\n", position)
    line = body[position:] if end == -1 else body[position:end]
    if line.strip():
        return body[position:], False
    return ("" if end == -1 else body[end + 1 :]), True


def strip_mx_reply(html: str) -> str | None:
    """``html`` after its leading ``<mx-reply>`` block (nested ones included); ``None``
    when it starts with none, or the block never closes."""
    start = len(html) - len(html.lstrip())
    if not html.startswith(_OPEN, start):
        return None
    # Each find starts past the tag it last found: one pass, however deep the nesting.
    depth = 0
    opening, closing = html.find(_OPEN, start), html.find(_CLOSE, start)
    while closing != -1:
        if opening != -1 and opening < closing:
            depth += 1
            opening = html.find(_OPEN, opening + len(_OPEN))
            continue
        depth -= 1
        end = closing + len(_CLOSE)
        if depth == 0:
            return html[end:]
        closing = html.find(_CLOSE, end)
    return None


class _Text(HTMLParser):
    """The text of an HTML fragment: tags dropped, entities decoded, line breaks kept."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_text(html: str) -> str:
    """The plain text of an HTML fragment."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts).strip()


def html_after_fallback(content: JsonDict) -> str | None:
    """The text of ``formatted_body`` after its ``<mx-reply>`` block, if it has one."""
    html = content.get("formatted_body")
    if content.get("format") != _HTML or not isinstance(html, str):
        return None
    rest = strip_mx_reply(html)
    return None if rest is None else html_text(rest)


def after_fallback(content: JsonDict, *, reply: bool) -> str:
    """What the person wrote: ``content``'s body without the reply fallback, if ``reply``.

    ``body`` decides when its quote ends with the blank line a fallback has. When it does
    not (a client that quotes without one), the text after ``formatted_body``'s
    ``<mx-reply>`` is taken where there is one, else the body from its first line not
    quoted. A reply without a fallback is its body, unchanged.
    """
    body = content.get("body")
    if not isinstance(body, str):
        return ""
    if not reply:
        return body
    stripped = strip_body_fallback(body)
    if stripped is None:
        return body
    text, clean = stripped
    if clean:
        return text
    from_html = html_after_fallback(content)
    return text if from_html is None else from_html


def looks_like_fallback(body: str) -> bool:
    """Whether ``body`` opens as Element's fallback does (``> <@user:hs> …``): a replacement
    (``m.new_content``) carries no reply relation, but some clients quote in it anyway."""
    return body.startswith("> <@")
