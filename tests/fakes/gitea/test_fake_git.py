"""The strict fake Gitea linked to a real bare git repository: the branches, their tips
and the files it serves are what was pushed there, and a branch deleted through its API
is deleted there too."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.gitea.api import BOT_LOGIN, GITEA_TOKEN, FakeGitea
from tests.fakes.gitea.git import LinkedToGit
from tests.git_upstream import GitUpstream

REPO = "acme/app"
AUTH = {"Authorization": f"token {GITEA_TOKEN}"}


@pytest.fixture
def branched_upstream(tmp_path: Path) -> GitUpstream:
    """A bare ``app`` (a README on ``main``) and a branch ``feature`` one commit ahead."""
    served = GitUpstream(tmp_path / "upstream", "unused-token")
    served.create("app", {"README.md": "# app\n"})
    served.show("app", "branch", "feature", "main")
    served.commit("app", {"docs/NOTES.md": "one\n"}, branch="feature")
    return served


@pytest.fixture
async def gitea(branched_upstream: GitUpstream) -> AsyncIterator[FakeGitea]:
    async with FakeGitea() as fake:
        fake.add_repo(REPO)
        fake.link_git(REPO, branched_upstream.root / "app.git")
        fake.add_collaborator(REPO, BOT_LOGIN, "write")
        yield fake
        assert fake.violations == []


async def _call(fake: FakeGitea, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, fake.api_url + path, headers=AUTH, **kwargs) as response,
    ):
        raw = await response.read()
        return response.status, json.loads(raw) if raw else None


async def _open(fake: FakeGitea, head: str) -> tuple[int, Any]:
    body = {"head": head, "base": "main", "title": "Notes"}
    return await _call(fake, "POST", "/repos/acme/app/pulls", json=body)


async def test_the_branches_and_their_tips_are_the_git_repository_s(
    gitea: FakeGitea, branched_upstream: GitUpstream
) -> None:
    """A pull request from a branch pushed to git opens at its tip, and follows it."""
    tips = {
        "main": branched_upstream.tip("app"),
        "feature": branched_upstream.tip("app", "feature"),
    }
    assert gitea.branches(REPO) == tips
    status, body = await _open(gitea, "missing")
    assert status == 404
    status, body = await _open(gitea, "feature")
    assert status == 201
    assert body["head"]["sha"] == branched_upstream.tip("app", "feature")
    assert body["base"]["sha"] == branched_upstream.tip("app")
    number = body["number"]
    again = branched_upstream.commit("app", {"docs/NOTES.md": "one\ntwo\n"}, branch="feature")
    status, body = await _call(gitea, "GET", f"/repos/acme/app/pulls/{number}")
    assert status == 200 and body["head"]["sha"] == again
    status, listed = await _call(gitea, "GET", "/repos/acme/app/pulls", params={"state": "open"})
    assert status == 200 and [p["head"]["sha"] for p in listed] == [again]
    [pull] = gitea.pulls(REPO)
    assert pull.pull is not None and pull.pull.head_sha == again


async def test_files_are_read_from_the_git_repository(
    gitea: FakeGitea, branched_upstream: GitUpstream
) -> None:
    """A file on a branch, on the default branch, and a folder's listing."""
    status, body = await _call(
        gitea, "GET", "/repos/acme/app/contents/docs/NOTES.md", params={"ref": "feature"}
    )
    assert status == 200 and base64.b64decode(body["content"]) == b"one\n"
    assert body["last_commit_sha"] == branched_upstream.tip("app", "feature")
    status, body = await _call(gitea, "GET", "/repos/acme/app/contents/README.md")
    assert status == 200 and base64.b64decode(body["content"]) == b"# app\n"
    status, _ = await _call(gitea, "GET", "/repos/acme/app/contents/docs/NOTES.md")
    assert status == 404  # not on main
    status, body = await _call(
        gitea, "GET", "/repos/acme/app/contents/docs", params={"ref": "feature"}
    )
    assert status == 200 and [(e["path"], e["type"]) for e in body] == [("docs/NOTES.md", "file")]


async def test_deleting_a_branch_deletes_it_in_git(
    gitea: FakeGitea, branched_upstream: GitUpstream
) -> None:
    """DELETE branches/… runs ``git update-ref -d``; its open pull request closes, as on
    Gitea; the default branch stays."""
    _, body = await _open(gitea, "feature")
    status, _ = await _call(gitea, "DELETE", "/repos/acme/app/branches/feature")
    assert status == 204
    assert branched_upstream.tip("app", "feature") is None
    assert "feature" not in gitea.branches(REPO)
    assert gitea.issue(REPO, body["number"]).state == "closed"
    status, _ = await _call(gitea, "DELETE", "/repos/acme/app/branches/feature")
    assert status == 404
    status, _ = await _call(gitea, "DELETE", "/repos/acme/app/branches/main")
    assert status == 403
    assert branched_upstream.tip("app") is not None


async def test_a_linked_repository_takes_no_invented_branch_or_file(
    gitea: FakeGitea, branched_upstream: GitUpstream, tmp_path: Path
) -> None:
    """What git does not hold, the fake does not make up: a test commits it instead."""
    with pytest.raises(LinkedToGit):
        gitea.add_branch(REPO, "other")
    with pytest.raises(LinkedToGit):
        gitea.add_file(REPO, "new.txt", "x")
    with pytest.raises(LinkedToGit):
        gitea.add_pull(REPO, "other")
    assert set(gitea.branches(REPO)) == {"main", "feature"}
    gitea.add_repo("acme/empty", default_branch="trunk")
    with pytest.raises(ValueError, match="no branch 'trunk'"):
        gitea.link_git("acme/empty", branched_upstream.root / "app.git")
