"""What Codex's app-server asks, as Fleetwarden's :class:`~fleet.ledger.records.approvals.Ask`, and
the asks an agent's mode and rules answer without asking anyone.

Codex's ``untrusted`` approval policy asks for every command it does not know to be
read-only and for every edit. The modes that ask less are Fleetwarden's answers:

* ``edits``: an edit whose files all lie inside the workdir is accepted, and so is a
  command on Fleetwarden's short list of reading commands, with only the flags listed for
  it and every path inside the workdir (:mod:`fleet.sessions.codex_reads`: ``cat
  notes.txt``, ``ls``, ``rg foo``; measured, Codex asks for ``cat notes.txt`` under
  ``untrusted``). What Codex itself calls a read (its ``commandActions``) is not trusted:
  it calls ``rg --pre sh zzz payload.sh`` a search;
* ``read-only``: such a reading command is accepted, every other ask declined (Codex lets
  an accepted command out of its own sandbox, so nothing else is ever accepted);
* ``allow:`` rules accept, ``deny:`` rules decline, matched as
  :mod:`fleet.permissions.rules` matches them (``Bash(git *)`` against every command of the line
  for an allow, any of them for a deny; ``Edit(src/*)`` against each file, relative to the
  workdir).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleet.ledger.records.approvals import Ask
from fleet.model import PermissionMode
from fleet.permissions.rules import BadRule, first_match, first_refusal, parse_rule
from fleet.sessions import codex_reads
from fleet.transcript.codex import unwrap

COMMAND = "commandExecution"
EDIT = "fileChange"
DIFF_LINES = 40  # lines of the diffs shown with an edit's ask


@dataclass(frozen=True, slots=True)
class Verdict:
    """An ask answered by the agent's mode or rules: allowed or not, and why (the model
    hears a denial's reason)."""

    allows: bool
    reason: str | None = None


def command_ask(native_id: str, params: Mapping[str, Any]) -> Ask:
    """``item/commandExecution/requestApproval`` as an ask: the command line without the
    ``bash -lc`` Codex wraps it in, and Codex's reason when it gave one."""
    subject = unwrap(str(params.get("command") or "")).strip() or "a command"
    detail = str(params.get("reason") or "")
    return Ask(native_id, COMMAND, subject, detail, _pattern("Bash", subject))


def edit_ask(
    native_id: str, params: Mapping[str, Any], item: Mapping[str, Any] | None, cwd: str
) -> Ask:
    """``item/fileChange/requestApproval`` as an ask: its files (from the item Codex
    announced first) and a short diff of each."""
    changes = _changes(item)
    paths = [_relative(str(change.get("path") or ""), cwd) for change in changes]
    subject = ", ".join(paths) or str(params.get("grantRoot") or "files")
    lines: list[str] = []
    reason = params.get("reason")
    if reason:
        lines.append(str(reason))
    for path, change in zip(paths, changes, strict=True):
        kind = _mapping(change.get("kind")).get("type") or "update"
        lines.append(f"{path} ({kind})")
        lines.extend(str(change.get("diff") or "").splitlines())
    cut = len(lines) > DIFF_LINES
    detail = "\n".join(lines[:DIFF_LINES]) + ("\n…" if cut else "")
    return Ask(native_id, EDIT, subject, detail, "Edit")


def reads_only(params: Mapping[str, Any], cwd: str) -> bool:
    """Whether a command approval request is for a command on Fleetwarden's list of reading
    commands (:mod:`fleet.sessions.codex_reads`), run and reading inside ``cwd``."""
    line = unwrap(str(params.get("command") or ""))
    where = os.path.join(cwd, str(params.get("cwd") or cwd))
    return codex_reads.reads_only(line, where, cwd)


def patch_ask(native_id: str, patch: str) -> Ask:
    """Codex's ``apply_patch`` call (its TUI's hook hands over the patch): the files it
    names, the patch's head as the detail."""
    paths = [
        line.split(":", 1)[1].strip()
        for line in patch.splitlines()
        if line.startswith(("*** Add File:", "*** Update File:", "*** Delete File:"))
    ]
    lines = patch.splitlines()
    detail = "\n".join(lines[:DIFF_LINES]) + ("\n…" if len(lines) > DIFF_LINES else "")
    return Ask(native_id, EDIT, ", ".join(paths) or "files", detail, "Edit")


def edit_paths(item: Mapping[str, Any] | None) -> list[str]:
    """The files an announced ``fileChange`` item changes, as Codex wrote them."""
    return [str(change.get("path") or "") for change in _changes(item)]


def judge(
    ask: Ask,
    paths: Sequence[str],
    mode: PermissionMode,
    cwd: str,
    allow: tuple[str, ...],
    deny: tuple[str, ...],
    *,
    reading: bool = False,
) -> Verdict | None:
    """How the agent's rules and mode answer ``ask`` (``paths``: an edit's files;
    ``reading``: a command that only reads inside the workdir), or ``None``: the operator
    is asked."""
    subjects = [_relative(path, cwd) for path in paths] if ask.tool == EDIT else [ask.subject]
    for subject in subjects:
        rule = first_refusal(deny, ask.tool, subject)
        if rule is not None:
            return Verdict(False, f"the agent's rule `{rule}` denies it")
    if reading and mode in (PermissionMode.EDITS, PermissionMode.READ_ONLY):
        return Verdict(True)
    if mode is PermissionMode.READ_ONLY:
        return Verdict(False, "the agent is read-only: it may look, not change anything")
    if subjects and all(first_match(allow, ask.tool, subject) for subject in subjects):
        return Verdict(True)
    if mode is PermissionMode.FULL:
        return Verdict(True)
    edit = mode is PermissionMode.EDITS and ask.tool == EDIT and bool(paths)
    if edit and all(_inside(path, cwd) for path in paths):
        return Verdict(True)
    return None


def _changes(item: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    found = (item or {}).get("changes")
    return [c for c in found if isinstance(c, Mapping)] if isinstance(found, list) else []


def _inside(path: str, cwd: str) -> bool:
    if not path:
        return False
    full = os.path.normpath(os.path.join(cwd, path))
    root = os.path.normpath(cwd)
    return full == root or full.startswith(root.rstrip(os.sep) + os.sep)


def _relative(path: str, cwd: str) -> str:
    return os.path.relpath(os.path.normpath(path), cwd) if _inside(path, cwd) else path


def _pattern(tool: str, subject: str) -> str | None:
    """The rule an ``always`` adds: this exact command; ``None`` when it cannot be one."""
    text = f"{tool}({subject})"
    try:
        parse_rule(text)
    except BadRule:
        return None
    return text


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
