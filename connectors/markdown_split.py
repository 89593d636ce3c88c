"""Splitting bot markdown into parts that fit a chat service's length limit, each part
rendering on its own as it does in place: code fences cut at a part's end are closed
there and reopened in the next part. Nothing here performs I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markdown_it import MarkdownIt

__all__ = ["MIN_SPLIT_LIMIT", "Fence", "fences", "split_markdown"]

MIN_SPLIT_LIMIT = 32
"""Smallest ``limit`` :func:`split_markdown` accepts: room for a reopened fence and content."""

# html=False: raw HTML is never read as such (the same parser settings as rendering).
_PARSE = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


@dataclass(frozen=True, slots=True)
class Fence:
    """A fenced code block as lines of the source: where it opens, how to close and reopen it."""

    opening: int
    end: int  # one past its last content line
    size: int  # characters from its opening line through its closing line
    cut_short: bool  # ended by its container (quote, list item) without a closing line
    reopen: str
    close: str
    margin: str  # container prefix (quote markers, list indent) of its lines


def fences(lines: Sequence[str]) -> dict[int, Fence]:
    """Map each line that opens or sits inside a fenced block to that block."""
    if not any("```" in line or "~~~" in line for line in lines):
        return {}  # no fence: nothing to parse for
    # Lone "\r" is a line break to markdown-it but not to str.split("\n"); keep lines aligned.
    tokens = _PARSE.parse("\n".join(lines).replace("\r", " "))
    found: dict[int, Fence] = {}
    for token in tokens:
        if token.type != "fence" or token.map is None:
            continue
        start, stop = token.map
        content = token.content
        content_lines = content.count("\n") + (1 if content and not content.endswith("\n") else 0)
        closed = stop - start == content_lines + 2
        end = stop - 1 if closed else stop
        opening = lines[start]
        at = max(opening.find(token.markup), 0)
        after = opening[at + len(token.markup) :].split()
        # The language is all a reopened fence needs; a long info string would eat the limit.
        reopen = opening[: at + len(token.markup)] + (after[0] if after else "")
        margin = "".join(c if c in " \t>" else " " for c in opening[:at])
        # Without a closing line (ended by the document or its container), close in its container.
        close = lines[stop - 1] if closed else margin + token.markup
        size = len("\n".join(lines[start:stop])) + (0 if closed else len(close) + 1)
        cut_short = not closed and stop < len(lines)
        fence = Fence(start, end, size, cut_short, reopen, close, margin)
        for index in range(start, end):
            found[index] = fence
    return found


class _Packer:
    """Greedy line packer: fills parts up to ``limit``, closing and reopening fences at cuts."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.lines: list[str] = []
        self.blank: list[bool] = []  # droppable blank line, per entry of ``lines``
        self.size = -1  # len("\n".join(lines)); -1 while empty
        self.originals = 0  # lines of the source in this part (not added fence lines)
        self.fence: Fence | None = None  # fence still open after the last line
        # A fence open after the last line as the part reads on its own, where the source
        # reads it closed: a part starting inside a list item reads its lines outside it.
        self.alone: Fence | None = None
        self.fence_opened_at = -1  # index in ``lines`` of this part's first line of ``fence``

    def room(self, fence: Fence | None) -> int:
        """Characters a next line may take in this part, keeping room for ``fence``'s close."""
        reserve = max(len(f.close) + 1 if f else 0 for f in (fence, self.alone))
        return self.limit - self.size - 1 - reserve

    def push(self, text: str, *, fence: Fence | None, original: bool, blank: bool) -> None:
        """Append a line and record which fence is open after it."""
        if fence is not None and self.fence is not fence:
            self.fence_opened_at = len(self.lines)
        self.lines.append(text)
        self.blank.append(blank)
        self.size += len(text) + 1
        self.originals += original
        self.fence = fence
        if fence is None and ("```" in text or "~~~" in text):
            self.alone = fences(self.lines).get(len(self.lines) - 1)
        elif fence is not None:
            self.alone = None

    def bare_opening(self) -> int:
        """1 when the part's last line opens a fence with no content after it yet, else 0."""
        return int(self.fence is not None and self.fence_opened_at == len(self.lines) - 1)

    def flush(self, *, last: bool = False) -> tuple[str, Fence] | None:
        """Close the current part; return a fence opening line that moves to the next part.

        The last part has no next part: a fence left open by the source is closed there.
        """
        moved: tuple[str, Fence] | None = None
        fence = self.fence
        if fence is not None and not last and self.bare_opening() and self.originals > 1:
            # The part would end with an empty block: move the opening line on instead.
            moved, fence = (self.lines[-1], fence), None
            self._pop()
        while self.blank and self.blank[-1]:
            self._pop()
        if fence is not None:
            self.lines.append(fence.close)
        elif self.alone is not None:
            self.lines.append(self.alone.close)
        if self.originals:
            self.parts.append("\n".join(self.lines))
        self.lines, self.blank, self.size, self.originals = [], [], -1, 0
        self.fence, self.fence_opened_at, self.alone = None, -1, None
        return moved

    def _opens_alone(self, text: str, fence: Fence | None) -> int:
        """Room the close of a fence ``text`` would leave open, read in this part alone."""
        if fence is not None or not ("```" in text or "~~~" in text):
            return 0
        opened = fences([*self.lines, text]).get(len(self.lines))
        return len(opened.close) + 1 if opened is not None else 0

    def _pop(self) -> None:
        self.lines.pop()
        self.blank.pop()
        self.originals -= 1

    def start(self, moved: tuple[str, Fence] | None, fence: Fence | None, *, content: bool) -> None:
        """Begin a part with the moved opening line or, inside a fence, its reopen line."""
        if moved is not None:
            self.push(moved[0], fence=moved[1], original=True, blank=False)
        elif content and fence is not None:
            self.push(fence.reopen, fence=fence, original=False, blank=False)

    def add(self, text: str, fence: Fence | None, *, content: bool) -> None:
        """Add one source line, starting new parts and hard-splitting it as needed."""
        blank = fence is None and not text.strip()
        if self.originals == 0 and blank:
            return  # a part never starts with blank lines outside a fence
        if (
            fence is not None
            and not content
            and self.originals
            and fence.size > self.room(None)
            and fence.size <= self.limit
        ):
            # A block that fits a part of its own is not cut: start it in a new part.
            self.start(self.flush(), None, content=False)
        if len(text) + self._opens_alone(text, fence) <= self.room(fence):
            self.push(text, fence=fence, original=True, blank=blank)
            return
        if self.originals > self.bare_opening():
            self.start(self.flush(), fence, content=content)
            if blank:
                return
            if len(text) <= self.room(fence):
                self.push(text, fence=fence, original=True, blank=False)
                return
        while True:
            room = max(self.room(fence), 1)
            if len(text) <= room:
                self.push(text, fence=fence, original=True, blank=False)
                return
            margin = fence.margin if fence else ""
            cut = _cut(text, room, len(margin))
            self.push(text[:cut], fence=fence, original=True, blank=False)
            if fence is None and not text[cut:].strip():
                return  # whitespace at a cut is dropped, like blank lines
            # The rest of a code line stays in the fence's container (quote, list item).
            text = margin + text[cut:]
            self.start(self.flush(), fence, content=True)


def _cut(text: str, room: int, start: int) -> int:
    """Where to hard-split ``text`` in ``room``: after a space in its second half, else at room.

    The cut falls after ``start`` (a container margin), so a split always makes progress.
    """
    space = max(text.rfind(" ", start, room), text.rfind("\t", start, room))
    return space + 1 if space >= room // 2 else room


def split_markdown(markdown: str, limit: int) -> list[str]:
    """Split ``markdown`` into parts of at most ``limit`` characters, balancing code fences.

    Parts break on line boundaries; a line longer than a part is hard-split (after a
    space when one is near the end). A cut inside a fenced block closes the fence at
    the end of the part and repeats its opening line at the start of the next one.
    A fence the source leaves open is closed in the last part, and one ended by its
    container (a quote or list item) is closed where it ends, so each part renders
    the same on its own. Blank lines at a cut are dropped, so no part is empty or
    only whitespace. A text that fits is returned unchanged, and blank text gives no
    parts. A fence whose opening and closing lines leave no room for content in
    ``limit`` is not carried.
    """
    if limit < MIN_SPLIT_LIMIT:
        raise ValueError(f"limit must be at least {MIN_SPLIT_LIMIT}, got {limit}")
    if not markdown.strip():
        return []
    if len(markdown) <= limit:
        return [markdown]
    # Like markdown-it, do not count an empty line after the final newline.
    lines = markdown.removesuffix("\n").split("\n")
    carried = {
        index: fence
        for index, fence in fences(lines).items()
        if len(lines[fence.opening]) + len(fence.close) + len(fence.margin) + 4 <= limit
    }
    packer = _Packer(limit)
    for index, text in enumerate(lines):
        fence = carried.get(index)
        packer.add(text, fence, content=fence is not None and index != fence.opening)
        if fence is not None and fence.cut_short and index == fence.end - 1:
            # Out of its container (a part starting mid-list) the fence would run on: close it.
            packer.add(fence.close, None, content=False)
    packer.flush(last=True)
    return packer.parts
