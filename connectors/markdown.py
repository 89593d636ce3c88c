"""Rendering of bot markdown for each chat medium, and splitting of long messages.

Bot replies are CommonMark plus GFM tables and strikethrough. This module owns the
pure transformations connectors need: :func:`to_plain` for the terminal,
:func:`to_html` for Matrix ``formatted_body`` (Discord's own dialect is
:mod:`connectors.markdown_discord`'s), and :func:`split_markdown` to cut a
message to a service's length limit without leaving a code fence open in a part.
All parsing is done by markdown-it-py; nothing here performs I/O. Splitting is
:mod:`connectors.markdown_split`'s (re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode
from markdown_it.utils import EnvType, OptionsDict

from connectors.columns import fit_widths, wrap_words
from connectors.columns import text_width as _width
from connectors.markdown_split import MIN_SPLIT_LIMIT, split_markdown
from connectors.markdown_tables import PLAIN_CELL, Table, find_tables

__all__ = ["MIN_SPLIT_LIMIT", "split_markdown", "to_html", "to_plain"]


def _parser(*, breaks: bool) -> MarkdownIt:
    # html=False: raw HTML in agent or operator text is escaped, never passed through.
    return MarkdownIt("commonmark", {"html": False, "breaks": breaks}).enable(
        ["table", "strikethrough"]
    )


def _render_del(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # Matrix's formatted_body tag list has <del> but not <s>.
    return "<del>" if tokens[idx].nesting == 1 else "</del>"


# Chat clients (Element, Discord) show a single newline as a line break; match them.
_HTML = _parser(breaks=True)
_HTML.add_render_rule("s_open", _render_del)
_HTML.add_render_rule("s_close", _render_del)
PARSE = _parser(breaks=False)


# --- HTML --------------------------------------------------------------------------------------


def to_html(markdown: str, *, align_classes: bool = False) -> str:
    """Render ``markdown`` as HTML for a Matrix ``formatted_body``, with raw HTML escaped.
    ``align_classes``: a table column's alignment as ``class="align-right"`` rather than a
    ``style`` attribute (for a web page whose Content Security Policy refuses those)."""
    return "".join(
        _html_table(part, align_classes) if isinstance(part, Table) else _html_whole(part)
        for part in parts(markdown)
    )


def _html_whole(markdown: str) -> str:
    html: str = _HTML.render(markdown)  # typed Any by markdown-it-py
    return html


def _html_table(table: Table, align_classes: bool = False) -> str:
    """``table`` as markdown-it renders it."""
    styles = [
        (f' class="align-{align}"' if align_classes else f' style="text-align:{align}"')
        if align
        else ""
        for align in table.aligns
    ]
    out = ["<table>\n<thead>\n<tr>\n"]
    out += [
        f"<th{style}>{_html_cell(cell)}</th>\n"
        for cell, style in zip(table.head, styles, strict=True)
    ]
    out.append("</tr>\n</thead>\n")
    if table.body:
        out.append("<tbody>\n")
        for row in table.body:
            out.append("<tr>\n")
            out += [
                f"<td{style}>{_html_cell(cell)}</td>\n"
                for cell, style in zip(row, styles, strict=True)
            ]
            out.append("</tr>\n")
        out.append("</tbody>\n")
    out.append("</table>\n")
    return "".join(out)


def _html_cell(source: str) -> str:
    if PLAIN_CELL.match(source):
        return source
    html: str = _HTML.renderInline(source)
    return html


# --- Tables found without a parse (connectors.markdown_tables) ----------------------------------


def parts(markdown: str) -> list[str | Table]:
    """``markdown`` as the text between its top-level tables (each a markdown source that
    renders on its own as it does in place) and the tables; the whole text, when a line
    scan cannot tell."""
    if "|" not in markdown:
        return [markdown]
    lines = markdown.split("\n")
    tables = find_tables(lines)
    if not tables:
        return [markdown]
    parts: list[str | Table] = []
    at = 0
    for table in tables:
        if table.start > at:
            parts.append("\n".join(lines[at : table.start]))
        parts.append(table)
        at = table.end
    if at < len(lines):
        parts.append("\n".join(lines[at:]))
    return parts


# --- Plain text --------------------------------------------------------------------------------


def to_plain(markdown: str, *, width: int | None = None) -> str:
    """Render ``markdown`` as plain text for a terminal: no markers, tables as aligned
    columns. ``width``: the terminal's columns, which a wider table is fitted to, its cells
    wrapped at word boundaries (:func:`connectors.columns.fit_widths`)."""
    rendered = (
        aligned(plain_rows(part), part.aligns, 1, width)
        if isinstance(part, Table)
        else _plain_whole(part, width)
        for part in parts(markdown)
    )
    return "\n\n".join(text for text in rendered if text)


def plain_rows(table: Table) -> list[list[str]]:
    return [[_plain_cell(cell) for cell in row] for row in (table.head, *table.body)]


def _plain_cell(source: str) -> str:
    if PLAIN_CELL.match(source):
        return source
    root = SyntaxTreeNode(PARSE.parseInline(source))
    try:
        return inline(root)
    finally:
        unlink(root)


def _plain_whole(markdown: str, width: int | None = None) -> str:
    root = SyntaxTreeNode(PARSE.parse(markdown))
    try:
        return _blocks(root.children, tight=False, width=width)
    finally:
        unlink(root)


def unlink(root: SyntaxTreeNode) -> None:
    """Cut the tree's child → parent links: without the cycles, reference counting frees
    it at once instead of leaving thousands of objects (a 200-row `ps`) for a full GC."""
    stack = [root]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        node.parent = None


def _blocks(
    nodes: Sequence[SyntaxTreeNode], *, tight: bool, width: int | None = None, quoted: bool = False
) -> str:
    """``nodes`` one after another, a blank line apart unless ``tight``. ``quoted``: inside a
    quote (an agent's transcript), code comes with no blank line before or after it, so
    each line shown is one the agent wrote or one a count above it counts."""
    body = ""
    previous: SyntaxTreeNode | None = None
    for node in nodes:
        text = _block(node, width)
        if not text:
            continue
        if previous is not None:
            code = quoted and bool(_CODE & {node.type, previous.type})
            body += "\n" if tight or code else "\n\n"
        body += text
        previous = node
    return body


_CODE = frozenset({"fence", "code_block"})


def _block(node: SyntaxTreeNode, width: int | None = None) -> str:
    """``node`` as plain text; ``width``: the columns its prose is wrapped to, between
    words (code is never wrapped)."""
    kind = node.type
    if kind in ("paragraph", "heading"):
        text = "".join(inline(child) for child in node.children)
        return text if width is None else "\n".join(wrap_words(text, width))
    if kind in ("fence", "code_block"):
        return node.content.rstrip("\n")
    if kind in ("bullet_list", "ordered_list"):
        return _list(node, width)
    if kind == "blockquote":
        inner = _blocks(node.children, tight=False, width=_narrower(width, 2), quoted=True)
        return "\n".join(f"> {line}" if line else ">" for line in inner.split("\n"))
    if kind == "table":
        return table_text(node, width)
    if kind == "hr":
        return "---"
    if kind == "inline":
        return inline(node)
    if node.children:
        return _blocks(node.children, tight=False, width=width)
    return node.content


def _narrower(width: int | None, by: int) -> int | None:
    return None if width is None else max(width - by, 20)


def _list(node: SyntaxTreeNode, width: int | None = None) -> str:
    return list_items(
        node,
        lambda item, tight, marker: _blocks(
            item.children, tight=tight, width=_narrower(width, len(marker))
        ),
    )


def list_items(
    node: SyntaxTreeNode,
    body: Callable[[SyntaxTreeNode, bool, str], str],
    bullet: str = "- ",
    indent: int | None = None,
) -> str:
    """A bullet or ordered list (``node``) as text: each item its marker (its number, or
    ``bullet``) then ``body(item, tight, marker)``, the body's further lines indented by
    ``indent`` (the marker's width when None); a tight list's items on adjacent lines, a
    loose one's a blank line apart."""
    ordered = node.type == "ordered_list"
    start = node.attrs.get("start", 1) if ordered else 1
    number = start if isinstance(start, int) else int(start)
    # markdown-it hides the paragraphs of a tight list; keep its items on adjacent lines.
    tight = not any(
        child.type == "paragraph" and not child.hidden
        for item in node.children
        for child in item.children
    )
    items: list[str] = []
    for offset, item in enumerate(node.children):
        marker = f"{number + offset}. " if ordered else bullet
        lines = body(item, tight, marker).split("\n")
        pad = " " * (len(marker) if indent is None else indent)
        rest = [f"{pad}{line}" if line else "" for line in lines[1:]]
        items.append("\n".join([f"{marker}{lines[0]}".rstrip(), *rest]))
    return ("\n" if tight else "\n\n").join(items)


def inline(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind in ("softbreak", "hardbreak"):
        return "\n"
    if kind == "link":
        label = "".join(inline(child) for child in node.children)
        href = str(node.attrs.get("href", ""))
        return label if href in (label, f"mailto:{label}") or not href else f"{label} ({href})"
    if kind == "image":
        alt = "".join(inline(child) for child in node.children)
        src = str(node.attrs.get("src", ""))
        return f"{alt} ({src})" if alt else src
    if node.children:
        return "".join(inline(child) for child in node.children)
    return node.content


def table_text(node: SyntaxTreeNode, width: int | None = None) -> str:
    sections = {section.type: section.children for section in node.children}
    head = sections.get("thead", [])
    body = sections.get("tbody", [])
    rows = [[inline(cell) for cell in row.children] for row in (*head, *body)]
    header_cells = head[0].children if head else []
    aligns = [str(cell.attrs.get("style", "")) for cell in header_cells]
    return aligned(rows, aligns, len(head), width)


def aligned(
    rows: list[list[str]], aligns: Sequence[str], heads: int, fit: int | None = None
) -> str:
    """``rows`` (the first ``heads`` of them the header) as aligned columns, a rule under
    the header; ``aligns``: each column's ``left``, ``right`` or ``center`` (or none).
    ``fit``: the columns a wider table is narrowed to, a cell too wide for its column
    going on over more lines, broken between words."""
    aligns = list(aligns)
    columns = max((len(row) for row in rows), default=0)
    for row in rows:
        row.extend([""] * (columns - len(row)))
    aligns.extend([""] * (columns - len(aligns)))
    if fit is None:
        widths = [max(_width(row[col]) for row in rows) for col in range(columns)]
    else:
        widths = fit_widths(rows, 2, fit)

    def lines_of(cells: list[str]) -> list[str]:
        wrapped = [
            [cell] if _width(cell) <= width else wrap_words(cell, width)
            for cell, width in zip(cells, widths, strict=True)
        ]
        depth = max((len(cell) for cell in wrapped), default=1)
        return [
            "  ".join(
                _pad(cell[index] if index < len(cell) else "", width, align)
                for cell, width, align in zip(wrapped, widths, aligns, strict=True)
            ).rstrip()
            for index in range(depth)
        ]

    lines = [text for row in rows[:heads] for text in lines_of(row)]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend(text for row in rows[heads:] for text in lines_of(row))
    return "\n".join(lines)


def _pad(text: str, width: int, align: str) -> str:
    gap = width - _width(text)
    if "right" in align:
        return " " * gap + text
    if "center" in align:
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    return text + " " * gap
