"""The review agents' checkouts: a reviewer's read-only checkout of another line's commit,
made at its launch and removed when its run ends.

A review cuts and keeps no line of its own: its checkout is detached at the commit, shown
read-only in its sandbox, and nothing of it is harvested or pushed
(:mod:`fleet.repos.line.review` makes and removes it; the change it reads is
:meth:`fleet.repos.service.Repos.line_diff`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from fleet.hosts.schema import LOCAL_HOST
from fleet.ledger.records.lines import LineRecord
from fleet.ledger.stores.code.lines import LinesStore
from fleet.model import AgentSpec
from fleet.repos import git as g
from fleet.repos.desk import RepoError
from fleet.repos.line.review import (
    REVIEW_MARK,
    ReviewCheckout,
    make_review_checkout,
    remove_review_checkout,
)


class Reviews:
    """Review checkouts under ``checkouts`` (one folder a repository, named in
    ``repos``), of the lines ``lines`` keeps, whose door repos ``line_repo`` finds."""

    def __init__(
        self,
        lines: LinesStore,
        line_repo: Callable[[LineRecord], Path],
        checkouts: Path,
        repos: Callable[[], Iterable[str]],
    ) -> None:
        self._lines = lines
        self._line_repo = line_repo
        self._checkouts = checkouts
        self._repos = repos

    async def checkout(self, spec: AgentSpec, review: ReviewCheckout) -> AgentSpec:
        """``spec`` (a review agent's) working in a checkout of its own of ``review``'s
        line, detached at its commit and shown read-only in its sandbox; it cuts and keeps
        no line (its ``repo`` is none for this run), so nothing of it is harvested or
        pushed."""
        line = await self._lines.line(review.line_id)
        if line is None or line.repo != review.repo:
            raise RepoError(f"line {review.line_id} of {review.repo} is not there to review")
        if spec.host != LOCAL_HOST:
            raise RepoError(f"{spec.name} reviews on this machine only, not on {spec.host}")
        dest = review.path_under(self._checkouts, spec.name)
        try:
            await make_review_checkout(self._line_repo(line), dest, review.commit)
        except g.GitFailed as exc:
            said = f"commit {review.commit[:12]} could not be checked out: {exc}"
            raise RepoError(said) from None
        return replace(spec, workdir=dest, repo=None, repo_base=None, workdir_read_only=True)

    async def over(self, agent: str) -> None:
        """``agent``'s review checkouts removed (its run ended)."""
        for repo in self._repos():
            for dest in (self._checkouts / repo).glob(f"{agent}{REVIEW_MARK}*"):
                await remove_review_checkout(dest)
