"""Bot markdown in Discord's own dialect: tables, which Discord shows as raw pipes, as aligned
columns in a code block (or one list item per row when too wide), and fenced code blocks as
Discord reads them, so nothing an agent printed can close one. Pure, over the parsing of
:mod:`connectors.markdown`."""

from __future__ import annotations

import re

from markdown_it.tree import SyntaxTreeNode

from connectors.columns import text_width as _width
from connectors.markdown import PARSE, aligned, inline, parts, plain_rows, table_text, unlink
from connectors.markdown_split import fences
from connectors.markdown_tables import Table

DISCORD_TABLE_WIDTH = 90
"""The widest table shown as aligned columns on Discord; wider ones would wrap mid-row."""


def to_discord(markdown: str) -> str:
    """Render ``markdown`` in Discord's dialect: the same text, but tables — which Discord
    shows as raw pipes — become aligned columns in a code block, or, when too wide to
    read that way, one list item per row; and fenced code blocks become ones Discord
    reads the same (:func:`_discord_fences`).

    Only tables at the top level are converted; the rest of the source is kept byte for
    byte, so emphasis, code, quotes and links read as written.
    """
    if "|" not in markdown and "``" not in markdown and "~~~" not in markdown:
        return markdown
    lines: list[str] = []
    for part in parts(markdown):
        if not isinstance(part, Table):
            lines += _discord_whole(part).split("\n")
            continue
        rows = plain_rows(part)
        lines += _discord_table(aligned(rows, part.aligns, 1), rows[0], rows[1:])
    return "\n".join(lines)


def _discord_whole(markdown: str) -> str:
    root = SyntaxTreeNode(PARSE.parse(markdown))
    try:
        tables = [node for node in root.children if node.type == "table" and node.map]
        lines = _discord_fences(markdown.split("\n"))
        for node in reversed(tables):
            start, end = node.map or (0, 0)
            sections = {section.type: section.children for section in node.children}
            head = [inline(cell) for row in sections.get("thead", [])[:1] for cell in row.children]
            rows = [[inline(cell) for cell in row.children] for row in sections.get("tbody", [])]
            lines[start:end] = _discord_table(table_text(node), head, rows)
        return "\n".join(lines)
    finally:
        unlink(root)


def _discord_table(aligned: str, head: list[str], rows: list[list[str]]) -> list[str]:
    """A table's lines for Discord: ``aligned`` (its aligned columns) in a code block, or,
    when too wide to read that way, one list item per row."""
    if max(map(_width, aligned.split("\n"))) <= DISCORD_TABLE_WIDTH:
        return ["```", *_unclosable(aligned).split("\n"), "```"]
    return _rows_as_items(head, rows)


def _discord_fences(lines: list[str]) -> list[str]:
    """``lines`` with each fenced code block written as Discord reads one. Discord ends a
    block at the first three backticks whatever fence opened it (CommonMark waits for a
    fence as long as the opening one, which is how a block holds backticks), and knows no
    ``~~~`` fence: each block is opened and closed with three backticks, and no run of
    three is left in its content, so nothing in it — an agent's output — can end it."""
    done: set[int] = set()
    for fence in fences(lines).values():
        if fence.opening in done:
            continue
        done.add(fence.opening)
        opening = lines[fence.opening]
        bare = opening.lstrip(" \t>")
        markup = bare[: len(bare) - len(bare.lstrip(bare[:1]))]
        at = opening.find(markup)
        info = opening[at + len(markup) :].split()
        lines[fence.opening] = opening[:at] + "```" + (info[0] if info else "")
        for index in range(fence.opening + 1, fence.end):
            lines[index] = _unclosable(lines[index])
        closing = fence.end
        if closing < len(lines) and lines[closing] == fence.close:
            lines[closing] = fence.close.replace(markup, "```")
    return lines


def _unclosable(text: str) -> str:
    """``text`` with no three backticks in a row (a zero-width space after each second)."""
    return _BACKTICK_RUN.sub("\u200b", text)


_BACKTICK_RUN = re.compile(r"(?<=``)(?=`)")


def _rows_as_items(head_cells: list[str], rows: list[list[str]]) -> list[str]:
    """A table as a list: each row's first cell in bold, then its other cells (named by
    their column when there are several)."""
    head = [_escape(cell) for cell in head_cells]
    items: list[str] = []
    for row in rows:
        cells = [_escape(cell) for cell in row]
        if not cells:
            continue
        rest = [(head[i] if i < len(head) else "", cell) for i, cell in enumerate(cells)][1:]
        if len(rest) == 1:
            details = rest[0][1]
        else:
            details = " · ".join(f"{name}: {cell}" if name else cell for name, cell in rest if cell)
        items.append(f"- **{cells[0]}**" + (f" — {details}" if details else ""))
    return items


def _escape(text: str) -> str:
    """``text`` with the characters Discord would read as markup escaped."""
    return "".join(f"\\{char}" if char in _DISCORD_MARKUP else char for char in text)


_DISCORD_MARKUP = frozenset("\\*_~`|>#")
