"""The words the git door's hook refuses a push with: for each ref refused, why in short
(for the ledger) and what the agent did and does instead — content the line never had,
commits that break provenance (another identity, our trailers, a reference to another
issue), a change to what CI runs, a line that looks like a secret. Everything quoted from
the push is the agent's text: shown without control characters or secret shapes, cut."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from fleet.repos.hook import ci_paths
from fleet.repos.hook.commits import Breach
from fleet.repos.hook.policy import Policy
from fleet.repos.hook.scan import Added, masked

MAX_SHOWN: Final = 20
_UNSAFE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


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


def foreign_refusal(ref: str, paths: list[str]) -> Refusal:
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


def breach_refusal(ref: str, broken: list[Breach], policy: Policy) -> Refusal:
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


def workflow_refusal(ref: str, touched: list[tuple[str, str]]) -> Refusal:
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


def secret_refusal(ref: str, finds: list[tuple[Added, str]]) -> Refusal:
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
