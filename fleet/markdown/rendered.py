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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from html.parser import HTMLParser
from typing import Final

import cmarkgfm
from cmarkgfm.cmark import Options

_OPTIONS: Final = Options.CMARK_OPT_UNSAFE | Options.CMARK_OPT_FOOTNOTES
"""Raw HTML kept in the output (so any of it is seen), footnotes read as GitHub reads them."""
PROBE: Final = "<details>"
_PLAIN: Final = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre",
        "code", "em", "strong", "del", "a", "hr", "br", "table", "thead", "tbody", "tr",
        "th", "td", "input", "sup", "section", "span", "div", "dl", "dt", "dd",
    }
)  # fmt: skip
"""The elements the renderer itself makes of markdown; any other came from raw HTML."""
_QUIET: Final = frozenset({"code", "pre", "a"})
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
    probed = render(f"{markdown}\n\n{PROBE}").rstrip()
    if not probed.endswith(PROBE):  # swallowed by a code block, a list, a quote left open
        return False
    before = _read(probed[: -len(PROBE)], own)
    return (
        before is not None
        and not before.live
        and not before.stack
        and _quiet(render(markdown), own)
    )


def _quiet(html: str, own: Collection[int]) -> bool:
    read = _read(html, own)
    return read is not None and not read.live


def _read(html: str, own: Collection[int]) -> _Reader | None:
    reader = _Reader(frozenset(own))
    try:
        reader.feed(html)
        reader.close()
    except (AssertionError, ValueError):
        return None
    return reader


class _Reader(HTMLParser):
    """Reads rendered HTML as the forges' filters do; ``live`` says what it found."""

    def __init__(self, own: frozenset[int]) -> None:
        super().__init__(convert_charrefs=True)
        self.own = own
        self.quiet = 0
        self.stack: list[str] = []
        self.live: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _PLAIN:
            self.live.append(f"<{tag}>")
            return
        values = dict(attrs)
        href = values.get("href") or ""
        if tag == "a" and _ISSUE_PATH.search(href):
            self.live.append(f"a link to an issue ({href[:80]})")
        if tag == "input" and values.get("type") != "checkbox":
            self.live.append("<input>")
        if tag in ("br", "hr", "input"):
            return
        self.stack.append(tag)
        if tag in _QUIET:
            self.quiet += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _PLAIN or tag not in ("br", "hr", "input"):
            self.live.append(f"<{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("br", "hr", "input"):
            return
        if not self.stack or self.stack[-1] != tag:
            self.live.append(f"</{tag}>")
            return
        self.stack.pop()
        if tag in _QUIET:
            self.quiet -= 1

    def handle_comment(self, data: str) -> None:
        self.live.append("<!-- -->")

    def handle_decl(self, decl: str) -> None:
        self.live.append("<!…>")

    def handle_pi(self, data: str) -> None:
        self.live.append("<?…>")

    def unknown_decl(self, data: str) -> None:
        self.live.append("<![…]>")

    def handle_data(self, data: str) -> None:
        if self.quiet:
            return
        if _MENTION.search(data):
            self.live.append("a mention")
        for found in _REFERENCE.finditer(data):
            number = int(found["slug_n"] or found["n"])
            if found["slug_n"] is not None or number not in self.own:
                self.live.append(f"a reference ({found[0][:40]})")
