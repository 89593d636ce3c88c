"""The specs of the repository commands (:mod:`bot.commands.handlers.places.repos`):
``diff``, ``branches``, ``merge``, ``push`` and ``discard``, their arguments, flags and
the words ``help`` shows."""

from __future__ import annotations

from bot.commands.parsing.grammar import ArgSpec, CommandSpec, FlagSpec

_AGENT = ArgSpec(
    "NAME",
    "The agent whose branch it is, e.g. `coder-1` (its newest live branch), or a branch "
    "as `branches` lists it, e.g. `fw/coder-1/12` (an earlier one `spawn --fresh` left).",
)

DIFF = CommandSpec(
    name="diff",
    summary="Show an agent's branch against its base: the diff, or one file's.",
    args=(
        _AGENT,
        ArgSpec("FILE", "One file's diff only, its path in the repository.", required=False),
    ),
    flags=(FlagSpec("stat", "bool", "Only the files, each with its +/−."),),
    description=(
        "The diff of the agent's branch against the base it was cut from, as its commits "
        "have it (work not yet committed is in its `wip` commit once the run ends). It is "
        "the agent's text: shown as code that nothing in it can break out of, redacted, "
        "split to the chat's message size, and cut past about 24,000 characters (`--stat` "
        "and `diff NAME FILE` show the rest)."
    ),
    examples=("diff coder-1 --stat", "diff coder-1 src/app.py"),
)

BRANCHES = CommandSpec(
    name="branches",
    summary="List the runs' branches: ahead, behind, pushed, merged, clashes.",
    args=(ArgSpec("REPO", "Only this repository's branches.", required=False),),
    description=(
        "One row per live branch: its agent and repository, how many commits it is ahead "
        "of its base and how far the base has moved since (each upstream fetched first, "
        "20 s at most; one that cannot be is said below the table, with since when its "
        "counts stand), its lines added and removed, "
        "whether it is pushed or merged, and the other live runs it clashes with. Below: "
        "checkouts without a branch and branches without a checkout (orphans)."
    ),
    examples=("branches", "branches app"),
)

MERGE = CommandSpec(
    name="merge",
    summary="Land an agent's branch on its base upstream.",
    args=(_AGENT,),
    flags=(
        FlagSpec("squash", "bool", "One commit with the branch's whole change."),
        FlagSpec("rebase", "bool", "The branch's commits, replayed on the base."),
        FlagSpec("merge", "bool", "A merge commit, the branch's history kept."),
        FlagSpec("unreviewed", "bool", "Land a tip its review agent did not approve (admin)."),
    ),
    control=True,
    description=(
        "Fetches the base afresh, applies the strategy (the repository's `merge` setting "
        "unless one is given) and pushes the base fast-forward only; the answer is the "
        "base's new commit, its subject naming the work (the pull request's title or the "
        "prompt) and its body listing the branch's commit subjects; the tasks whose work "
        "was on the branch are done, as a forge merge makes them. A change that "
        "conflicts is refused with the files and the way on, and nothing changes. So is "
        "the branch of a forge run whose pull request is open on GitHub or Gitea: merge (or "
        "close) that pull request on the forge, which ends the run. On GitLab, GitLab merges "
        "the run's merge request (a draft made ready) at the head Fleetwarden pushed, and "
        "refuses when the head moved since; its news of the merge ends the run. Merging "
        "into a protected branch (the default branch, and the repository's `protected` "
        "list) needs the admin role. "
        "Where the repository (or its forge) has a `review:` stage and its review agent "
        "approved the branch, only the commit it approved lands: a later commit on it is "
        "refused, saying which commit was approved, until a round approves the tip; "
        "`--unreviewed` lands it as it is, by an admin only, in the audit trail."
    ),
    examples=("merge coder-1 --rebase", "merge fw/coder/1 --unreviewed"),
)

PUSH = CommandSpec(
    name="push",
    summary="Push an agent's branch to the upstream.",
    args=(_AGENT,),
    flags=(FlagSpec("unreviewed", "bool", "Push a tip its review agent did not approve (admin)."),),
    control=True,
    description=(
        "Pushes the run's branch (never another) to the repository's upstream with "
        "Fleetwarden's credential, and answers with where to see it: the forge's compare "
        "page where the upstream is a known forge. A branch its review agent approved is "
        "pushed only at the commit it approved, as `merge` lands it; `--unreviewed` pushes "
        "a later tip, by an admin only, in the audit trail."
    ),
    examples=("push coder-1",),
)

DISCARD = CommandSpec(
    name="discard",
    summary="Remove an agent's checkout and Fleetwarden's copy of its branch.",
    args=(_AGENT,),
    control=True,
    description=(
        "Removes the run's checkout and Fleetwarden's copy of its branch; a copy "
        "Fleetwarden pushed stays on the upstream (the answer says how to delete it there). "
        "While the branch holds commits that "
        "are on no upstream branch it first says how many and acts only on your `yes` in "
        "the same place within 60 s: that work is lost otherwise. The branch of a running "
        "agent is refused at once: `stop` it first."
    ),
    examples=("discard coder-1",),
)
