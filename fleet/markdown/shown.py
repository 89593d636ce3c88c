"""What a reader of an issue's page sees of its text, as the words an agent is given:
:func:`as_shown` renders the markdown by the forge's rules (cmark-gfm, GitHub's own
renderer, :mod:`fleet.markdown.rendered`) and reads the HTML back as text, keeping only what
the page shows.

:func:`fleet.markdown.hidden.clean` first takes out what hides in the markdown and its HTML;
what is left is rendered, so what the renderer itself never shows goes too:

* a footnote definition no reference uses, a table cell past its header's columns, a link
  reference definition (the renderer drops them);
* a link with no text: its address shows nowhere; a link's title and an image's alt text
  are tooltips and stand-ins, not the page: an image is ``[image]``;
* a diagram's source beyond what it draws: a ``mermaid`` block without its ``%%``
  comments, a ``geojson``, ``topojson`` or ``stl`` block as ``[a map]`` or ``[a 3D
  model]`` (their properties show only on a click);
* math that draws nothing: ``\\phantom{…}`` and its kin;
* elements the page hides (:func:`fleet.markdown.tags.hides`), comments.

The text keeps the page's shape as markdown would write it: headings, lists, quotes, code
blocks fenced, a link as ``text (address)``, a table's rows, task boxes, footnotes.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Final

from fleet.markdown.hidden import TEXT_CAP, clean
from fleet.markdown.rendered import github_html
from fleet.markdown.tags import VOID_TAGS, hides

DIAGRAMS: Final = {"geojson": "[a map]", "topojson": "[a map]", "stl": "[a 3D model]"}
_PHANTOM: Final = re.compile(
    r"\\(?:[hv]?phantom|smash)\s*\{"
    r"|\\(?:color|textcolor)\s*\{\s*(?:transparent|white|#f{3}(?:f{3})?)\s*\}\s*\{",
    re.IGNORECASE,
)
_MERMAID_COMMENT: Final = re.compile(
    r"^\s*(?:%%.*|acc(?:Title|Descr)\s*:.*|accDescr\s*\{[^}]*\})$\n?", re.MULTILINE
)  # comments, and the accessible title and description a drawing never shows
_BLOCKS: Final = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "table", "ul", "ol",
     "section", "div", "details", "summary", "hr", "dl"}
)  # fmt: skip
_LINES: Final = frozenset({"li", "tr", "dt", "dd"})  # each on a line of its own
_LANGUAGE: Final = re.compile(r"language-([\w+#.-]{1,20})")


def shown_text(text: str, limit: int = TEXT_CAP) -> str:
    """An issue's or a comment's ``text`` as its reader sees it, about ``limit``
    characters at most: cleaned, rendered, read back."""
    return as_shown(clean(text, limit))


def as_shown(markdown: str) -> str:
    """``markdown`` (already :func:`~fleet.markdown.hidden.clean`) as its reader sees it."""
    if not markdown.strip():
        return ""
    reader = _Shown()
    reader.feed(github_html(markdown))
    reader.close()
    return reader.text()


def unphantomed(math: str) -> str:
    """``math`` without the groups it draws as blank space (``\\phantom{…}``, nested
    braces counted)."""
    out: list[str] = []
    at = 0
    for found in _PHANTOM.finditer(math):
        if found.start() < at:
            continue
        depth, end = 1, found.end()
        while end < len(math) and depth:
            depth += {"{": 1, "}": -1}.get(math[end], 0)
            end += 1
        out.append(math[at : found.start()])
        at = end
    out.append(math[at:])
    return "".join(out)


class _Shown(HTMLParser):
    """Rendered HTML read back as the text its page shows."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden = 0  # depth inside an element the page hides
        self.hidden_tag: list[str] = []
        self.lists: list[list[int]] = []  # per list: [number or -1]
        self.pre: list[str] | None = None  # a code block being read
        self.language = ""
        self.code_inline = False
        self.link: tuple[str, str] | None = None  # its address, its text so far
        self.cells: list[str] | None = None

    # -- structure -------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.hidden:
            if tag not in VOID_TAGS:
                self.hidden_tag.append(tag)
                self.hidden += 1
            return
        if hides(tag, attrs):
            if tag not in VOID_TAGS:
                self.hidden_tag.append(tag)
                self.hidden = 1
            return
        values = dict(attrs)
        if tag in _BLOCKS and not (tag == "p" and self._tight()):
            self._break()
        elif tag in _LINES:
            self._newline()
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.out.append("#" * int(tag[1]) + " ")
        elif tag in ("ul", "ol"):
            if self.lists:  # a list inside an item: right under it
                self.out[-1:] = [self.out[-1].rstrip("\n")] if self.out else []
                self._newline()
            start = values.get("start") or "1"
            self.lists.append([int(start) if tag == "ol" and start.isdigit() else -1])
        elif tag == "li":
            self._li()
        elif tag == "pre":
            self.pre = []
            self.language = (values.get("lang") or "").lower()
        elif tag == "code":
            if self.pre is not None:
                found = _LANGUAGE.search(values.get("class") or "")
                self.language = found.group(1).lower() if found else self.language
            else:
                self.code_inline = True
                self.out.append("`")
        elif tag == "a":
            if "data-footnote-backref" in values:  # the ↩ back to the reference
                self.hidden_tag.append(tag)
                self.hidden = 1
                return
            self.link = (values.get("href") or "", "")
        elif tag == "img":
            self._put("[image]")
        elif tag == "input" and values.get("type") == "checkbox":
            self.out.append("[x]" if "checked" in values else "[ ]")
        elif tag == "br":
            self.out.append("\n")
        elif tag == "hr":
            self.out.append("---")
        elif tag == "tr":
            self.cells = []
        elif tag in ("td", "th") and self.cells is not None:
            self.cells.append("")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.hidden:
            if self.hidden_tag and self.hidden_tag[-1] == tag:
                self.hidden_tag.pop()
                self.hidden -= 1
            return
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        elif tag == "pre" and self.pre is not None:
            self._code_block("".join(self.pre))
            self.pre = None
        elif tag == "code" and self.code_inline:
            self.code_inline = False
            self.out.append("`")
        elif tag == "a" and self.link is not None:
            self._link_end()
        elif tag == "tr" and self.cells is not None:
            row = self.cells
            self.cells = None
            self.out.append("| " + " | ".join(c.strip() for c in row) + " |\n")
        if tag in _BLOCKS and not (tag == "p" and self._tight()):
            self._break()

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre is not None:
            self.pre.append(data)
            return
        if not data.strip() and "\n" in data:  # the renderer's own line between tags
            return
        text = unphantomed(data) if "\\" in data else data
        if self.link is not None:
            self.link = (self.link[0], self.link[1] + text)
        self._put(text)

    def handle_comment(self, data: str) -> None:
        return

    # -- pieces ----------------------------------------------------------------------------

    def _break(self) -> None:
        if self.out and not "".join(self.out[-2:]).endswith("\n\n"):
            self.out.append("\n\n")

    def _newline(self) -> None:
        if self.out and not "".join(self.out[-2:]).endswith("\n"):
            self.out.append("\n")

    def _tight(self) -> bool:
        """Whether a paragraph here sits in a list item (no blank lines around it)."""
        return bool(self.lists)

    def _li(self) -> None:
        if not self.lists:
            self.out.append("- ")
            return
        numbering = self.lists[-1]
        indent = "  " * (len(self.lists) - 1)
        if numbering[0] < 0:
            self.out.append(f"{indent}- ")
        else:
            self.out.append(f"{indent}{numbering[0]}. ")
            numbering[0] += 1

    def _link_end(self) -> None:
        assert self.link is not None
        href, shown = self.link
        self.link = None
        if shown.strip() and href and not href.startswith("#") and href != shown.strip():
            self._put(f" ({href})")  # a link with no text shows nothing, its address neither

    def _put(self, text: str) -> None:
        if self.cells is not None:
            if self.cells:
                self.cells[-1] += text
        else:
            self.out.append(text)

    def _code_block(self, code: str) -> None:
        language = self.language
        if language in DIAGRAMS:
            self.out.append(DIAGRAMS[language])
            return
        if language == "mermaid":
            code = _MERMAID_COMMENT.sub("", code)
        elif language == "math":
            code = unphantomed(code)
        longest = max((len(r) for r in re.findall(r"`+", code)), default=0)
        fence = "`" * max(3, longest + 1)
        self.out.append(f"{fence}{language}\n{code.rstrip(chr(10))}\n{fence}")

    def text(self) -> str:
        lines = "".join(self.out).split("\n")
        shown = "\n".join(line.rstrip() for line in lines)
        return re.sub(r"\n{3,}", "\n\n", shown).strip("\n")
