"""Landing a line on its base: the new base commit made in the scratch repo by the chosen
strategy (squash, rebase or merge), handed to the caller's fast-forward push upstream — or
a refusal naming the conflicting files, with nothing changed anywhere; and the URL a
pushed branch is seen at.

No work tree is used. Squash and merge commit the tree ``git merge-tree --write-tree``
makes of the base and the tip. Rebase replays the line's commits one by one, also with
``merge-tree``: to apply commit C (parent P) onto B, git 2.39's merge-tree has no
``--merge-base``, so it merges C with a commit Fleetwarden makes of B's tree on parent P
— their one merge base is P, which is exactly a cherry-pick — and commits the result on B
with C's author and message. The commits made are in ``scratch.git`` (the line's own
objects in the line repo): the caller pushes from the scratch repo with
``fleet.repos.git.alternates(line_repo)`` in its environment. No ref moves here, in the
mirror, the line repo or the scratch repo; only the caller's push changes the upstream.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from fleet.repos import git as g
from fleet.repos.facts import Landed
from fleet.repos.hook.policy import Issue
from fleet.repos.landing.changes import merge_tree, objects_env
from fleet.repos.landing.messages import SUBJECTS_LISTED, land_message, work_title

Strategy = Literal["squash", "rebase", "merge"]
Push = Callable[[str, str], Awaitable[None]]
REPLAY_LIMIT: Final = 500
_AUTHOR = re.compile(
    rb"(?m)^author (?P<name>[^<\n]*?) ?<(?P<email>[^>\n]*)> (?P<date>\d+ [+-]\d{4})"
)
_SCP = re.compile(r"(?:[A-Za-z0-9._-]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^\s]+)")
_GITLAB: Final = ("gitlab.com",)
_NOT_GITEA: Final = ("bitbucket.org", "dev.azure.com", "ssh.dev.azure.com")


class _Refused(Exception):
    """A land that cannot be made: why, and the files that conflict."""

    def __init__(self, why: str, conflicts: Sequence[str] = ()) -> None:
        super().__init__(why)
        self.why = why
        self.conflicts = tuple(conflicts)


@dataclass(frozen=True, slots=True)
class _Commit:
    """One commit to replay: its parents, tree, author and message (raw)."""

    sha: str
    tree: str
    parents: tuple[str, ...]
    author: dict[str, str]
    message: bytes


@dataclass(frozen=True, slots=True)
class LandWords:
    """What a squash or merge commit says: its subject ``message`` (its first line; the
    branch's one commit's subject, or its name, when empty), then the branch's commit
    subjects, ``footer`` and ``trailers``
    (:func:`fleet.repos.landing.messages.land_message`), naming no issue or pull request
    but ``own`` (the run's)."""

    message: str
    trailers: tuple[str, ...]
    footer: str = ""
    own: tuple[Issue, ...] = ()


async def land(
    scratch: Path,
    mirror: Path,
    line_repo: Path,
    *,
    branch: str,
    base_ref: str,
    strategy: Strategy,
    words: LandWords,
    upstream_push: Push,
) -> Landed:
    """Land ``branch`` of ``line_repo`` on ``base_ref`` (the mirror's tip, fetched just
    before): make the new base commit and push it with ``upstream_push(sha, ref)``.
    A squash or merge commit says ``words`` (:class:`LandWords`). Refuses, changing
    nothing, when it conflicts or holds nothing to land."""

    def refused(why: str, conflicts: Sequence[str] = ()) -> Landed:
        return Landed(base_ref, None, strategy, tuple(conflicts), refused=why)

    base = await g.rev(mirror, f"refs/heads/{base_ref}")
    tip = await g.rev(line_repo, f"refs/heads/{branch}")
    if base is None:
        return refused(f"the upstream has no branch {base_ref}")
    if tip is None:
        return refused(f"{branch} holds no commits yet")
    env = objects_env(scratch, mirror, line_repo)
    if await _is_ancestor(scratch, tip, base, env):
        return refused(f"nothing to land: {base_ref} already holds {branch}")
    if strategy == "rebase":
        try:
            new = await _replay(scratch, base, tip, env)
        except _Refused as exc:
            return refused(exc.why.format(branch=branch, base=base_ref), exc.conflicts)
    else:
        merged = await merge_tree(scratch, base, tip, env)
        if not merged.clean:
            return refused(f"{branch} conflicts with {base_ref}", merged.conflicts)
        if strategy == "squash" and merged.tree == await _tree(scratch, base, env):
            return refused(f"nothing to land: {base_ref} already has {branch}'s changes")
        parents = [base] if strategy == "squash" else [base, tip]
        subjects, more = await _subjects(scratch, base, tip, env)
        title = words.message.strip() or work_title(
            pull_title=None, prompt=None, subjects=subjects, branch=branch, own=words.own
        )
        body = land_message(
            title,
            subjects,
            more=more,
            footer=words.footer,
            trailers=words.trailers,
            own=words.own,
        )
        new = await _commit(scratch, merged.tree, parents, body, env)
    if new == base:
        return refused(f"nothing to land: {base_ref} already has {branch}'s changes")
    await upstream_push(new, f"refs/heads/{base_ref}")
    return Landed(base_ref, new, strategy)


def compare_url(url: str, base: str, branch: str) -> str:
    """Where a pushed ``branch`` is seen: the forge's compare page against ``base`` for
    GitHub, GitLab.com and Gitea-like https URLs, else the URL (without any credential) and
    the branch's name."""
    host, site, path, plain = _where(url)
    owner_repo = path.strip("/").removesuffix(".git")
    refs = f"{quote(base, safe='/')}...{quote(branch, safe='/')}"
    forge = host == "github.com" or (
        plain.startswith("https://") and host not in (*_GITLAB, *_NOT_GITEA)
    )
    if forge and owner_repo.count("/") == 1 and all(owner_repo.split("/")):
        return f"https://{site}/{owner_repo}/compare/{refs}"
    if host in _GITLAB and owner_repo.count("/") >= 1:
        return f"https://{site}/{owner_repo}/-/compare/{refs}"
    return f"{plain} {branch}"


def _where(url: str) -> tuple[str, str, str, str]:
    """The host of ``url``, its web site (host and https port), its path (all empty for a
    local path), and the URL without a credential."""
    if url.startswith("/"):
        return "", "", "", url
    scp = _SCP.fullmatch(url)
    if scp and "://" not in url:
        host = scp["host"].lower()
        return host, host, scp["path"], url
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    netloc = host + (f":{parts.port}" if parts.port else "")
    site = netloc if parts.scheme == "https" else host
    if parts.scheme == "ssh" and parts.username:
        netloc = f"{parts.username}@{netloc}"
    plain = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    if parts.scheme not in ("https", "ssh") and host != "github.com":
        host = ""
    return host, site, parts.path, plain


async def _subjects(repo: Path, base: str, tip: str, env: dict[str, str]) -> tuple[list[str], int]:
    """The subjects of the commits ``tip`` lands on ``base``, oldest first (merges left
    out), at most :data:`SUBJECTS_LISTED`; and how many more there are."""
    ran = await g.git(
        repo,
        ["log", "-z", "--reverse", "--no-merges", "--format=%s", tip, f"^{base}", "--"],
        env=env,
        what="git log",
    )
    found = [s.decode("utf-8", errors="replace") for s in ran.out.split(b"\0") if s]
    return found[:SUBJECTS_LISTED], max(0, len(found) - SUBJECTS_LISTED)


async def _is_ancestor(repo: Path, one: str, two: str, env: dict[str, str]) -> bool:
    ran = await g.git(repo, ["merge-base", "--is-ancestor", one, two], env=env, ok=(0, 1))
    return ran.code == 0


async def _tree(repo: Path, commit: str, env: dict[str, str]) -> str:
    return await g.text(repo, ["rev-parse", "--verify", f"{commit}^{{tree}}"], env=env)


async def _commit(
    repo: Path,
    tree: str,
    parents: Sequence[str],
    message: bytes,
    env: dict[str, str],
    author: dict[str, str] | None = None,
) -> str:
    """A commit of ``tree`` on ``parents``, committed by Fleetwarden (authored by
    ``author`` when given), its message read from stdin."""
    args = ["commit-tree", tree]
    for parent in parents:
        args += ["-p", parent]
    return await g.text(
        repo,
        [*args, "-F", "-"],
        env={**env, **(author or {})},
        stdin=message,
        what="git commit-tree",
    )


async def _replay(scratch: Path, base: str, tip: str, env: dict[str, str]) -> str:
    """The line's commits (its first-parent chain since it left the base, a merge taken
    as its change against its first parent) replayed in order onto ``base``: the new tip.
    A commit whose change is already on the base is dropped, as ``git rebase`` does;
    raises :class:`_Refused` with the files of the first commit that conflicts. Each is
    made anew even where the base has not moved: its author kept, Fleetwarden its
    committer, as a forge's rebase merge does."""
    chain = ["rev-list", "--reverse", "--first-parent", f"--max-count={REPLAY_LIMIT + 1}"]
    shas = (await g.text(scratch, [*chain, tip, f"^{base}"], env=env)).split()
    if len(shas) > REPLAY_LIMIT:
        raise _Refused(f"{{branch}} has more than {REPLAY_LIMIT} commits: squash or merge it")
    onto = base
    onto_tree = await _tree(scratch, base, env)
    for commit in await _read_commits(scratch, shas, env):
        parent = commit.parents[0] if commit.parents else None
        if parent is None:
            raise _Refused(f"{{branch}} holds a root commit ({commit.sha[:12]}): merge it")
        # B's tree on C's parent: its merge base with C (or C's stand-in) is that parent
        ours = await _commit(scratch, onto_tree, [parent], b"replay base\n", env)
        theirs = commit.sha
        if len(commit.parents) > 1:
            theirs = await _commit(scratch, commit.tree, [parent], b"replay merge\n", env)
        merged = await merge_tree(scratch, ours, theirs, env)
        if not merged.clean:
            why = f"{{branch}} does not rebase onto {{base}}: {commit.sha[:12]} conflicts"
            raise _Refused(why, merged.conflicts)
        if merged.tree == onto_tree:
            continue  # already on the base
        onto = await _commit(scratch, merged.tree, [onto], commit.message, env, commit.author)
        onto_tree = merged.tree
    return onto


async def _read_commits(repo: Path, shas: Sequence[str], env: dict[str, str]) -> list[_Commit]:
    """The raw commit objects of ``shas``, parsed (``git cat-file --batch``)."""
    if not shas:
        return []
    ran = await g.git(
        repo,
        ["cat-file", "--batch"],
        env=env,
        stdin="".join(f"{s}\n" for s in shas).encode(),
        what="git cat-file",
    )
    out, pos, commits = ran.out, 0, []
    for sha in shas:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        if len(header) != 3 or header[1] != b"commit":
            raise g.GitFailed("reading a commit", None, f"{sha} is not a commit")
        size = int(header[2])
        body = out[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1
        head, _, message = body.partition(b"\n\n")
        tree, parents = "", []
        for line in head.split(b"\n"):
            if line.startswith(b"tree "):
                tree = line[5:].decode("ascii")
            elif line.startswith(b"parent "):
                parents.append(line[7:].decode("ascii"))
        commits.append(_Commit(sha, tree, tuple(parents), _author(head), message))
    return commits


def _author(head: bytes) -> dict[str, str]:
    """The environment that makes ``commit-tree`` keep a commit's author."""
    found = _AUTHOR.search(head)
    if found is None or not found["name"].strip() or not found["email"].strip():
        return {}  # git would refuse an empty name: Fleetwarden's own then
    return {
        "GIT_AUTHOR_NAME": found["name"].decode("utf-8", errors="replace"),
        "GIT_AUTHOR_EMAIL": found["email"].decode("utf-8", errors="replace"),
        "GIT_AUTHOR_DATE": "@" + found["date"].decode("ascii"),
    }
