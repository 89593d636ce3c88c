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
do instead; each refusal is also appended to ``fleetwarden/refusals.jsonl`` for the door
to count. Everything read from the push (refs, paths, lines) is the agent's text.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fleet.repos.hook import ci_paths
from fleet.repos.hook.commits import Breach, breaches, read_commits
from fleet.repos.hook.objects import new_objects, not_carried, tree_names
from fleet.repos.hook.policy import MAX_REFUSALS_FILE, REFUSALS, Policy
from fleet.repos.hook.scan import (
    GIT_TIMEOUT,
    Added,
    TooBig,
    find_secrets,
    foreign_parents,
    git_argv,
    masked,
    new_commits,
    run_git,
    scan,
    shapes,
)

ZERO: Final = "0" * 40
MAX_SHOWN: Final = 20
_UNSAFE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class Update:
    """One ref a push asks to move: from ``old`` to ``new`` (40 zeros: none)."""

    old: str
    new: str
    ref: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one ref of a push is refused: ``why`` in short (for the ledger), ``tell`` for
    the agent (what it did and what to do instead)."""

    ref: str
    kind: str
    why: str
    tell: str


def shown(text: str, limit: int = 300) -> str:
    """``text`` (the agent's) without control characters or anything the credential shapes
    take for a secret, cut to ``limit``."""
    clean = _UNSAFE.sub("?", masked(text))
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


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
        return [_foreign_refusal(ref, [o.path or o.sha[:12] for o in missing])]
    ci = None if policy.workflows else _ci_rule(policy)
    touched, finds = scan(commits, ci)
    if ci is not None and old != ZERO and new != ZERO and not touched:
        touched = _net_workflows(old, new, policy, ci)
    refusals = [_workflow_refusal(ref, touched)] if touched else []
    read = list(read_commits(commits))
    texts = [line for commit in read for line in commit.lines()]
    finds += find_secrets([*texts, *tree_names(objects, new)], shapes())
    if finds:
        refusals.append(_secret_refusal(ref, finds))
    broken = [b for commit in read for b in breaches(commit, policy)]
    if broken:
        refusals.append(_breach_refusal(ref, broken, policy))
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


def _foreign_refusal(ref: str, paths: list[str]) -> Refusal:
    listed = ", ".join(shown(p, 120) for p in paths[:MAX_SHOWN])
    more = f" (and {len(paths) - MAX_SHOWN} more)" if len(paths) > MAX_SHOWN else ""
    return Refusal(
        ref,
        "object",
        f"content the line never had (not carried, or another branch's): {listed[:200]}{more}",
        "this push names content that is neither on your branch nor on its base, and that "
        f"it did not send, or that another upstream branch holds: {listed}{more}. Commit "
        "only files you wrote or fetched from origin (git fetch origin), then push again.",
    )


def _breach_refusal(ref: str, broken: list[Breach], policy: Policy) -> Refusal:
    lines = [f"commit {b.commit[:12]}: {shown(b.what, 160)}" for b in broken[:MAX_SHOWN]]
    more = f" (and {len(broken) - MAX_SHOWN} more)" if len(broken) > MAX_SHOWN else ""
    kinds = {b.kind for b in broken}
    fixes: list[str] = []
    base = policy.base.removeprefix("refs/heads/") or "main"
    if "identity" in kinds and policy.identity is not None:
        who = policy.identity
        fixes.append(
            f"Commit as yourself, {who.line()}: your checkout's git config says so (unset "
            "GIT_AUTHOR_* and GIT_COMMITTER_*, put back user.name and user.email if you "
            "changed them), and remake these commits with:\n    git rebase -r --exec "
            f"'git commit --amend --no-edit --reset-author' origin/{base}\n"
        )
    if "trailer" in kinds:
        kept = "".join(
            f"\n    Co-authored-by: {shown(who, 160)}" for who in sorted(policy.co_authors)
        )
        keep = f" (this one may stay:{kept}\n)" if kept else ""
        fixes.append(
            "Take out the Fleetwarden-* and Co-authored-by lines (git rebase -i "
            f"origin/{base}, reword){keep}: Fleetwarden itself writes who ran what, and "
            "credits the person who asked for the run.\n"
        )
    if "reference" in kinds:
        fixes.append(_reference_fix(policy, base))
    if "header" in kinds:
        fixes.append("Make each commit with plain git commit, in UTF-8, with no extra header.\n")
    first = broken[0]
    return Refusal(
        ref,
        "identity" if first.kind == "identity" else "provenance",
        f"commit {first.commit[:12]}: {shown(first.what, 120)}{more}",
        "these commits cannot be taken as they are:\n"
        + "\n".join(f"    {line}" for line in lines)
        + f"{more}\n  "
        + "  ".join(fixes)
        + "  Then push again.",
    )


def _reference_fix(policy: Policy, base: str) -> str:
    """How to take out a reference the door refuses: the ones this run may name, and how
    to write another's number so that no forge links it."""
    own = [f"issue #{policy.issue.number}"] if policy.issue is not None else []
    if policy.pull is not None:
        own.append(f"pull request #{policy.pull.number}")
    may = f"but this run's own ({' and '.join(own)})" if own else "(this run has none of its own)"
    return (
        f"Name no issue or pull request {may}: reword these commits (git rebase -i "
        f"origin/{base}), writing any other number without '#' or 'GH-' before it and with "
        "no closing keyword (fixes, closes, resolves).\n"
    )


def _workflow_refusal(ref: str, touched: list[tuple[str, str]]) -> Refusal:
    lines = [f"commit {c[:12]} changes {shown(p)}" for c, p in touched[:MAX_SHOWN]]
    more = f" (and {len(touched) - MAX_SHOWN} more)" if len(touched) > MAX_SHOWN else ""
    commit, path = touched[0]
    return Refusal(
        ref,
        "workflow",
        f"changes a CI workflow: {shown(path, 120)} in {commit[:12]}{more}",
        "changes to what CI runs are not taken for this repository:\n"
        + "\n".join(f"    {line}" for line in lines)
        + f"{more}\n  (What CI runs: {ci_paths.SUMMARY}.)\n  Take the change out of every "
        "commit you push (git rebase -i), then push again; an operator can allow workflow "
        "changes in the repository's config.",
    )


def _secret_refusal(ref: str, finds: list[tuple[Added, str]]) -> Refusal:
    def where(item: Added) -> str:
        return f"{shown(item.path, 160)}:{item.line}"

    lines = [f"commit {a.commit[:12]} {where(a)}: {shown(rule, 60)}" for a, rule in finds]
    more = f" (and {len(finds) - MAX_SHOWN} more)" if len(finds) > MAX_SHOWN else ""
    first, rule = finds[0]
    return Refusal(
        ref,
        "secret",
        f"adds a secret ({shown(rule, 60)}) at {where(first)} in {first.commit[:12]}{more}",
        "these lines look like secrets (credentials must never be committed):\n"
        + "\n".join(f"    {line}" for line in lines[:MAX_SHOWN])
        + f"{more}\n  Take each out of the commit that adds it — a later commit removing it is "
        "not enough, every commit pushed is checked (git rebase -i, or git reset --soft to "
        "before it and commit again) — read the value from an environment variable "
        "instead, then push again.",
    )


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
