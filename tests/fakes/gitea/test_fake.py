"""The strict fake Gitea itself: Gitea's authentication answers, its checks of requests
and answers against Gitea's description, its paging, and the helpers tests use."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fleet.timing.clock import ManualClock
from tests.fakes.gitea.api import BOT_LOGIN, GITEA_TOKEN, SERVED, FakeGitea, fake_gitea_thread
from tests.fakes.gitea.spec import SWAGGER, GiteaSpec

REPO = "acme/app"
AUTH = {"Authorization": f"token {GITEA_TOKEN}"}


@pytest.fixture
async def gitea() -> AsyncIterator[FakeGitea]:
    async with FakeGitea() as fake:
        fake.add_repo(REPO, files={"README.md": "hello\n"})
        fake.add_collaborator(REPO, BOT_LOGIN, "write")
        yield fake


async def _call(
    fake: FakeGitea,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> tuple[int, Any, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            fake.api_url + path,
            headers=AUTH if headers is None else headers,
            allow_redirects=False,
            **kwargs,
        ) as response,
    ):
        raw = await response.read()
        return response.status, json.loads(raw) if raw else None, dict(response.headers)


async def test_no_token_and_a_wrong_token_are_gitea_401s(gitea: FakeGitea) -> None:
    """No token: "token is required"; an unknown or Bearer-less token: Gitea's 401."""
    status, body, _ = await _call(gitea, "GET", "/repos/acme/app/issues", headers={})
    assert status == 401 and body["message"] == "token is required"
    assert body["url"] == f"{gitea.site}/api/swagger"
    for header in ("token wrong", f"Bearer {GITEA_TOKEN}", GITEA_TOKEN):
        status, body, _ = await _call(
            gitea, "GET", "/repos/acme/app/issues", headers={"Authorization": header}
        )
        assert status == 401 and body["message"].startswith("user does not exist")
    assert gitea.violations == []


async def test_an_undescribed_operation_is_a_violation(gitea: FakeGitea) -> None:
    """A path or method Gitea's description lacks is 404 and recorded."""
    status, _, _ = await _call(gitea, "GET", "/repos/acme/app/issues/1/labels")
    assert status == 404
    status, _, _ = await _call(gitea, "DELETE", "/repos/acme/app/issues/1")
    assert status == 404
    assert gitea.violations == [
        "undescribed operation: GET /api/v1/repos/acme/app/issues/1/labels",
        "undescribed operation: DELETE /api/v1/repos/acme/app/issues/1",
    ]


async def test_parameters_are_held_to_the_description(gitea: FakeGitea) -> None:
    """An undescribed query parameter, a bad enum or date, a non-integer index: 422."""
    cases = [
        ("/repos/acme/app/issues", {"per_page": "100"}, "undescribed query parameter"),
        ("/repos/acme/app/issues", {"state": "opened"}, "is not one of"),
        ("/repos/acme/app/issues", {"since": "yesterday"}, "RFC 3339"),
        ("/repos/acme/app/issues/one", {}, "is not an integer"),
    ]
    for path, query, why in cases:
        gitea.violations.clear()
        status, body, _ = await _call(gitea, "GET", path, params=query)
        assert status == 422 and why in body["message"]
        assert len(gitea.violations) == 1 and why in gitea.violations[0]


async def test_bodies_are_held_to_their_schemas(gitea: FakeGitea) -> None:
    """A body of the wrong type, not JSON, or where none is taken is a violation."""
    number = gitea.add_issue(REPO, "Fix it")
    path = f"/repos/acme/app/issues/{number}/comments"
    status, _, _ = await _call(gitea, "POST", path, json={"body": 5})
    assert status == 422 and "5 is not of type 'string'" in gitea.violations[-1]
    status, _, _ = await _call(
        gitea, "POST", path, data=b"{", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert status == 422 and gitea.violations[-1].endswith("body is not JSON")
    status, _, _ = await _call(gitea, "GET", path, json={"body": "x"})
    assert status == 422 and "a body sent where none is taken" in gitea.violations[-1]
    assert gitea.comments_on(REPO, number) == []


async def test_gitea_binding_refuses_an_empty_required_field(gitea: FakeGitea) -> None:
    """An empty comment is Gitea's own 422 ("[Body]: Required"), within the description."""
    number = gitea.add_issue(REPO, "Fix it")
    status, body, _ = await _call(
        gitea, "POST", f"/repos/acme/app/issues/{number}/comments", json={"body": ""}
    )
    assert (status, body["message"]) == (422, "[Body]: Required")
    assert gitea.violations == []


async def test_listings_page_as_gitea_does(gitea: FakeGitea) -> None:
    """A limit is capped at 50; X-Total-Count and Link tell the rest."""
    for index in range(60):
        gitea.add_issue(REPO, f"issue {index}")
    status, body, headers = await _call(
        gitea, "GET", "/repos/acme/app/issues", params={"limit": "100"}
    )
    assert status == 200 and len(body) == 50 and headers["X-Total-Count"] == "60"
    assert 'rel="next"' in headers["Link"] and "page=2" in headers["Link"]
    status, body, _ = await _call(
        gitea, "GET", "/repos/acme/app/issues", params={"limit": "50", "page": "2"}
    )
    assert [i["number"] for i in body] == list(range(10, 0, -1))
    assert gitea.violations == []


async def test_every_answer_is_of_its_described_shape(gitea: FakeGitea) -> None:
    """Issues, pulls, reviews, comments and files as served validate, nulls and all."""
    number = gitea.add_issue(REPO, "Fix it", labels=["bug"])
    gitea.add_comment(REPO, number, "hello")
    pull = gitea.add_pull(REPO, "feature")
    gitea.submit_review(REPO, pull, "rita", "request_changes", "no")
    gitea.merge_pull(REPO, pull)
    for path in (
        f"/repos/acme/app/issues/{number}",
        f"/repos/acme/app/issues/{number}/comments",
        f"/repos/acme/app/pulls/{pull}",
        f"/repos/acme/app/pulls/{pull}/reviews",
        "/repos/acme/app/pulls",
        "/repos/acme/app/contents/README.md",
    ):
        status, _, _ = await _call(gitea, "GET", path)
        assert status == 200, path
    assert gitea.violations == []


def test_answer_checks_catch_a_wrong_shape() -> None:
    """The answer check flags a field of the wrong type and lets Gitea's nulls pass."""
    spec = GiteaSpec.load()
    matched = spec.match("GET", "/api/v1/repos/a/b/issues/1")
    assert matched is not None
    op, params = matched
    assert params == {"owner": "a", "repo": "b", "index": "1"}
    good = {"number": 1, "assignees": None, "closed_at": None, "milestone": None}
    assert spec.check_answer(op, 200, good, json.dumps(good).encode()) == []
    bad = {"number": "1", "updated_at": "yesterday"}
    problems = spec.check_answer(op, 200, bad, json.dumps(bad).encode())
    assert any("number" in p for p in problems) and any("updated_at" in p for p in problems)
    assert spec.check_answer(op, 418, None, b"") == [
        "issueGetIssue answer 418: status not described"
    ]


def test_greedy_path_parameters_hold_slashes() -> None:
    """A file path or branch may hold ``/``; a quoted ``/`` inside a segment decodes."""
    spec = GiteaSpec.load()
    found = spec.match("DELETE", "/api/v1/repos/a/b/branches/fleetwarden/issue-3")
    assert found is not None and found[1]["branch"] == "fleetwarden/issue-3"
    found = spec.match("GET", "/api/v1/repos/a/b/contents/src/a%20b.py")
    assert found is not None and found[1]["filepath"] == "src/a b.py"
    found = spec.match("PATCH", "/api/v1/repos/a/b/issues/comments/7")
    assert found is not None and found[0].operation_id == "issueEditComment"


def test_the_vendored_description_is_whole_and_named() -> None:
    """Every served operation is described, every reference resolves, and the README
    names the source, its commit and its licence."""
    document = json.loads(SWAGGER.read_text(encoding="utf-8"))
    described = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    assert described == set(SERVED)
    refs = set(re.findall(r'"\$ref": "#/(\w+)/(\w+)"', SWAGGER.read_text(encoding="utf-8")))
    assert all(name in document[kind] for kind, name in refs)
    assert "{{" not in SWAGGER.read_text(encoding="utf-8")
    readme = Path(SWAGGER).with_suffix(".md").read_text(encoding="utf-8")
    assert "6992ef98fc227a60cf06e0a06b9ae2492b3d61be" in readme
    assert "go-gitea/gitea" in readme and "templates/swagger/v1_json.tmpl" in readme
    assert "Permission is hereby granted, free of charge" in readme


async def test_private_and_public_repositories(gitea: FakeGitea) -> None:
    """A private repository is 404 to a stranger; a public one is readable."""
    gitea.add_repo("other/secret")
    gitea.add_repo("other/open", private=False)
    gitea.add_issue("other/open", "hello")
    status, _, _ = await _call(gitea, "GET", "/repos/other/secret/issues")
    assert status == 404
    status, body, _ = await _call(gitea, "GET", "/repos/other/open/issues")
    assert status == 200 and [i["title"] for i in body] == ["hello"]
    assert gitea.violations == []


async def test_org_membership_redirects_an_outsider(gitea: FakeGitea) -> None:
    """A token outside the org is sent to the public members with Gitea's 303."""
    gitea.add_org("elsewhere", members=["mia"])
    status, _, headers = await _call(gitea, "GET", "/orgs/elsewhere/members/mia")
    assert status == 303
    assert headers["Location"] == "/api/v1/orgs/elsewhere/public_members/mia"
    assert gitea.violations == []


async def test_helpers_change_what_the_api_shows(gitea: FakeGitea) -> None:
    """merge_pull, close_pull, submit_review and labels show through the API."""
    pull = gitea.add_pull(REPO, "feature", title="Change")
    gitea.submit_review(REPO, pull, "rita", "APPROVED", "fine")
    gitea.merge_pull(REPO, pull, by="olga")
    status, body, _ = await _call(gitea, "GET", f"/repos/acme/app/pulls/{pull}")
    assert status == 200 and body["merged"] and body["state"] == "closed"
    assert body["merged_by"]["login"] == "olga"
    _, reviews, _ = await _call(gitea, "GET", f"/repos/acme/app/pulls/{pull}/reviews")
    assert [(r["user"]["login"], r["state"]) for r in reviews] == [("rita", "APPROVED")]
    other = gitea.add_pull(REPO, "other")
    gitea.close_pull(REPO, other)
    number = gitea.add_issue(REPO, "Fix it")
    gitea.add_label(REPO, number, "fleetwarden:coder")
    _, issue, _ = await _call(gitea, "GET", f"/repos/acme/app/issues/{number}")
    assert [label["name"] for label in issue["labels"]] == ["fleetwarden:coder"]
    assert [(p.number, p.state) for p in gitea.pulls(REPO)] == [(pull, "closed"), (other, "closed")]
    with pytest.raises(ValueError, match="no review state"):
        gitea.submit_review(REPO, pull, "rita", "LGTM")
    assert gitea.violations == []


async def test_times_come_from_the_given_clock() -> None:
    """With a ManualClock the fake's times are the clock's, in whole seconds."""
    clock = ManualClock(datetime(2026, 3, 1, 12, 0, 0, 500, tzinfo=UTC))
    async with FakeGitea(clock=clock) as fake:
        fake.add_repo(REPO)
        fake.add_collaborator(REPO, BOT_LOGIN, "read")
        number = fake.add_issue(REPO, "Fix it")
        clock.advance(60)
        fake.add_comment(REPO, number, "later")
        _, issue, _ = await _call(fake, "GET", f"/repos/acme/app/issues/{number}")
        assert issue["created_at"] == "2026-03-01T12:00:00Z"
        assert issue["updated_at"] == "2026-03-01T12:01:00Z"
    assert fake.violations == []


def test_the_thread_runner_serves_while_the_test_seeds() -> None:
    """fake_gitea_thread serves from its own thread; helpers work while it runs."""
    with fake_gitea_thread() as fake:
        fake.add_repo(REPO)
        fake.add_collaborator(REPO, BOT_LOGIN, "read")
        number = fake.add_issue(REPO, "From the thread")
        request = urllib.request.Request(
            f"{fake.api_url}/repos/acme/app/issues/{number}", headers=AUTH
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as answer:
            assert json.loads(answer.read())["title"] == "From the thread"
        assert fake.violations == []
