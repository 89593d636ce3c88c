"""A review and a draft lifted on GitHub: the client against the strict fake GitHub —
the review's words and GitHub's 422s, the GraphQL mutation sent with the credential the
REST calls use (a PAT, an App's installation token), GraphQL's errors (HTTP 200) read as
ForgeApiError — and the fake's GraphQL endpoint itself, which takes that one mutation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from fleet.forge.api.github.app_token import AppKey
from fleet.forge.api.github.client import GitHubApi
from fleet.forge.api.github.graphql import READY_FOR_REVIEW, graphql_root, ready_of
from fleet.forge.api.rest import Answer, ForgeRateLimited
from fleet.forge.model import ForgeApiError
from fleet.ledger.records.forge import Slug
from tests.fakes.github.api import BOT_LOGIN, DEFAULT_PAT, FakeGitHub, make_app_key
from tests.fakes.github.shapes import node_id

REPO = "acme/app"
SLUG = Slug("acme", "app")
READ_ONLY = "ghp_ReadOnlyFleetwardenPat0123456789abcd"
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def github_review_github() -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub() as fake:
        fake.add_repo(REPO, base_sha="1" * 40, files={"README.md": "hello\n"})
        fake.set_branch(REPO, "feature", "2" * 40)
        fake.add_collaborator(REPO, BOT_LOGIN, "admin")
        fake.add_collaborator(REPO, "alice", "write")
        yield fake
    assert fake.violations == []


@pytest.fixture
async def github_review_api(github_review_github: FakeGitHub) -> AsyncIterator[GitHubApi]:
    client = GitHubApi(github_review_github.api_url, DEFAULT_PAT)
    yield client
    await client.close()


async def _graphql(github: FakeGitHub, payload: Any, token: str | None) -> tuple[int, Any]:
    headers = {"User-Agent": "test"} | ({"Authorization": f"Bearer {token}"} if token else {})
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{github.api_url}/graphql", json=payload, headers=headers) as answer,
    ):
        return answer.status, await answer.json()


def test_graphql_is_under_the_api_root_on_github_com_and_beside_v3_on_an_enterprise() -> None:
    assert graphql_root("https://api.github.com") == "https://api.github.com"
    assert graphql_root("https://api.github.com/") == "https://api.github.com"
    assert graphql_root("https://ghe.example.com/api/v3") == "https://ghe.example.com/api"
    assert graphql_root("https://ghe.example.com/api/v3/") == "https://ghe.example.com/api"
    assert graphql_root("http://127.0.0.1:8080") == "http://127.0.0.1:8080"


async def test_a_review_is_posted_with_its_event_and_body(
    github_review_github: FakeGitHub, github_review_api: GitHubApi
) -> None:
    number = github_review_github.add_pull(REPO, "feature", author="alice")
    address = await github_review_api.review(SLUG, number, "Fine by me.", event="APPROVE")
    [(author, state, body)] = github_review_github.reviews_of(REPO, number)
    assert (author, state, body) == (BOT_LOGIN, "APPROVED", "Fine by me.")
    assert address.startswith(f"https://github.com/{REPO}/pull/{number}#pullrequestreview-")
    assert ("POST", f"/repos/{REPO}/pulls/{number}/reviews", 200, "pat") in [
        (seen.method, seen.path, seen.status, seen.credential)
        for seen in github_review_github.requests
    ]


async def test_ones_own_approval_is_githubs_422_in_its_words(
    github_review_github: FakeGitHub, github_review_api: GitHubApi
) -> None:
    number = github_review_github.add_pull(REPO, "feature", author=BOT_LOGIN)
    with pytest.raises(ForgeApiError) as approving:
        await github_review_api.review(SLUG, number, "mine", event="APPROVE")
    with pytest.raises(ForgeApiError) as asking:
        await github_review_api.review(SLUG, number, "mine", event="REQUEST_CHANGES")
    assert approving.value.status == asking.value.status == 422
    assert str(approving.value).endswith("Review Can not approve your own pull request")
    assert str(asking.value).endswith("Review Can not request changes on your own pull request")
    await github_review_api.review(SLUG, number, "A comment is fine.")
    assert github_review_github.reviews_of(REPO, number) == [
        (BOT_LOGIN, "COMMENTED", "A comment is fine.")
    ]


async def test_a_comment_without_words_is_refused(
    github_review_github: FakeGitHub, github_review_api: GitHubApi
) -> None:
    number = github_review_github.add_pull(REPO, "feature", author="alice")
    with pytest.raises(ForgeApiError) as refused:
        await github_review_api.review(SLUG, number, "  ")
    assert refused.value.status == 422 and github_review_github.reviews_of(REPO, number) == []


async def test_a_draft_is_lifted_by_graphql_with_the_pat(
    github_review_github: FakeGitHub, github_review_api: GitHubApi
) -> None:
    number = github_review_github.add_pull(REPO, "feature", author="alice", draft=True)
    pull = await github_review_api.pull(SLUG, number)
    assert pull.draft and pull.node_id
    await github_review_api.ready_for_review(SLUG, number)
    assert not github_review_github.is_draft(REPO, number)
    assert [(s.method, s.path, s.credential) for s in github_review_github.requests][-1] == (
        "POST",
        "/graphql",
        "pat",
    )
    await github_review_api.ready_for_review(SLUG, number)  # ready already: only the pull is read
    assert [s.path for s in github_review_github.requests][-1] == f"/repos/{REPO}/pulls/{number}"


async def test_a_pull_request_is_made_a_draft_again_which_no_one_merges(
    github_review_github: FakeGitHub, github_review_api: GitHubApi
) -> None:
    """`to_draft` is GraphQL's convertPullRequestToDraft; a person's merge of the draft is
    then GitHub's 405 in its words, and once lifted it merges."""
    number = github_review_github.add_pull(REPO, "feature", author="alice")
    await github_review_api.to_draft(SLUG, number)
    assert github_review_github.is_draft(REPO, number)
    assert [(s.method, s.path) for s in github_review_github.requests][-1] == ("POST", "/graphql")
    await github_review_api.to_draft(SLUG, number)  # a draft already: only the pull is read
    assert [s.path for s in github_review_github.requests][-1] == f"/repos/{REPO}/pulls/{number}"
    with pytest.raises(ForgeApiError) as refused:
        await github_review_api._rest.call(
            "PUT", f"/repos/{REPO}/pulls/{number}/merge", scope=SLUG, body={}
        )
    assert refused.value.status == 405 and "Pull Request is still a draft" in str(refused.value)
    await github_review_api.ready_for_review(SLUG, number)
    await github_review_api._rest.call(
        "PUT", f"/repos/{REPO}/pulls/{number}/merge", scope=SLUG, body={}
    )
    assert github_review_github.issue_of(REPO, number).state == "closed"


async def test_a_draft_is_lifted_with_an_apps_installation_token(
    github_review_github: FakeGitHub,
) -> None:
    private, public = make_app_key()
    github_review_github.enable_app(77, public, slug="acme-helper")
    github_review_github.install_app("acme")
    number = github_review_github.add_pull(REPO, "feature", author="alice", draft=True)
    app = GitHubApi(github_review_github.api_url, AppKey("77", private))
    try:
        await app.ready_for_review(SLUG, number)
    finally:
        await app.close()
    assert not github_review_github.is_draft(REPO, number)
    assert ("/graphql", "installation") in [
        (s.path, s.credential) for s in github_review_github.requests
    ]


async def test_graphqls_forbidden_is_a_403_forge_api_error(
    github_review_github: FakeGitHub,
) -> None:
    """A token that may read but not write the pull request: GitHub's GraphQL answers
    HTTP 200 with a FORBIDDEN error, which the client raises as a 403."""
    github_review_github.add_pat(READ_ONLY, BOT_LOGIN, write=False)
    number = github_review_github.add_pull(REPO, "feature", author="alice", draft=True)
    reader = GitHubApi(github_review_github.api_url, READ_ONLY)
    try:
        with pytest.raises(ForgeApiError) as refused:
            await reader.ready_for_review(SLUG, number)
    finally:
        await reader.close()
    assert refused.value.status == 403
    assert "FORBIDDEN" in str(refused.value) and "markPullRequestReadyForReview" in str(
        refused.value
    )
    assert github_review_github.is_draft(REPO, number) and READ_ONLY not in str(refused.value)


async def test_an_unknown_node_id_is_graphqls_not_found_with_http_200(
    github_review_github: FakeGitHub,
) -> None:
    issue = github_review_github.add_issue(REPO, "an issue, no pull request")
    for wrong in (
        "PR_nothing_at_all",
        node_id("Issue", github_review_github.issue_of(REPO, issue).id),
    ):
        payload = {"query": READY_FOR_REVIEW, "variables": {"id": wrong}}
        status, data = await _graphql(github_review_github, payload, DEFAULT_PAT)
        assert status == 200 and data["data"] == {"markPullRequestReadyForReview": None}
        [error] = data["errors"]
        assert error["type"] == "NOT_FOUND" and wrong in error["message"]
        with pytest.raises(ForgeApiError) as refused:
            ready_of(Answer(status, data, {}), "POST /graphql", NOW)
        assert refused.value.status == 404 and "NOT_FOUND" in str(refused.value)


async def test_graphql_takes_only_the_credentials_rest_takes(
    github_review_github: FakeGitHub,
) -> None:
    payload = {"query": READY_FOR_REVIEW, "variables": {"id": "x"}}
    assert (await _graphql(github_review_github, payload, None))[0] == 401
    status, data = await _graphql(github_review_github, payload, "ghp_notAtAllRight123")
    assert (status, data["message"]) == (401, "Bad credentials")


async def test_any_other_query_is_refused_and_noted(github_review_github: FakeGitHub) -> None:
    for query in ("query { viewer { login } }", "mutation { closePullRequest(input: {}) }"):
        status, data = await _graphql(github_review_github, {"query": query}, DEFAULT_PAT)
        assert status == 200 and data["errors"] and "data" not in data
    assert len(github_review_github.violations) == 2
    assert all("not served by the fake" in v for v in github_review_github.violations)
    github_review_github.violations.clear()


async def test_the_mutation_may_ask_other_fields_and_is_read_by_its_variable(
    github_review_github: FakeGitHub,
) -> None:
    number = github_review_github.add_pull(REPO, "feature", author="alice", draft=True)
    node = node_id("PullRequest", github_review_github.issue_of(REPO, number).pull.id)  # type: ignore[union-attr]
    query = (
        "mutation($pr: ID!) { markPullRequestReadyForReview(input: {pullRequestId: $pr}) "
        "{ pullRequest { number isDraft url } } }"
    )
    status, data = await _graphql(
        github_review_github, {"query": query, "variables": {"pr": node}}, DEFAULT_PAT
    )
    assert status == 200
    assert data["data"]["markPullRequestReadyForReview"]["pullRequest"] == {
        "number": number,
        "isDraft": False,
        "url": f"https://github.com/{REPO}/pull/{number}",
    }


def test_graphqls_rate_limit_is_a_rate_limited_error() -> None:
    reset = int((NOW + timedelta(minutes=5)).timestamp())
    data = {"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]}
    answer = Answer(200, data, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
    with pytest.raises(ForgeRateLimited) as limited:
        ready_of(answer, "POST /graphql", NOW)
    assert limited.value.retry_at == NOW + timedelta(minutes=5)


def test_an_answer_without_the_draft_flag_is_an_error() -> None:
    with pytest.raises(ForgeApiError) as odd:
        ready_of(Answer(200, {"data": {}}, {}), "POST /graphql", NOW)
    assert "isDraft" in str(odd.value)
