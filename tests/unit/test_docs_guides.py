"""The guides' transcripts can be followed from any state: what a reader types names tasks,
branches and runs by name, never by a number only a fresh state dir would give."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDES = [ROOT / "docs" / f"{name}.md" for name in ("tasks", "budgets", "peers", "repos", "forges")]

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_TYPED = re.compile(r"^\s*(?:> |!)(?P<command>\S.*)$", re.MULTILINE)
BY_NUMBER = re.compile(
    r"^(?:task(?: (?:start|done|cancel|show))? #?\d+\b"  # task 2, task start 2
    r"|mission add \S+ #?\d"  # mission add release 4
    r"|(?:merge|diff|push|discard) fw/[a-z0-9-]+/\d+\b)"  # merge fw/coder/1
    r"|--after #?\d"  # --after 1
)


def typed(page: Path) -> list[str]:
    """The commands a page's code blocks show a reader typing (`> CMD` or `!CMD`)."""
    return [
        match["command"].strip()
        for block in _FENCE.finditer(page.read_text())
        for match in _TYPED.finditer(block.group(0))
    ]


@pytest.mark.parametrize("page", GUIDES, ids=lambda page: page.name)
def test_a_guide_types_names_not_a_fresh_state_dir_s_numbers(page: Path) -> None:
    """No typed command names a task, a task to wait for or a branch by its number."""
    wrong = [command for command in typed(page) if BY_NUMBER.search(command)]
    assert wrong == []


def test_the_check_sees_numbers_where_names_belong() -> None:
    """`task start 2`, `--after 1`, `merge fw/coder/1` are caught; names and ids are not."""
    for command in ("task start 2", "task 2", "task new --after 1 Announce", "merge fw/coder/1"):
        assert BY_NUMBER.search(command), command
    for command in ("task start announce-the-release", "approve k7q2", "spawn demo --prompt x"):
        assert not BY_NUMBER.search(command), command
