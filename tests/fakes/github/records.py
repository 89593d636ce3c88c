"""The records the fake GitHub keeps: accounts, repositories (with their branches, files,
collaborators, issues and check runs), issues and pull requests, comments, reviews.

A repository may be linked to a real bare git repository (``git_dir``): its branches and
files are then read from git, and deleting a branch deletes the ref there, so the fake
and a real ``git http-backend`` upstream agree.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

ReviewState = Literal["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "PENDING"]
RepoPermission = Literal["admin", "maintain", "write", "triage", "read"]


@dataclass
class Account:
    login: str
    id: int
    type: str = "User"


class Accounts:
    """Every login the fake has seen, made on first sight."""

    def __init__(self, ids: Iterable[int]) -> None:
        self._ids = iter(ids)
        self._by: dict[str, Account] = {}

    def find(self, login: str) -> Account | None:
        """The account of ``login`` if the fake has seen it."""
        return self._by.get(login.casefold())

    def get(self, login: str, kind: str = "User") -> Account:
        key = login.casefold()
        if key not in self._by:
            self._by[key] = Account(login, next(self._ids), kind)
        return self._by[key]


@dataclass
class Comment:
    id: int
    number: int
    author: str
    body: str
    created_at: datetime
    updated_at: datetime


@dataclass
class Review:
    id: int
    author: str
    state: ReviewState
    body: str
    commit_id: str
    submitted_at: datetime | None


@dataclass
class IssueEvent:
    """A label or assignee given to or taken from an issue (``event``: ``labeled``,
    ``unlabeled``, ``assigned``, ``unassigned``) by ``actor``; ``name`` the label's or
    the assignee's."""

    id: int
    event: str
    name: str
    actor: str
    created_at: datetime


@dataclass
class Pull:
    id: int
    head: str
    base: str
    head_sha: str
    base_sha: str
    draft: bool
    requested: list[str] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    merged_at: datetime | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None


@dataclass
class Issue:
    """An issue, or a pull request (``pull`` set): they share numbers, as on GitHub."""

    number: int
    id: int
    title: str
    body: str | None
    author: str
    labels: list[str]
    assignees: list[str]
    created_at: datetime
    updated_at: datetime
    state: Literal["open", "closed"] = "open"
    state_reason: str | None = None
    closed_at: datetime | None = None
    comments: list[Comment] = field(default_factory=list)
    pull: Pull | None = None
    events: list[IssueEvent] = field(default_factory=list)


@dataclass
class CheckRun:
    id: int
    head_sha: str
    name: str
    status: str
    conclusion: str | None
    title: str | None
    summary: str | None
    started_at: datetime | None
    completed_at: datetime | None


def _git(git_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], capture_output=True, check=check, timeout=30
    )


@dataclass
class Repo:
    owner: str
    name: str
    id: int
    created_at: datetime
    default_branch: str = "main"
    private: bool = False
    collaborators: dict[str, RepoPermission] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # branch → path → bytes
    issues: dict[int, Issue] = field(default_factory=dict)
    check_runs: dict[int, CheckRun] = field(default_factory=dict)
    deleted_branches: list[str] = field(default_factory=list)
    git_dir: Path | None = None
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.name}"

    def label_id(self, name: str) -> int:
        return self.labels.setdefault(name, 5_000_000 + self.id * 1000 + len(self.labels))

    def association(self, login: str) -> str:
        if login.casefold() == self.owner.casefold():
            return "OWNER"
        if any(who.casefold() == login.casefold() for who in self.collaborators):
            return "COLLABORATOR"
        return "NONE"

    def permission_of(self, login: str) -> RepoPermission | None:
        if login.casefold() == self.owner.casefold():
            return "admin"
        for who, level in self.collaborators.items():
            if who.casefold() == login.casefold():
                return level
        return None

    def all_branches(self) -> dict[str, str]:
        if self.git_dir is None:
            return dict(self.branches)
        listed = _git(
            self.git_dir, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/"
        )
        found = {}
        for line in listed.stdout.decode().splitlines():
            ref, _, sha = line.rpartition(" ")
            found[ref.removeprefix("refs/heads/")] = sha
        return found

    def branch_sha(self, name: str) -> str | None:
        return self.all_branches().get(name)

    def sync_heads(self) -> None:
        """Move each open pull request's head to its branch's tip, as GitHub does on a push
        (a pull request's head is its branch's current tip; only for a repository linked
        to git, whose branches move outside the fake)."""
        if self.git_dir is None:
            return
        tips = self.all_branches()
        for item in self.issues.values():
            pull = item.pull
            if pull is not None and item.state == "open" and pull.head in tips:
                pull.head_sha = tips[pull.head]

    def resolve(self, ref: str | None) -> str | None:
        """The branch (or commit) ``ref`` names, as a key for :meth:`read`."""
        ref = ref or self.default_branch
        if ref in self.all_branches() or (self.git_dir is not None and self.has_commit(ref)):
            return ref
        by_sha = {sha: branch for branch, sha in self.all_branches().items()}
        return by_sha.get(ref)

    def has_commit(self, sha: str) -> bool:
        if self.git_dir is not None:
            return (
                _git(self.git_dir, "cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode
                == 0
            )
        known = set(self.branches.values())
        known.update(i.pull.head_sha for i in self.issues.values() if i.pull is not None)
        return sha in known

    def delete_branch(self, name: str) -> bool:
        if self.git_dir is not None:
            if name not in self.all_branches():
                return False
            _git(self.git_dir, "update-ref", "-d", f"refs/heads/{name}")
        elif self.branches.pop(name, None) is None:
            return False
        self.files.pop(name, None)
        self.deleted_branches.append(name)
        return True

    def read(self, path: str, ref: str) -> bytes | dict[str, bytes | None] | None:
        """The file at ``path`` on ``ref``, a folder's children (path → bytes, None for a
        folder), or None when there is nothing there."""
        path = path.strip("/")
        if self.git_dir is not None:
            return self._read_git(path, ref)
        tree = self.files.get(ref, {})
        if path in tree:
            return tree[path]
        prefix = f"{path}/" if path else ""
        children: dict[str, bytes | None] = {}
        for name, data in tree.items():
            if name.startswith(prefix):
                head, _, rest = name[len(prefix) :].partition("/")
                children[prefix + head] = None if rest else data
        return children or None

    def _read_git(self, path: str, ref: str) -> bytes | dict[str, bytes | None] | None:
        assert self.git_dir is not None
        spec = f"{ref}:{path}"
        kind = _git(self.git_dir, "cat-file", "-t", spec, check=False)
        if kind.returncode != 0:
            return None
        if kind.stdout.strip() == b"blob":
            return _git(self.git_dir, "cat-file", "blob", spec).stdout
        listed = _git(self.git_dir, "ls-tree", "-z", spec).stdout.split(b"\0")
        children: dict[str, bytes | None] = {}
        for entry in filter(None, listed):
            meta, _, name = entry.partition(b"\t")
            child = f"{path}/{name.decode()}" if path else name.decode()
            is_tree = meta.split()[1] == b"tree"
            children[child] = (
                None if is_tree else _git(self.git_dir, "cat-file", "blob", f"{ref}:{child}").stdout
            )
        return children
