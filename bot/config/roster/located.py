"""Where a problem of a roster edit is said to be: a roster edit is checked over the file's
new text before anything is written, so a problem the check finds at a line of that text
names the file's own line when the edit left it as it was, and the command's words
(``roster add odd``) when the edit wrote it — a line the file does not have is never
cited. Pure: texts in, a :class:`ConfigProblem` out.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from bot.config.checks.problems import ConfigProblem

_ENTRY = re.compile(r"^agents\[\d+\]\.?")


def relocated(
    problem: ConfigProblem, target: Path, old: str, new: str, words: str
) -> ConfigProblem:
    """``problem``, found in ``new`` (the edited text of ``target``, which holds ``old``),
    located in ``old`` or at ``words``, the command that wrote its line."""
    if problem.line is None or Path(problem.file) != target:
        return problem
    kept = kept_lines(old, new)
    if (line := kept.get(problem.line)) is not None:
        return problem._replace(line=line)
    key_path = _ENTRY.sub("", problem.key_path, count=1)  # the entry is the command's
    return ConfigProblem(f"`{words}`", None, key_path, problem.message)


def kept_lines(old: str, new: str) -> dict[int, int]:
    """Each line of ``new`` (numbered from 1) the edit left as it was, to its number in
    ``old``."""
    was, now = old.splitlines(), new.splitlines()
    matcher = difflib.SequenceMatcher(None, was, now, autojunk=False)
    kept: dict[int, int] = {}
    for tag, i1, i2, j1, _ in matcher.get_opcodes():
        if tag == "equal":
            kept.update((j1 + k + 1, i1 + k + 1) for k in range(i2 - i1))
    return kept
