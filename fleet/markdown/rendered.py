"""What GitHub's and Gitea's own renderers make of a body Fleetwarden is about to post: the
check :func:`fleet.markdown.defuse.defuse` holds its work to, on top of markdown-it's
reading, beside GitLab's (:mod:`fleet.markdown.gitlab_rendered`; both:
:func:`fleet.markdown.inert.inert`).

GitHub renders with cmark-gfm, its fork of cmark (bound by ``cmarkgfm``, the GFM
extensions on: tables, autolinks, strikethrough, task lists, footnotes); Gitea and Forgejo
with goldmark, a CommonMark parser of the same rules. The two read some corners otherwise
than markdown-it does (a run of backticks left open earlier in a paragraph changes which
spans are code), so the body is rendered by the forge's own rules and the HTML read as the
forge's later filters read it: mentions, issue references and closing keywords are applied
to the text outside ``code``, ``pre`` and links. :func:`gfm_inert` says whether that HTML
holds nothing but the renderer's own plain elements — no raw HTML (no ``<img>``, no
``<details>``), no image, no mention, no reference to an issue but ``own``, no link to an
issue — and leaves a ``<details>`` that follows the body a block of its own.

What both forges' checks share lives here too, and GitLab's builds on it:
:class:`HtmlReader`, the reading of a renderer's HTML (its plain elements, raw HTML, the
quiet spans, the open elements), and :func:`inert_as_rendered`, the probe that a
``<details>`` after the body stays a block of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from html.parser import HTMLParser
from typing import Final, TypeVar

import cmarkgfm
from cmarkgfm.cmark import Options

_OPTIONS: Final = Options.CMARK_OPT_UNSAFE | Options.CMARK_OPT_FOOTNOTES
"""Raw HTML kept in the output (so any of it is seen), footnotes read as GitHub reads them."""
PROBE: Final = "<details>"
PLAIN: Final = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre",
        "code", "em", "strong", "del", "a", "hr", "br", "table", "thead", "tbody", "tr",
        "th", "td", "input", "sup", "section", "span", "div", "dl", "dt", "dd",
    }
)  # fmt: skip
"""The elements the renderers (cmark-gfm, goldmark, comrak) make of markdown; any other
came from raw HTML."""
VOID: Final = frozenset({"br", "hr", "input"})
QUIET: Final = frozenset({"code", "pre", "a"})
"""Elements whose text the forges' filters leave alone (no mention, no reference)."""
_MENTION: Final = re.compile(r"(?<![A-Za-z0-9_])@[A-Za-z0-9_]", re.ASCII)  # as GitHub: (^|\W)@
_REFERENCE: Final = re.compile(
    r"(?:(?<![\w.-])[\w.-]+/[\w.-]+[#!](?P<slug_n>[0-9]+)"
    r"|(?<![A-Za-z0-9&])(?:[#!]|GH-)(?P<n>[0-9]+))(?![A-Za-z0-9_])",
    re.ASCII | re.IGNORECASE,
)
_ISSUE_PATH: Final = re.compile(r"/(?:issues|pulls?)/[0-9]+(?![0-9])", re.IGNORECASE)


def github_html(markdown: str) -> str:
    """``markdown`` as GitHub's cmark-gfm renders it, raw HTML kept."""
    return str(cmarkgfm.github_flavored_markdown_to_html(markdown, options=_OPTIONS))


def gfm_inert(
    markdown: str, own: Collection[int] = (), render: Callable[[str], str] = github_html
) -> bool:
    """Whether ``markdown``, rendered by the forge's rules (``render``: markdown → HTML,
    GitHub's by default), holds nothing live but references to ``own``, and leaves a
    ``<details>`` after it a block of its own."""
    mine = frozenset(own)
    return inert_as_rendered(markdown, render, lambda html: read_html(_Reader(mine), html))


def inert_as_rendered(
    markdown: str, render: Callable[[str], str], read: Callable[[str], HtmlReader | None]
) -> bool:
    """Whether ``markdown`` as ``render`` makes it, and as ``read`` reads the HTML, holds
    nothing live, and leaves a ``<details>`` after it a block of its own (a code block, a
    list or a quote left open would swallow it)."""
    probed = render(f"{markdown}\n\n{PROBE}").rstrip()
    if not probed.endswith(PROBE):
        return False
    before = read(probed[: -len(PROBE)])
    if before is None or before.live or before.stack:
        return False
    whole = read(render(markdown))
    return whole is not None and not whole.live


R = TypeVar("R", bound="HtmlReader")


def read_html(reader: R, html: str) -> R | None:
    """``reader`` having read ``html``; None for HTML it could not read."""
    try:
        reader.feed(html)
        reader.close()
    except (AssertionError, ValueError):
        return None
    return reader


class HtmlReader(HTMLParser):
    """Reads a renderer's HTML as a forge's later filters do, into ``live``: what it
    found live (raw HTML, a link :meth:`link` calls live, an input other than a task's
    checkbox, a tag closed out of turn), with ``stack`` the elements still open. The text
    is the subclass's to read (``quiet`` inside ``code``, ``pre`` and links);
    :meth:`boundary` is told where a text node ends."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.quiet = 0
        self.stack: list[str] = []
        self.live: list[str] = []

    def link(self, href: str) -> str | None:
        """What a link to ``href`` is, when it is live."""
        return None

    def boundary(self) -> None:
        """A text node ends here."""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.boundary()
        if tag not in PLAIN:
            self.live.append(f"<{tag}>")
            return
        values = dict(attrs)
        href = values.get("href") or ""
        said = self.link(href) if tag == "a" else None
        if said is not None:
            self.live.append(f"{said} ({href[:80]})")
        if tag == "input" and values.get("type") != "checkbox":
            self.live.append("<input>")
        if tag in VOID:
            return
        self.stack.append(tag)
        if tag in QUIET:
            self.quiet += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.boundary()
        if tag not in VOID:
            self.live.append(f"<{tag}/>")
        elif tag == "input" and dict(attrs).get("type") != "checkbox":
            self.live.append("<input>")

    def handle_endtag(self, tag: str) -> None:
        self.boundary()
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.live.append(f"</{tag}>")
            return
        self.stack.pop()
        if tag in QUIET:
            self.quiet -= 1

    def handle_comment(self, data: str) -> None:
        self.live.append("<!-- -->")

    def handle_decl(self, decl: str) -> None:
        self.live.append("<!…>")

    def handle_pi(self, data: str) -> None:
        self.live.append("<?…>")

    def unknown_decl(self, data: str) -> None:
        self.live.append("<![…]>")


class _Reader(HtmlReader):
    """Reads cmark-gfm's (or goldmark's) HTML as GitHub's and Gitea's filters do."""

    def __init__(self, own: frozenset[int]) -> None:
        super().__init__()
        self.own = own

    def link(self, href: str) -> str | None:
        return "a link to an issue" if _ISSUE_PATH.search(href) else None

    def handle_data(self, data: str) -> None:
        if self.quiet:
            return
        if _MENTION.search(data):
            self.live.append("a mention")
        for found in _REFERENCE.finditer(data):
            number = int(found["slug_n"] or found["n"])
            if found["slug_n"] is not None or number not in self.own:
                self.live.append(f"a reference ({found[0][:40]})")
