"""What the commits Fleetwarden makes on a base say: a squash (or merge) commit's subject
names the work — the pull request's title, else the run's prompt, else the branch's one
commit — and its body lists the agent's own commit subjects (``* subject`` each, as a
forge's squash does), says who merged what, and ends with the trailers.

Every subject, title and prompt here is the agent's or a requester's text: each becomes one
printable line, cut, and the list's lines start with ``* ``, so nothing in them can end the
message early, start a paragraph of trailers, or pass for one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

TITLE_MOST: Final = 72
"""Characters of a commit's subject line (git's and the forges' convention)."""
SUBJECT_MOST: Final = 200
"""Characters of one listed commit subject."""
SUBJECTS_LISTED: Final = 50
"""Commit subjects listed in a body; the rest are counted."""


def one_line(text: str, most: int) -> str:
    """The first line of ``text`` with anything in it, control characters as spaces and
    spaces folded, cut to ``most`` characters (``…`` at the cut)."""
    for raw in text.splitlines():
        line = " ".join("".join(c if c.isprintable() else " " for c in raw).split())
        if line:
            return line if len(line) <= most else line[: most - 1].rstrip() + "…"
    return ""


def work_title(
    *, pull_title: str | None, prompt: str | None, subjects: Sequence[str], branch: str
) -> str:
    """The subject of the commit that lands ``branch``: the pull request's title, the run's
    prompt (its first line), the branch's one commit's subject, or the branch's name."""
    for text in (pull_title, prompt):
        title = one_line(text or "", TITLE_MOST)
        if title:
            return title
    own = [s for s in subjects if one_line(s, TITLE_MOST)]
    if len(own) == 1:
        return one_line(own[0], TITLE_MOST)
    return one_line(f"Land {branch}", TITLE_MOST)


def land_message(
    title: str,
    subjects: Sequence[str],
    *,
    more: int = 0,
    footer: str = "",
    trailers: Sequence[str] = (),
) -> bytes:
    """The message of a squash or merge commit: ``title``; the branch's commit
    ``subjects`` in order, ``* subject`` each (``more`` of them left out, counted);
    ``footer`` (who merged what); then the trailers, one a line."""
    paragraphs = [one_line(title, TITLE_MOST) or "Land a branch"]
    listed = [f"* {one_line(s, SUBJECT_MOST) or '(no subject)'}" for s in subjects]
    if more > 0:
        listed.append(f"* … and {more} more commit{'' if more == 1 else 's'}")
    if listed:
        paragraphs.append("\n".join(listed))
    said = one_line(footer, 300)
    if said:
        paragraphs.append(said)
    lines = [t.strip() for t in trailers if t.strip() and t.strip().isprintable()]
    if lines:
        paragraphs.append("\n".join(lines))
    return ("\n\n".join(paragraphs) + "\n").encode("utf-8")
