"""A repository laid out as Fleetwarden keeps one, with real git in a temporary directory:
an upstream, its mirror, the scratch repo and line repos (bare, alternates naming the
mirror's objects, their own refs), and a work clone the tests make commits in."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fleet.repos import git as g

Files = Mapping[str, bytes | str | None]  # path → content (None: delete it)


def env() -> dict[str, str]:
    return g.base_env({"GIT_COMMITTER_NAME": "Tester", "GIT_COMMITTER_EMAIL": "t@example.org"})


def run(repo: Path, *args: str, extra: Mapping[str, str] | None = None) -> str:
    """``git -C repo ARGS``, its output."""
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        env={**env(), **(extra or {})},
        check=True,
        capture_output=True,
        timeout=60,
    )
    return done.stdout.decode("utf-8", errors="replace").strip()


@dataclass(frozen=True)
class Line:
    """One line: its door repo, branch and fork."""

    agent: str
    repo: Path
    branch: str
    fork: str

    def tip(self) -> str:
        return run(self.repo, "rev-parse", f"refs/heads/{self.branch}")


@dataclass(frozen=True)
class Rig:
    """The upstream, the mirror, the scratch repo, and a work clone for making commits."""

    root: Path
    upstream: Path
    mirror: Path
    scratch: Path
    work: Path

    @classmethod
    def make(cls, root: Path, files: Files) -> Rig:
        rig = cls(
            root,
            root / "upstream.git",
            root / "repos" / "demo" / "mirror.git",
            root / "repos" / "demo" / "scratch.git",
            root / "work",
        )
        run(root, "init", "-q", "--bare", "-b", "main", str(rig.upstream))
        run(root, "init", "-q", "-b", "main", str(rig.work))
        rig.commit(files, "initial")
        run(rig.work, "push", "-q", str(rig.upstream), "main")
        run(root, "init", "-q", "--bare", "-b", "main", str(rig.mirror))
        run(rig.mirror, "config", "remote.upstream.url", str(rig.upstream))
        rig.sync()
        run(root, "init", "-q", "--bare", "-b", "main", str(rig.scratch))
        _alternate(rig.scratch, rig.mirror)
        return rig

    def commit(self, files: Files, message: str, author: str = "Agent") -> str:
        """Write ``files`` in the work clone and commit them on its current branch."""
        for name, content in files.items():
            path = self.work / name
            if content is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        run(self.work, "add", "-A")
        who = {"GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": f"{author.lower()}@example.org"}
        run(self.work, "commit", "-q", "--allow-empty", "-m", message, extra=who)
        return run(self.work, "rev-parse", "HEAD")

    def on_base(self, files: Files, message: str = "base moves") -> str:
        """A commit on the upstream's main, fetched into the mirror."""
        run(self.work, "checkout", "-q", "main")
        run(self.work, "pull", "-q", "--ff-only", str(self.upstream), "main")
        sha = self.commit(files, message)
        run(self.work, "push", "-q", str(self.upstream), "main")
        self.sync()
        return sha

    def sync(self) -> None:
        """The mirror's fetch of the upstream."""
        run(self.mirror, "fetch", "-q", "--prune", "upstream", "+refs/heads/*:refs/heads/*")

    def base(self) -> str:
        return run(self.mirror, "rev-parse", "refs/heads/main")

    def line(self, agent: str, number: int) -> Line:
        """A new line cut from the mirror's main: its door repo and branch."""
        repo = self.root / "repos" / "demo" / "lines" / agent / f"{number}.git"
        run(self.root, "init", "-q", "--bare", "-b", "main", str(repo))
        _alternate(repo, self.mirror)
        fork = self.base()
        branch = f"fw/{agent}/{number}"
        run(repo, "update-ref", "refs/heads/main", fork)
        run(repo, "update-ref", f"refs/heads/{branch}", fork)
        return Line(agent, repo, branch, fork)

    def work_on(self, line: Line, files: Files, message: str = "work") -> str:
        """A commit on ``line``'s branch, pushed to its door repo as the agent would."""
        run(self.work, "fetch", "-q", str(self.upstream), "+refs/heads/*:refs/remotes/up/*")
        run(self.work, "checkout", "-q", "-B", line.branch, line.tip())
        sha = self.commit(files, message)
        run(self.work, "push", "-q", str(line.repo), f"HEAD:refs/heads/{line.branch}")
        return sha

    def refs(self) -> dict[str, str]:
        """Every ref of every repository here, and the scratch repo's worktrees."""
        seen: dict[str, str] = {}
        repos = [self.upstream, self.mirror, self.scratch]
        repos += sorted((self.root / "repos" / "demo" / "lines").glob("*/*.git"))
        for repo in repos:
            for line in run(repo, "for-each-ref", "--format=%(refname) %(objectname)").split("\n"):
                if line:
                    name, sha = line.rsplit(" ", 1)
                    seen[f"{repo.relative_to(self.root)}:{name}"] = sha
        worktrees = self.scratch / "worktrees"
        seen["worktrees"] = " ".join(sorted(os.listdir(worktrees)) if worktrees.exists() else [])
        return seen


def _alternate(repo: Path, mirror: Path) -> None:
    info = repo / "objects" / "info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "alternates").write_text(f"{(mirror / 'objects').resolve()}\n")
