"""The git door's pre-receive hook: what a line's door repo accepts of an agent's push —
a fast-forward of the line's own branch whose new commits add no secret and, unless the
repository lets runs change CI, touch no workflow — and the words it refuses the rest with.

git runs :func:`main` in the door repo (``core.hooksPath``, :mod:`fleet.repos.door.line_repo`)
with ``<old> <new> <ref>`` lines on stdin and the pushed objects still in quarantine, seen
through the environment git gives it. The policy is the repo's ``fleetwarden.*`` config.
Refused: any ref but ``fleetwarden.branch``, a tag, a delete, a push that is not a
fast-forward; a new commit (one no ref of this repo or of the mirror reaches) that adds a
line the redactor's credential shapes find (gitleaks' rules and detect-secrets', see
:mod:`fleet.redaction.shapes`) — named by commit, file, line and rule, never the value —
or, unless ``fleetwarden.workflows`` is true, that adds, changes or deletes anything under
``.github/workflows/`` or ``.gitea/workflows/`` (:mod:`fleet.repos.hook.scan` reads the new
commits). A push past the scan's caps is refused too, never let through unscanned; so is
one the hook could not check.

What it says goes to stderr, which the agent reads as ``remote: …`` lines, and says what to
do instead (:mod:`fleet.repos.hook.refusals`); each refusal is also appended to
``fleetwarden/refusals.jsonl`` for the door to count. Everything read from the push (refs,
paths, lines) is the agent's text.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fleet.repos.hook import ci_paths
from fleet.repos.hook.commits import breaches, read_commits
from fleet.repos.hook.objects import new_objects, not_carried, tree_names
from fleet.repos.hook.policy import MAX_REFUSALS_FILE, REFUSALS, Policy
from fleet.repos.hook.refusals import (
    Refusal,
    breach_refusal,
    foreign_refusal,
    secret_refusal,
    shown,
    workflow_refusal,
)
from fleet.repos.hook.scan import (
    GIT_TIMEOUT,
    TooBig,
    find_secrets,
    foreign_parents,
    git_argv,
    new_commits,
    run_git,
    scan,
    shapes,
)

ZERO: Final = "0" * 40


@dataclass(frozen=True, slots=True)
class Update:
    """One ref a push asks to move: from ``old`` to ``new`` (40 zeros: none)."""

    old: str
    new: str
    ref: str


def parse_updates(text: str) -> list[Update]:
    """The ``<old> <new> <ref>`` lines git gives a pre-receive hook."""
    updates = []
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3:
            updates.append(Update(*parts))
    return updates


def ref_refusal(update: Update, policy: Policy) -> Refusal | None:
    """Why ``update`` is refused by the ref rules alone (not the fast-forward), or None."""
    ref, mine = update.ref, policy.branch
    short = mine.removeprefix("refs/heads/")
    push = f"git push origin HEAD:{short}"
    if ref.startswith("refs/tags/"):
        return Refusal(
            ref,
            "tag",
            "a tag",
            f"tags are not taken here. Push your commits to your branch: {push}.",
        )
    if update.new == ZERO:
        return Refusal(
            ref,
            "delete",
            "a delete",
            "deleting a branch is not allowed here. Nothing to do: an operator discards "
            "a run's branch from chat.",
        )
    if ref != mine:
        return Refusal(
            ref,
            "ref",
            "not its branch",
            f"you may push only to your own branch, {short}: {push}. An operator "
            "merges it into other branches from chat.",
        )
    return None


def check_commits(
    ref: str, commits: list[str], policy: Policy, old: str = ZERO, new: str = ZERO
) -> list[Refusal]:
    """What the new ``commits`` of ``ref`` (from ``old`` to ``new``) break: a parent, a tree
    or a blob the line never had and the push did not carry, CI paths touched (by a commit,
    or by the push as a whole), secrets added (in a file, a file's name, a commit's headers
    or message), an author or committer not the agent's, provenance it may not state."""
    foreign = foreign_parents(commits)
    if foreign:
        commit, parent = foreign[0]
        what = (
            f"commit {commit[:12]}, from a branch this line never had,"
            if commit == parent
            else f"commit {commit[:12]} has a parent ({parent[:12]}) this line never had:"
        )
        return [
            Refusal(
                ref,
                "ref",
                f"merges a commit the branch never had ({parent[:12]} in {commit[:12]})",
                f"{what} neither on your branch nor on its base. Merge only what you "
                "fetched from origin, or rebase onto it (git pull --rebase origin), then push "
                "again.",
            )
        ]
    objects = new_objects(new) if new != ZERO else []
    missing = not_carried(objects)
    if missing:
        return [foreign_refusal(ref, [o.path or o.sha[:12] for o in missing])]
    ci = None if policy.workflows else _ci_rule(policy)
    touched, finds = scan(commits, ci)
    if ci is not None and old != ZERO and new != ZERO and not touched:
        touched = _net_workflows(old, new, policy, ci)
    refusals = [workflow_refusal(ref, touched)] if touched else []
    read = list(read_commits(commits))
    texts = [line for commit in read for line in commit.lines()]
    finds += find_secrets([*texts, *tree_names(objects, new)], shapes())
    if finds:
        refusals.append(secret_refusal(ref, finds))
    broken = [b for commit in read for b in breaches(commit, policy)]
    if broken:
        refusals.append(breach_refusal(ref, broken, policy))
    return refusals


def _ci_rule(policy: Policy) -> Callable[[str], bool]:
    """Whether a path is CI for this line: the built-in places, the repository's list, and
    what the base's own pipelines run by reference."""
    extra = (*policy.ci_paths, *_referenced(policy.base))
    return lambda path: ci_paths.ci_path(path, extra)


def _referenced(base: str) -> set[str]:
    """What the base's own pipelines run by reference (:func:`ci_paths.referenced`)."""
    if not base.startswith("refs/heads/"):
        return set()
    code, names = run_git("ls-tree", "-r", "-z", "--name-only", base, ok=(0, 128))
    if code != 0:
        return set()
    listed = {name.lower(): name for name in names.split("\0") if name}

    def read(path: str) -> bytes | None:
        name = listed.get(path)
        if name is None:
            return None
        done = subprocess.run(
            git_argv("cat-file", "blob", f"{base}:{name}"),
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
        return done.stdout if done.returncode == 0 else None

    return ci_paths.referenced(read, ci_paths.roots(listed.values()))


def _net_workflows(
    old: str, new: str, policy: Policy, ci: Callable[[str], bool]
) -> list[tuple[str, str]]:
    """CI paths the push changes as a whole (from ``old``) that the branch also
    changes against its base: what no single commit shows (a merge taking a side's tree)
    and the base did not bring."""

    def changed(one: str) -> set[str]:
        _, names = run_git("diff-tree", "-r", "-z", "--name-only", "--no-renames", one, new)
        return {path for path in names.split("\0") if path and ci(path)}

    moved = changed(old)
    _, refs = run_git("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/")
    for line in refs.splitlines():
        sha, _, ref = line.partition(" ")
        if ref != policy.branch and moved:
            moved &= changed(sha)
    return [(new, path) for path in sorted(moved)]


def check(updates: Sequence[Update], policy: Policy) -> list[Refusal]:
    """Every refusal of this push (none: it is taken)."""
    refusals: list[Refusal] = []
    for update in updates:
        refused = ref_refusal(update, policy)
        if refused is not None:
            refusals.append(refused)
            continue
        if update.old != ZERO:
            code, _ = run_git("merge-base", "--is-ancestor", update.old, update.new, ok=(0, 1))
            if code != 0:
                short = update.ref.removeprefix("refs/heads/")
                refusals.append(
                    Refusal(
                        update.ref,
                        "force",
                        "not a fast-forward (a force push)",
                        "not a fast-forward: the branch has commits yours lacks, and a force "
                        f"push is not allowed. Fetch and rebase onto it (git pull --rebase "
                        f"origin {short}), then push again without --force.",
                    )
                )
                continue
        try:
            refusals += check_commits(
                update.ref, new_commits(update.new), policy, update.old, update.new
            )
        except TooBig as exc:
            refusals.append(
                Refusal(
                    update.ref,
                    "too-big",
                    f"too much to check: {exc}",
                    f"{exc}. Push your work in smaller steps: an earlier commit first "
                    f"(git push origin <commit>:{update.ref}), then the next.",
                )
            )
    return refusals


def read_policy() -> Policy | None:
    """The door repo's ``fleetwarden.*`` config; None when it names no branch."""
    _, out = run_git("config", "--get-regexp", r"^fleetwarden\.", ok=(0, 1))
    values: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        values.setdefault(key, []).append(value)
    return Policy.read(values)


def record(repo: Path, refusals: Sequence[Refusal]) -> None:
    """Append ``refusals`` to the repo's refusals file, for the door to count."""
    target = repo / REFUSALS
    target.parent.mkdir(mode=0o700, exist_ok=True)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(target, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_size > MAX_REFUSALS_FILE:
            return
        at = int(time.time())
        lines = "".join(
            json.dumps({"ref": shown(r.ref, 200), "why": r.why, "kind": r.kind, "at": at}) + "\n"
            for r in refusals
        )
        os.write(fd, lines.encode("utf-8", errors="replace"))
    finally:
        os.close(fd)


def say(refusals: Sequence[Refusal]) -> str:
    """What the agent reads of a refused push."""
    out = ["", "Fleetwarden's git door refused this push; nothing of it was taken:"]
    for refusal in refusals:
        out.append(f"  {shown(refusal.ref, 200)}: {refusal.tell}")
    out.append("")
    return "\n".join(out) + "\n"


def main() -> int:
    """Run as git's pre-receive hook: 0 takes the push, 1 refuses it (stderr says why)."""
    try:
        policy = read_policy()
        updates = parse_updates(sys.stdin.read())
        if policy is None:
            refusals = [
                Refusal(u.ref, "ref", "no branch configured", "this repository takes no pushes.")
                for u in updates
            ]
        else:
            refusals = check(updates, policy)
        if not refusals:
            return 0
        sys.stderr.write(say(refusals))
        record(Path(os.environ.get("GIT_DIR", ".")).resolve(), refusals)
    except Exception as exc:  # refuse what could not be checked, never let it through
        sys.stderr.write(
            "\nFleetwarden's git door could not check this push "
            f"({type(exc).__name__}); nothing of it was taken. Push again; if this goes on, "
            "tell the operator.\n"
        )
    sys.stderr.flush()
    return 1
