"""Pure renderers of what a run's branch holds: the change block of a run's summary, the
``diff`` as code blocks nothing can close, the ``branches`` table and what ``merge`` did.

Every string that came from a repository — file names, commit subjects, branch names, the
door's and the secret scan's words, which may quote them — is the agent's text: on a line
of ours it passes the guard (:mod:`fleet.redaction.guard`: one line, bounded, nothing
hidden) and is escaped (:func:`bot.text.agent_text.said`), so none of it is markup, a
mention that pings or a line of Fleetwarden's own. A diff goes in code blocks whose fence
is longer than any run of backticks in it (:func:`bot.render.fleet.code_block`), with
invisible characters shown as code points (a bidi override in a diff is shown, not
obeyed) and long runs of backticks counted, so no line can close its block.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from string import hexdigits
from typing import Final

from bot.render.fleet import code_block
from bot.text.agent_text import said
from fleet.names import is_agent_name
from fleet.redaction.guard import cut
from fleet.redaction.invisible import reveal
from fleet.repos.facts import Change, Clash, CommitLine, FileStat, Landed
from fleet.repos.schema import ref_problem

FILES_SHOWN: Final = 15
"""Files listed in a change block; the rest are counted."""
COMMITS_SHOWN: Final = 8
NAMES_SHOWN: Final = 5  # conflicting or clashing files named on one line
PATH_CAP: Final = 120  # characters of one path
_FEW_SHOWN: Final = 5  # files named where a path asked for is not among them
SUBJECT_CAP: Final = 80  # of one commit subject
WHY_CAP: Final = 200  # of one refusal or verdict
HELD_CAP: Final = 600  # of why the run's end was not pushed: both commits and the fix
LINE_CAP: Final = 400  # of one line of a diff: longer ones are cut in the middle
BACKTICK_RUN: Final = 8  # a run of more backticks in a diff is shown counted
_TICKS: Final = re.compile(f"`{{{BACKTICK_RUN + 1},}}")
_FENCE_ROOM: Final = 2 * (BACKTICK_RUN + 1) + len("diff") + 2  # the fences of one block
MINUS: Final = "−"  # U+2212, as the summary writes removed lines


def change_block(change: Change) -> str:
    """A run's branch for its summary: the branch and its commits, the files with their
    ``+/−``, the base it forked from and how far it has moved, whether it applies, the
    clashes with other live runs, the secret scan, what the door refused (and that nothing
    of the run reached the branch, when so), why the run's end was not kept, pushed or
    merged, the files copied in (and those of ``copy`` that were not there), the disk the
    checkout uses."""
    ahead = len(change.commits) + change.more_commits
    files = len(change.files) + change.more_files
    head = (
        f"**Branch** {said(change.branch)} of **{said(change.repo)}**: "
        f"{_count(ahead, 'commit')}, {_count(files, 'file')}, "
        f"+{change.added} {MINUS}{change.removed}"
    )
    items = [_base(change)]
    if refused_all(change):
        items.append("Nothing of this run reached the branch: the git door refused its push.")
    if change.head_sha is None:
        items.append("Nothing accepted on the branch yet.")
    if change.commits:
        items.append("Commits: " + _commits(change.commits, change.more_commits))
    items.append(_applies(change))
    items.extend(_clash(clash) for clash in change.clashes)
    items.append(f"Secret scan: {said(change.secrets, WHY_CAP)}.")
    items.extend(f"The git door refused: {said(why, WHY_CAP)}." for why in change.refused)
    if change.unkept:
        items.append(f"The run's end was not kept: {said(change.unkept, WHY_CAP)}.")
    items.append(_where_it_is(change))
    if change.copied:
        items.append("Copied into the checkout: " + _names(change.copied) + ".")
    if change.not_copied:
        items.append(f"Not copied into the checkout: {said(change.not_copied, WHY_CAP)}.")
    if change.disk_bytes is not None:
        items.append(f"Checkout on disk: {size(change.disk_bytes)}.")
    lines = [head, "", *(f"- {item}" for item in items)]
    if change.files:
        lines += ["", "Files:", "", *files_list(change.files, change.more_files)]
    return "\n".join(lines)


def stat(change: Change) -> str:
    """``diff NAME --stat``: the branch, its base and its files with their ``+/−``."""
    files = len(change.files) + change.more_files
    head = (
        f"**Branch** {said(change.branch)} against {said(change.base_ref)}: "
        f"{_count(files, 'file')}, +{change.added} {MINUS}{change.removed}"
    )
    if not change.files:
        return f"{head}. It changes nothing yet."
    return "\n".join([head, "", *files_list(change.files, change.more_files)])


def empty_diff(agent: str, path: str | None, change: Change | None) -> str:
    """Why ``diff NAME [FILE]`` shows nothing: the branch changes nothing against its base,
    or ``path`` is not among the files it changes (``change``: as just read; a few of those
    files named, and ``diff NAME --stat`` for them all)."""
    what = f"**{said(agent)}**'s branch"
    if path is None or change is None:
        return f"{what} changes nothing against its base."
    if not change.files:
        return f"{what} changes no file against its base yet."
    if any(f.path == path for f in change.files) or change.more_files:  # may be one of them
        return f"{what} in {said(path, PATH_CAP)} changes nothing against its base."
    few = ", ".join(said(f.path, PATH_CAP) for f in change.files[:_FEW_SHOWN])
    rest = len(change.files) - _FEW_SHOWN
    more = f" and {rest} more" if rest > 0 else ""
    name = agent if is_agent_name(agent) else "NAME"
    return (
        f"{said(path, PATH_CAP)} is not among the files {what} changes; it changes {few}{more}."
        f" `diff {name} FILE` shows one of them, `diff {name} --stat` lists them all."
    )


def files_list(files: Sequence[FileStat], more: int = 0, shown: int = FILES_SHOWN) -> list[str]:
    """One list item per file (``A``/``M``/``D``/``R``, the path, ``+N −M`` or ``binary``);
    past ``shown`` files, how many more."""
    lines = [f"- {_status(f.status)} {said(f.path, PATH_CAP)} {_lines(f)}" for f in files[:shown]]
    rest = len(files) - len(files[:shown]) + more
    if rest > 0:
        lines.append(f"- … and {_count(rest, 'more file')}")
    return lines


def diff_text(diff: str, limit: int) -> list[str]:
    """``diff`` as fenced code blocks of at most ``limit`` characters each, in order; no
    line in them can close its block (the module says how). A line too long for one block
    is cut in the middle."""
    lines = _diff_lines(diff)
    if not lines:
        return []
    room = max(limit - _FENCE_ROOM, 16)
    parts: list[str] = []
    block: list[str] = []
    used = 0
    for line in lines:
        line = cut(line, room - 1)
        if block and used + len(line) + 1 > room:
            parts.append(code_block(block, "diff"))
            block, used = [], 0
        block.append(line)
        used += len(line) + 1
    parts.append(code_block(block, "diff"))
    return parts


def diff_head(diff: str, most: int) -> tuple[str, int]:
    """The first whole lines of ``diff`` within ``most`` characters, and how many lines
    were left out."""
    if len(diff) <= most:
        return diff, 0
    head = diff[:most]
    at = head.rfind("\n")
    head = head[: at + 1] if at > 0 else head
    return head, diff[len(head) :].count("\n") + (0 if diff.endswith("\n") else 1)


def branches_table(changes: Sequence[Change]) -> str:
    """``branches``: one row per live run's branch — its agent, repository, how far ahead
    of and behind its base, its ``+/−``, pushed or merged, and the runs it clashes with."""
    if not changes:
        return "No branches: no agent works on a repository now."
    rows = [
        "| agent | branch | repo | ahead | behind | +/− | upstream | clashes |",
        "|---|---|---|---:|---:|---|---|---|",
    ]
    for c in changes:
        ahead = len(c.commits) + c.more_commits
        state = "merged" if c.merged else ("pushed" if c.pushed else "not pushed")
        if not c.applies:
            state += ", conflicts"
        clashes = ", ".join(said(clash.agent, 40) for clash in c.clashes) or "—"
        rows.append(
            f"| {said(c.agent, 40)} | {said(c.branch, 80)} | {said(c.repo, 40)} | {ahead} | "
            f"{c.base_moved} | +{c.added} {MINUS}{c.removed} | {state} | {clashes} |"
        )
    return "\n".join(rows)


def landed(result: Landed, agent: str = "") -> str:
    """What ``merge`` did: the base's new commit, or why nothing changed — and, when files
    conflict, how ``agent`` brings its branch up to the base so the next merge applies."""
    base = said(result.base_ref)
    if result.new_sha is None or result.refused is not None:
        text = f"Not merged into {base}: {said(result.refused or 'refused', WHY_CAP)}."
        if result.conflicts:
            text += f" Conflicting files: {_names(result.conflicts)}."
        text += " Nothing was changed: the upstream and the branch are as they were."
        if result.conflicts and is_agent_name(agent) and is_base_name(result.base_ref):
            text += "\n\n" + _resolve_step(agent, result.base_ref)
        return text
    return f"Merged into {base} ({said(result.strategy, 20)}): it is now at {sha(result.new_sha)}."


def is_base_name(name: str) -> bool:
    """Whether ``name`` is a branch name that can go into a suggested command as it is."""
    return ref_problem(name) is None


def _resolve_step(agent: str, base: str) -> str:
    """The commands that land a branch whose change conflicts with its base: the agent's
    next run (on the same branch) merges the base in and resolves, then ``merge`` again."""
    ask = (
        f"git fetch origin, merge origin/{base} into your branch, resolve the conflicts, "
        "commit and push"
    )
    return (
        f'Next: `spawn {agent} --prompt "{ask}"` — its next run goes on on this branch and '
        f"its checkout fetches the new {base} from Fleetwarden — then `merge {agent}` again. "
        f"(`diff {agent} FILE` shows its side of a file.)"
    )


def sha(value: str) -> str:
    """A commit id as inline code: its first 10 hex digits (nothing else shows)."""
    digits = "".join(c for c in value[:40] if c in hexdigits)[:10]
    return f"`{digits}`" if digits else "—"


def size(n: int) -> str:
    """Bytes in the unit that reads best."""
    for unit, step in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= step:
            return f"{n / step:.1f} {unit}"
    return f"{n} bytes"


def _base(change: Change) -> str:
    moved = _count(change.base_moved, "commit")
    since = (
        "it has not moved since"
        if change.base_moved == 0
        else f"it has moved {moved} since (now {sha(change.base_sha)})"
    )
    return f"Forked from {said(change.base_ref)} at {sha(change.fork_sha)}; {since}."


def _applies(change: Change) -> str:
    if change.applies:
        return f"Applies cleanly to {said(change.base_ref)}."
    conflicts = f": {_names(change.conflicts)}" if change.conflicts else ""
    return f"⚠ Conflicts with {said(change.base_ref)}{conflicts}."


def _clash(clash: Clash) -> str:
    files = _names(clash.files) if clash.files else "the same lines"
    return f"⚠ Clashes with **{said(clash.agent, 40)}** ({said(clash.branch, 80)}) in {files}."


def refused_all(change: Change) -> bool:
    """Whether the git door refused the run's push and none of its commits reached the
    branch (a run's change only)."""
    return change.arrived is False and bool(change.refused)


def _where_it_is(change: Change) -> str:
    if change.merged:
        return "Merged."
    if change.pushed and refused_all(change):
        return "The upstream has the branch as it was before this run."
    if change.pushed:
        return "Pushed to the upstream."
    if change.unpushed:
        return f"Not pushed: {said(change.unpushed.rstrip('.'), HELD_CAP)}."
    name = change.agent if is_agent_name(change.agent) else "NAME"
    return f"Not pushed: nothing reaches the upstream until `push {name}` or `merge {name}`."


def _commits(commits: Sequence[CommitLine], more: int) -> str:
    shown = [f"{sha(c.sha)} {said(c.subject, SUBJECT_CAP)}" for c in commits[:COMMITS_SHOWN]]
    rest = len(commits) - len(shown) + more
    return "; ".join(shown) + (f"; … and {rest} more" if rest > 0 else "")


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(said(name, PATH_CAP) for name in names[:NAMES_SHOWN])
    rest = len(names) - NAMES_SHOWN
    return shown + (f" and {rest} more" if rest > 0 else "")


def _lines(f: FileStat) -> str:
    if f.added is None or f.removed is None:
        return "(binary)"
    return f"+{f.added} {MINUS}{f.removed}"


def _status(letter: str) -> str:
    return {"A": "added", "D": "deleted", "R": "renamed", "C": "copied"}.get(letter[:1], "changed")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _diff_lines(diff: str) -> list[str]:
    """The diff's lines as a code block shows them: a line's CR (a CRLF file) dropped,
    invisible characters shown as code points, long runs of backticks counted."""
    lines = diff.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    shown = []
    for line in lines:
        line = reveal(line.removesuffix("\r"))
        shown.append(_TICKS.sub(lambda run: f"⟪{len(run.group(0))} backticks⟫", line))
    return shown
