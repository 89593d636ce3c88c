"""What a reader of a forge's page cannot see, taken out of an issue's or a comment's text
before an agent reads it: :func:`clean`.

Words a person reviewing the issue never sees must not reach the agent either, or anyone
can whisper instructions to it. Taken out:

* characters a reader cannot see: zero-width and bidi-control characters, the Unicode tag
  characters (U+E0000–E007F), the invisible operators and everything else of category
  ``Cf``, control characters, fillers and stray variation selectors
  (:func:`fleet.redaction.invisible.visible`), and the unassigned code points of the
  U+2060–206F and tag blocks; line ends become ``\\n``. They are taken out last: the text
  is read as the forge reads it, where a zero-width space before an indented ``<!--``
  keeps it from being a code block;
* HTML comments, declarations, processing instructions, elements hidden from readers with
  all they hold, and the attributes of the tags kept but ``href`` and ``src``
  (:mod:`fleet.markdown.seen` reads the HTML). ``<details>`` is shown to whoever opens it:
  it stays;
* link reference definitions (``[//]: # (…)``, markdown's comment idiom): nothing of them
  shows. One whose label the text uses comes back at the end, as ``[label]: URL``;
* of a fence's info string, which no reader sees, all but a language's name.

What a code block shows is shown as written: a fenced or indented block (found by
markdown-it, the CommonMark parser) is kept whole unless it sits inside a hidden element.
Inline code is not told apart: HTML in it is read as HTML, which can only take out more
(`` `<!-- -->` `` comes out empty).
"""

from __future__ import annotations

import re
from typing import Final

from markdown_it import MarkdownIt

from fleet.markdown.seen import readable
from fleet.redaction.invisible import visible

TEXT_CAP: Final = 20_000
"""Characters of one cleaned text, unless its caller says otherwise."""
READ_CAP: Final = 200_000
"""Characters read of a text at all (three times GitHub's longest comment), and never more
than four times what is kept of it: past this, nothing is worth parsing. Reading takes
linear time, about a second for the longest text."""
_UNSEEN: Final = re.compile("[\u2060-\u206f\ufff0-\ufff8\U000e0000-\U000e007f]+")
# A definition's label as written, where its line starts (past a block quote's or a list
# item's markers): at most 999 characters, as CommonMark has it.
_LABEL: Final = re.compile(r"(?:[ \t>]|[-*+][ \t]|\d{1,9}[.)][ \t])*\[((?:[^\]\\]|\\.){1,999})\]:")
# Its blocks only: what is read here is where blocks, code and link reference definitions
# are, never the inline markup in them (whose HTML rule tries its pattern from each "<!--"
# to the text's end: quadratic in a run of them).
_PARSER: Final = MarkdownIt("commonmark", {"html": True}).enable("table").disable("inline")
_LEAVES: Final = frozenset({"paragraph_open", "heading_open", "html_block", "table_open"})
_LANGUAGE: Final = re.compile(r"[\w+#.-]{1,20}")
_LINE_END: Final = re.compile(r"\r\n?")
_SLOT: Final = re.compile("\x00(\\d+)\x00")  # a code block's place while HTML is read


def unseen_free(text: str) -> str:
    """``text`` without the characters a reader cannot see, its line ends ``\\n``."""
    return _UNSEEN.sub("", visible(text))


def cap(text: str, limit: int, more: int = 0) -> str:
    """``text``, or its first ``limit`` characters (cut at a line end when one is near)
    and a line saying how many more there were (``more``: already cut before)."""
    if len(text) <= limit:
        return f"{text}\n\n[… cut: {more:,} more characters]" if more else text
    head = text[:limit]
    at = head.rfind("\n", limit - limit // 10)
    head = head[:at] if at > 0 else head
    return f"{head.rstrip()}\n\n[… cut: {len(text) - len(head) + more:,} more characters]"


def clean(text: str, limit: int = TEXT_CAP) -> str:
    """``text`` as a reader of the forge's page sees it, at most about ``limit``
    characters (the module says what is taken out)."""
    # Read as the forge reads it, invisible characters and all (taken out only after: a
    # zero-width space before an indented "<!--" keeps it from being a code block there).
    # Line ends and NUL as CommonMark makes them.
    read = min(READ_CAP, max(4 * limit, 10_000))
    unread = max(len(text) - read, 0)
    text = _LINE_END.sub("\n", text[:read]).replace("\x00", "\ufffd")
    blocks, kept, refs, chunks = _markdown(text)
    shown = _tidy(readable(kept, chunks) if "<" in kept else kept)
    flat = _flat(shown)
    used = [f"[{label}]: {href}" for label, href in refs if f"[{_flat(label)}]" in flat]
    if used:
        shown += "\n\n" + "\n".join(used)
    text = _SLOT.sub(lambda slot: blocks[int(slot.group(1))], shown)
    return cap(unseen_free(text).strip("\n"), limit, unread)


def _markdown(
    text: str,
) -> tuple[list[str], str, list[tuple[str, str]], list[tuple[int, int]]]:
    """The code blocks of ``text``; the text with each in a slot, and its link reference
    definitions taken out; those definitions' labels and targets; and where each other
    block (a paragraph, a heading, an HTML block, a table) starts and ends in it."""
    env: dict[str, object] = {}
    tokens = _PARSER.parse(text, env)
    lines = text.split("\n")
    blocks: list[str] = []
    slot_at: dict[int, tuple[int, int]] = {}  # first line → (block, its end line)
    for token in tokens:
        if token.type in ("fence", "code_block") and token.map is not None:
            start, end = token.map
            slot_at[start] = (len(blocks), end)
            block = lines[start:end]
            if token.type == "fence":  # its info string is not shown: the language at most
                opening = block[0]
                fence_end = opening.find(token.markup) + len(token.markup)
                language = token.info.split(maxsplit=1)[0] if token.info.strip() else ""
                shown = language if _LANGUAGE.fullmatch(language) else ""
                block = [opening[:fence_end] + shown, *block[1:]]
            blocks.append("\n".join(block))
    dropped: set[int] = set()
    refs: list[tuple[str, str]] = []
    found = env.get("references")
    for label, ref in (found if isinstance(found, dict) else {}).items():
        where = ref.get("map") if isinstance(ref, dict) else None
        if not isinstance(label, str) or label.startswith("^") or not where:
            continue  # ``[^1]: …``: a footnote, which the forge shows
        dropped.update(range(where[0], where[1]))
        href = str(ref.get("href", ""))
        if href and href != "#" and not any(c.isspace() or c in "<>" for c in href):
            written = _LABEL.match(lines[where[0]])  # as written, not as markdown-it keys it
            refs.append((written.group(1) if written else label, href))
    out: list[str] = []
    kept_at: dict[int, int] = {}  # a line of the text → where it starts in what is kept
    line = length = 0
    while line < len(lines):
        if line in slot_at:
            index, end = slot_at[line]
            piece = f"\x00{index}\x00"
            line = max(end, line + 1)
        elif line in dropped:
            line += 1
            continue
        else:
            kept_at[line] = length
            piece = lines[line]
            line += 1
        out.append(piece)
        length += len(piece) + 1
    chunks = []
    for token in tokens:
        if token.type in _LEAVES and token.map and token.map[0] in kept_at:
            last = token.map[1] - 1
            if last in kept_at:
                chunks.append((kept_at[token.map[0]], kept_at[last] + len(lines[last])))
    return blocks, "\n".join(out), refs, chunks


def _flat(text: str) -> str:
    """``text`` as labels match in markdown: case and runs of blanks aside (a label is
    used where the flattened text shows ``[label]``, flattened)."""
    return " ".join(text.casefold().split())


def _tidy(text: str) -> str:
    """No run of more than two blank lines (what was taken out often leaves them), no
    blank lines at either end."""
    return re.sub(r"\n[ \t]*(?:\n[ \t]*){2,}", "\n\n\n", text).strip("\n")
