"""A fake Gitea repository's branches and files read from a real bare git repository.

:meth:`tests.fakes.gitea.api.FakeGitea.link_git` puts these two mappings in place of a
repository's in-memory ``branches`` and ``files``: every lookup asks ``git`` (argument
lists, never a shell), so what a client pushed to the real upstream is what the fake
serves, and deleting a branch deletes it there (``git update-ref -d``). Inventing a branch
or a file is refused: a test commits to the bare repository instead.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Final

_SHA: Final = re.compile(r"[0-9a-f]{40}")


class LinkedToGit(Exception):
    """A seeding helper tried to invent a branch or file of a git-linked repository."""


def git(git_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """``git --git-dir=GIT_DIR ARGS…``, its output captured."""
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], capture_output=True, check=check, timeout=30
    )


class GitBranches(MutableMapping[str, str]):
    """A bare repository's branches: name → tip sha, read afresh on every lookup."""

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = git_dir

    def _all(self) -> dict[str, str]:
        listed = git(self.git_dir, "for-each-ref", "--format=%(objectname) %(refname)",
                     "refs/heads/")  # fmt: skip
        found = {}
        for line in listed.stdout.decode().splitlines():
            sha, _, ref = line.partition(" ")
            found[ref.removeprefix("refs/heads/")] = sha
        return found

    def __getitem__(self, name: str) -> str:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __setitem__(self, name: str, sha: str) -> None:
        if not _SHA.fullmatch(sha) or not self.has_commit(sha):
            raise LinkedToGit(f"branch {name!r}: commit it to {self.git_dir} first")
        git(self.git_dir, "update-ref", f"refs/heads/{name}", sha)

    def __delitem__(self, name: str) -> None:
        if name not in self._all():
            raise KeyError(name)
        git(self.git_dir, "update-ref", "-d", f"refs/heads/{name}")

    def has_commit(self, sha: str) -> bool:
        return git(self.git_dir, "cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0


class GitTree(MutableMapping[str, bytes]):
    """The files (path → bytes) of one branch, as its tip holds them now."""

    def __init__(self, git_dir: Path, branch: str) -> None:
        self.git_dir = git_dir
        self.ref = f"refs/heads/{branch}"

    def __getitem__(self, path: str) -> bytes:
        spec = f"{self.ref}:{path}"
        kind = git(self.git_dir, "cat-file", "-t", spec, check=False)
        if not path or kind.returncode != 0 or kind.stdout.strip() != b"blob":
            raise KeyError(path)
        return git(self.git_dir, "cat-file", "blob", spec).stdout

    def __iter__(self) -> Iterator[str]:
        listed = git(self.git_dir, "ls-tree", "-r", "-z", "--name-only", self.ref, check=False)
        return iter([name.decode() for name in listed.stdout.split(b"\0") if name])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __setitem__(self, path: str, data: bytes) -> None:
        raise LinkedToGit(f"file {path!r}: commit it to {self.git_dir} instead")

    def __delitem__(self, path: str) -> None:
        raise LinkedToGit(f"file {path!r}: remove it in {self.git_dir} instead")


class GitFiles(MutableMapping[str, MutableMapping[str, bytes]]):
    """Branch → its :class:`GitTree`, for the branches the repository has now."""

    def __init__(self, branches: GitBranches) -> None:
        self.branches = branches

    def __getitem__(self, branch: str) -> MutableMapping[str, bytes]:
        if branch not in self.branches:
            raise KeyError(branch)
        return GitTree(self.branches.git_dir, branch)

    def __iter__(self) -> Iterator[str]:
        return iter(self.branches)

    def __len__(self) -> int:
        return len(self.branches)

    def __setitem__(self, branch: str, files: MutableMapping[str, bytes]) -> None:
        raise LinkedToGit(f"branch {branch!r}: commit it to {self.branches.git_dir} instead")

    def __delitem__(self, branch: str) -> None:
        if branch not in self.branches:
            raise KeyError(branch)
        raise LinkedToGit(f"branch {branch!r}: delete the branch, its files go with it")
