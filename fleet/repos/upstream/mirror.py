"""One repository's copies that only Fleetwarden touches: its mirror of the upstream and its
scratch repo, with the fetches and pushes that reach the upstream.

``mirror.git`` holds the upstream's content only (its branches, fetched with Fleetwarden's
credential, :mod:`fleet.repos.upstream.credentials`): a new checkout copies it, so nothing a run
pushed is ever in it before it is upstream. ``scratch.git`` borrows the mirror's objects
(its alternates) and, per command, a line's (``GIT_ALTERNATE_OBJECT_DIRECTORIES``): the
summaries, clash checks and merges are worked out there, and what they write stays there.
Fetches and pushes of one repository take turns (one lock), and each fetch is fsck'd.
Git's refusals of the upstream are said in Fleetwarden's words
(:mod:`fleet.repos.upstream.git_words`), naming the variable its credential is read from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from fleet.private_files import private_dir
from fleet.repos import git as g
from fleet.repos.desk import RepoError
from fleet.repos.schema import RepoEntry
from fleet.repos.upstream.credentials import CredentialMissing, upstream_env
from fleet.repos.upstream.git_words import Doing, Kind, Said, no_branch, upstream_refused
from fleet.repos.upstream.named import Credential, Upstream, credential_of
from fleet.repos.urls import url_kind

log = logging.getLogger(__name__)

FETCH_LIMIT = 600.0


class Mirror:
    """Repository ``name``'s mirror and scratch repo under ``repos_dir/name``."""

    def __init__(
        self,
        name: str,
        entry: RepoEntry,
        repos_dir: Path,
        environ: Mapping[str, str],
        credential: Credential | None = None,
    ) -> None:
        self.name = name
        self.entry = entry
        # Where its credential comes from, in words (a forge's token, an App's): the config's.
        self.credential = credential or credential_of(name, entry)
        self.dir = repos_dir / name
        self.path = self.dir / "mirror.git"
        self.scratch = self.dir / "scratch.git"
        self.lines = self.dir / "lines"
        self._repos_dir = repos_dir
        self._environ = environ
        self.lock = asyncio.Lock()
        # Told after each fetch (its ready checkouts brought to the base: fleet.repos.line.ready).
        self.fetched: Callable[[], None] | None = None

    def upstream_env(self) -> dict[str, str]:
        """The credential's environment (raises :class:`RepoError` when it is missing)."""
        try:
            return upstream_env(
                self.name,
                self.entry,
                self._environ,
                self._repos_dir,
                user=self.credential.git_user,
            )
        except CredentialMissing as exc:
            raise RepoError(str(exc)) from None

    async def ensure(self) -> None:
        """Make the mirror and the scratch repo if they are not there yet."""
        private_dir(self.dir)
        private_dir(self.lines)
        if not (self.path / "HEAD").exists():
            await g.git(None, ["init", "-q", "--bare", str(self.path)])
            for key, value in (
                ("transfer.fsckObjects", "true"),
                ("fetch.fsckObjects", "true"),
                ("gc.auto", "0"),
                ("core.hooksPath", "/dev/null"),
            ):
                await g.git(self.path, ["config", key, value])
        if not (self.scratch / "HEAD").exists():
            await g.git(None, ["init", "-q", "--bare", str(self.scratch)])
            await g.git(self.scratch, ["config", "core.hooksPath", "/dev/null"])
            await g.git(self.scratch, ["config", "gc.auto", "0"])
        info = self.scratch / "objects" / "info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "alternates").write_text(f"{self.path / 'objects'}\n", encoding="utf-8")

    @property
    def upstream(self) -> Upstream:
        """The upstream, as git's refusals of it are said."""
        return Upstream(self.name, self.entry.url, self.credential)

    def said(
        self, exc: g.GitFailed, doing: Doing, ref: str | None = None, agent: str | None = None
    ) -> Said:
        """Git's refusal ``exc`` of the upstream, in Fleetwarden's words."""
        exists = Path(self.entry.url).exists() if url_kind(self.entry.url) == "local" else None
        return upstream_refused(
            exc.stderr, self.upstream, doing=doing, ref=ref, agent=agent, path_exists=exists
        )

    async def fetch(self) -> None:
        """Bring the mirror's branches to the upstream's (pruned, no tags)."""
        env = self.upstream_env()
        async with self.lock:
            try:
                await g.git(
                    self.path,
                    [
                        "fetch",
                        "-q",
                        "--prune",
                        "--no-tags",
                        "--",
                        self.entry.url,
                        "+refs/heads/*:refs/heads/*",
                    ],
                    env=env,
                    limit=FETCH_LIMIT,
                    what=f"fetching {self.name}",
                )
            except g.GitFailed as exc:
                raise RepoError(self.said(exc, "fetch").text) from None
        if self.fetched is not None:
            self.fetched()

    async def heads(self) -> dict[str, str]:
        """The upstream's branches now (``git ls-remote --heads``), name → commit; raises
        :class:`RepoError` in Fleetwarden's words."""
        env = self.upstream_env()
        try:
            return await self._listed(env)
        except g.GitFailed as exc:
            raise RepoError(self.said(exc, "read").text) from None

    async def check(self) -> Said | None:
        """Why the upstream cannot be read with the credential, or ``None`` when its
        default branch can be (``check-config --online``)."""
        try:
            env = self.upstream_env()
        except RepoError as exc:
            return Said(str(exc), Kind.CREDENTIAL, self.credential.loc)
        try:
            have = await self._listed(env)
        except g.GitFailed as exc:
            return self.said(exc, "read")
        if self.entry.default_branch not in have:
            return no_branch(
                self.upstream, self.entry.default_branch, list(have), key="default_branch"
            )
        return None

    async def _listed(self, env: Mapping[str, str]) -> dict[str, str]:
        ran = await g.git(
            None,
            ["ls-remote", "--heads", "--", self.entry.url],
            env=env,
            limit=60.0,
            what=f"reading {self.name}",
        )
        found = {}
        for line in ran.text.splitlines():
            sha, _, ref = line.partition("\t")
            if ref.startswith("refs/heads/"):
                found[ref.removeprefix("refs/heads/")] = sha.strip()
        return found

    async def tip(self, branch: str) -> str | None:
        """The mirror's ``branch`` tip."""
        return await g.rev(self.path, f"refs/heads/{branch}")

    async def branches(self) -> list[str]:
        """The mirror's branches (the upstream's as last fetched)."""
        ran = await g.git(self.path, ["for-each-ref", "--format=%(refname:strip=2)", "refs/heads/"])
        return [name for name in ran.text.splitlines() if name]

    async def push(
        self, sha: str, ref: str, objects: Sequence[Path] = (), *, agent: str | None = None
    ) -> None:
        """Push commit ``sha`` to the upstream's ``ref`` (``agent``'s line's branch, or a
        base a merge lands on), fast-forward only, from the scratch repo (with
        ``objects``' objects), then fetch so the mirror has it."""
        env = {**self.upstream_env(), **g.alternates(*objects)}
        async with self.lock:
            try:
                await g.git(
                    self.scratch,
                    ["push", "-q", "--no-verify", "--", self.entry.url, f"{sha}:{ref}"],
                    env=env,
                    limit=FETCH_LIMIT,
                    what=f"pushing to {self.name}",
                )
            except g.GitFailed as exc:
                raise RepoError(self.said(exc, "push", ref=ref, agent=agent).text) from None
        await self.fetch()
