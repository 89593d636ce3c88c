"""The GitHub client against the strict fake GitHub: every ForgeApi call with a PAT, its
error paths (401, 403, 404, 422, rate limits), and the fake's judge finding nothing
wrong with what the client sent."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from fleet.forge.api.github.app_token import AppKey
from fleet.forge.api.github.client import GitHubApi
from fleet.forge.api.rest import ForgeRateLimited
from fleet.forge.model import CheckRun, ForgeApi, ForgeApiError
from fleet.ledger.records.forge import Slug
from tests.fakes.github.api import BOT_LOGIN, DEFAULT_PAT, FakeGitHub, make_app_key

REPO = "acme/app"
SLUG = Slug("acme", "app")
BASE_SHA = "1" * 40
FEATURE_SHA = "2" * 40


@pytest.fixture
async def github_api_github() -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub() as fake:
        fake.add_repo(
            REPO, base_sha=BASE_SHA, files={"README.md": "hello\n", "src/a.py": "x = 1\n"}
        )
        fake.set_branch(REPO, "feature", FEATURE_SHA)
        fake.add_collaborator(REPO, "alice", "write")
        yield fake
    assert fake.violations == []


def _is_a_forge_api(client: GitHubApi) -> ForgeApi:
    return client  # mypy holds GitHubApi to the ForgeApi protocol here


@pytest.fixture
async def github_api_api(github_api_github: FakeGitHub) -> AsyncIterator[GitHubApi]:
    client = GitHubApi(github_api_github.api_url, DEFAULT_PAT)
    yield client
    await client.close()


async def test_issue_reads_words_labels_assignees_and_author(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """An issue comes back with its title, body, labels, assignees, author and link."""
    number = github_api_github.add_issue(
        REPO, "Fix <b>it</b>", "the body", author="bob", labels=["fleetwarden:coder", "bug"]
    )
    github_api_github.assign(REPO, number, BOT_LOGIN)
    issue = await github_api_api.issue(SLUG, number)
    assert (issue.number, issue.title, issue.body, issue.author) == (
        number,
        "Fix <b>it</b>",
        "the body",
        "bob",
    )
    assert issue.labels == ("fleetwarden:coder", "bug")
    assert issue.assignees == (BOT_LOGIN,)
    assert issue.state == "open" and not issue.is_pull
    assert issue.url == f"https://github.com/acme/app/issues/{number}"


async def test_a_pull_request_read_as_an_issue_is_a_pull(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """The issues API shows a pull request with its ``pull_request`` key: ``is_pull``."""
    number = github_api_github.add_pull(REPO, "feature")
    issue = await github_api_api.issue(SLUG, number)
    assert issue.is_pull and issue.body == ""


async def test_a_missing_issue_is_a_404_naming_the_call(github_api_api: GitHubApi) -> None:
    """A missing issue is a ForgeApiError naming GitHub, the call and its words."""
    with pytest.raises(ForgeApiError) as caught:
        await github_api_api.issue(SLUG, 99)
    assert caught.value.status == 404
    assert str(caught.value) == "GitHub refused GET /repos/acme/app/issues/99: 404 Not Found"


async def test_a_repository_the_pat_does_not_reach_is_not_found(
    github_api_github: FakeGitHub,
) -> None:
    """A PAT narrowed to another repository gets 404 for this one, as GitHub answers."""
    github_api_github.add_pat("ghp_narrow", "narrow", repos=["acme/elsewhere"])
    number = github_api_github.add_issue(REPO, "x")
    client = GitHubApi(github_api_github.api_url, "ghp_narrow")
    try:
        with pytest.raises(ForgeApiError) as caught:
            await client.issue(SLUG, number)
        assert caught.value.status == 404
    finally:
        await client.close()


async def test_comments_are_listed_across_pages_posted_and_edited(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """All 130 comments come back over two pages; one is posted as the bot and edited."""
    number = github_api_github.add_issue(REPO, "x")
    for index in range(130):
        github_api_github.add_comment(REPO, number, f"c{index}", author="alice")
    listed = await github_api_api.comments(SLUG, number)
    assert [c.body for c in listed] == [f"c{index}" for index in range(130)]
    assert listed[0].author == "alice"
    pages = [
        s for s in github_api_github.requests if s.path.endswith("/comments") and s.method == "GET"
    ]
    assert len(pages) == 2
    made = await github_api_api.comment(SLUG, number, "working on it")
    assert made.author == BOT_LOGIN and made.body == "working on it"
    assert made.url.endswith(f"#issuecomment-{made.id}")
    await github_api_api.edit_comment(SLUG, made.id, "done")
    assert github_api_github.comments_on(REPO, number)[-1].body == "done"


async def test_an_empty_comment_is_a_422_with_githubs_reason(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """GitHub refuses a blank comment: 422 Validation Failed, its reason in the message."""
    number = github_api_github.add_issue(REPO, "x")
    with pytest.raises(ForgeApiError) as caught:
        await github_api_api.comment(SLUG, number, "   ")
    assert caught.value.status == 422
    assert "Validation Failed" in str(caught.value) and "missing_field" in str(caught.value)


async def test_open_find_and_edit_a_pull_request(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """A draft PR opens from the branch, is found by it, and its words change."""
    assert await github_api_api.find_pull(SLUG, "feature") is None
    opened = await github_api_api.open_pull(
        SLUG, head="feature", base="main", title="Fix it", body="Closes #1", draft=True
    )
    assert (opened.head, opened.base, opened.head_sha) == ("feature", "main", FEATURE_SHA)
    assert opened.draft and opened.state == "open" and not opened.merged
    assert opened.author == BOT_LOGIN
    found = await github_api_api.find_pull(SLUG, "feature")
    assert found is not None and found.number == opened.number
    await github_api_api.edit_pull(SLUG, opened.number, body="new words")
    await github_api_api.edit_pull(SLUG, opened.number)  # nothing to change: no call
    patches = [s for s in github_api_github.requests if s.method == "PATCH"]
    assert len(patches) == 1
    read = await github_api_api.pull(SLUG, opened.number)
    assert (read.title, read.body) == ("Fix it", "new words")


async def test_find_pull_ignores_other_branches_and_closed_ones(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """Only an open PR from that very branch is found."""
    github_api_github.set_branch(REPO, "other", "3" * 40)
    github_api_github.add_pull(REPO, "other")
    closed = github_api_github.add_pull(REPO, "feature")
    github_api_github.close_pull(REPO, closed)
    assert await github_api_api.find_pull(SLUG, "feature") is None


async def test_merged_pull_reads_as_merged_and_closed(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """A merged PR is closed and merged."""
    number = github_api_github.add_pull(REPO, "feature")
    github_api_github.merge_pull(REPO, number)
    read = await github_api_api.pull(SLUG, number)
    assert read.state == "closed" and read.merged


async def test_open_pull_refusals_are_errors(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """A second PR from the same branch, or one from a missing branch, is refused (422)."""
    await github_api_api.open_pull(
        SLUG, head="feature", base="main", title="t", body="", draft=False
    )
    with pytest.raises(ForgeApiError) as caught:
        await github_api_api.open_pull(
            SLUG, head="feature", base="main", title="t", body="", draft=False
        )
    assert "A pull request already exists for acme:feature." in str(caught.value)
    with pytest.raises(ForgeApiError) as missing:
        await github_api_api.open_pull(
            SLUG, head="nope", base="main", title="t", body="", draft=False
        )
    assert missing.value.status == 422


async def test_request_review_and_its_refusal(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """A collaborator is asked for review; the PR's own author cannot be."""
    opened = await github_api_api.open_pull(
        SLUG, head="feature", base="main", title="t", body="", draft=True
    )
    await github_api_api.request_review(SLUG, opened.number, ["alice"])
    pull = github_api_github.pulls(REPO)[0].pull
    assert pull is not None and pull.requested == ["alice"]
    with pytest.raises(ForgeApiError) as caught:
        await github_api_api.request_review(SLUG, opened.number, [BOT_LOGIN])
    assert "Review cannot be requested from pull request author." in str(caught.value)


async def test_reviews_are_lowercased_and_pending_ones_left_out(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """Submitted reviews come back in order, state lowercased; pending ones are left out
    (GitHub shows the bot its own, without ``submitted_at``)."""
    number = github_api_github.add_pull(REPO, "feature")
    github_api_github.submit_review(REPO, number, "alice", "CHANGES_REQUESTED", "please fix")
    github_api_github.submit_review(REPO, number, "alice", "PENDING", "draft")
    github_api_github.submit_review(REPO, number, BOT_LOGIN, "PENDING", "mine")
    github_api_github.submit_review(REPO, number, "alice", "APPROVED")
    reviews = await github_api_api.reviews(SLUG, number)
    assert [(r.author, r.state, r.body) for r in reviews] == [
        ("alice", "changes_requested", "please fix"),
        ("alice", "approved", ""),
    ]


async def test_file_reads_text_at_a_ref(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """A file is read at the default branch, or at another ref."""
    github_api_github.set_branch(REPO, "other", "3" * 40, files={"src/a.py": "x = 2\n"})
    assert (await github_api_api.file(SLUG, "src/a.py")).text == "x = 1\n"
    other = await github_api_api.file(SLUG, "src/a.py", ref="other")
    assert other.text == "x = 2\n" and not other.truncated and len(other.sha) == 40


async def test_file_refusals_directory_and_missing(github_api_api: GitHubApi) -> None:
    """A directory and a missing path are errors (404), not files."""
    with pytest.raises(ForgeApiError, match="is a directory"):
        await github_api_api.file(SLUG, "src")
    with pytest.raises(ForgeApiError) as caught:
        await github_api_api.file(SLUG, "nope.txt")
    assert caught.value.status == 404


async def test_a_big_file_is_cut_and_bad_bytes_replaced(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """Past 1 MB GitHub sends no content: truncated; bad UTF-8 is replaced, not raised."""
    github_api_github.set_branch(REPO, "big", "4" * 40)
    github_api_github.repo(REPO).files["big"] = {
        "big.bin": b"a" * (1024 * 1024 + 1),
        "bad.txt": b"ok\xff",
    }
    big = await github_api_api.file(SLUG, "big.bin", ref="big")
    assert big.truncated and big.text == ""
    assert (await github_api_api.file(SLUG, "bad.txt", ref="big")).text == "ok\ufffd"


async def test_permission_maps_githubs_roles(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """Owner → admin, maintain → write, triage → read, a stranger → read on a public
    repository, and an unknown login → none."""
    github_api_github.add_collaborator(REPO, "mo", "maintain")
    github_api_github.add_collaborator(REPO, "tri", "triage")
    github_api_github.accounts.get("stranger")
    assert await github_api_api.permission(SLUG, "acme") == "admin"
    assert await github_api_api.permission(SLUG, "alice") == "write"
    assert await github_api_api.permission(SLUG, "mo") == "write"
    assert await github_api_api.permission(SLUG, "tri") == "read"
    assert await github_api_api.permission(SLUG, "stranger") == "read"
    assert await github_api_api.permission(SLUG, "nobody-at-all") == "none"


async def test_in_org_and_in_team(github_api_github: FakeGitHub, github_api_api: GitHubApi) -> None:
    """Members are members; strangers and pending team members are not."""
    github_api_github.add_org_member("acme", "alice")
    github_api_github.add_team_member("acme", "devs", "alice")
    github_api_github.add_team_member("acme", "devs", "pat", state="pending")
    assert await github_api_api.in_org("acme", "alice")
    assert not await github_api_api.in_org("acme", "bob")
    assert await github_api_api.in_team("acme", "devs", "alice")
    assert not await github_api_api.in_team("acme", "devs", "pat")
    assert not await github_api_api.in_team("acme", "devs", "bob")


async def test_delete_branch_once_twice_and_never_the_default(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """A branch is deleted; deleting it again is fine; the default branch is refused."""
    github_api_github.set_branch(REPO, "fleetwarden-coder/issue-3", "5" * 40)
    await github_api_api.delete_branch(SLUG, "fleetwarden-coder/issue-3")
    await github_api_api.delete_branch(SLUG, "fleetwarden-coder/issue-3")
    assert github_api_github.deleted_branches(REPO) == ["fleetwarden-coder/issue-3"]
    with pytest.raises(ForgeApiError) as caught:
        await github_api_api.delete_branch(SLUG, "main")
    assert caught.value.status == 422


async def test_open_issues_since_and_across_pages(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """Open issues and PRs come back whole over pages; ``since`` leaves out older ones."""
    for index in range(105):
        github_api_github.add_issue(REPO, f"i{index}")
    closed = github_api_github.add_issue(REPO, "closed")
    github_api_github.close_issue(REPO, closed)
    assert len(await github_api_api.open_issues(SLUG)) == 105
    later = github_api_github.issue_of(REPO, 7).updated_at + timedelta(seconds=1)
    github_api_github.issue_of(REPO, 7).updated_at = later
    recent = await github_api_api.open_issues(SLUG, since=later)
    assert [issue.number for issue in recent] == [7]


async def test_check_runs_need_an_app_a_pat_makes_none(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """With a PAT there are no check runs (GitHub takes them from Apps only): no call."""
    made = await github_api_api.check_run(
        SLUG, CheckRun(head_sha=FEATURE_SHA, title="Fleetwarden", summary="s", status="queued")
    )
    assert made is None and github_api_github.requests == []


async def test_git_token_is_the_pat_and_repr_hides_it(github_api_api: GitHubApi) -> None:
    """The mirror's push gets the PAT; the client's repr does not show it."""
    assert await github_api_api.git_token(SLUG) == DEFAULT_PAT
    assert DEFAULT_PAT not in repr(github_api_api)


def test_a_client_needs_a_token() -> None:
    """An empty token variable is refused at once."""
    with pytest.raises(ForgeApiError, match="no GitHub token"):
        GitHubApi("https://api.github.com", "")


async def test_wrong_read_only_and_rate_limited_pats(
    github_api_github: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong PAT is 401, a read-only one 403 on a write, a spent rate limit 403 saying
    when to retry; no token is in any message or log line."""
    caplog.set_level(logging.DEBUG)
    number = github_api_github.add_issue(REPO, "x")
    wrong = GitHubApi(github_api_github.api_url, "ghp_wrongWrongWrong")
    github_api_github.add_pat("ghp_readOnlyToken", "reader", write=False)
    reader = GitHubApi(github_api_github.api_url, "ghp_readOnlyToken")
    errors: list[ForgeApiError] = []
    try:
        with pytest.raises(ForgeApiError) as bad:
            await wrong.issue(SLUG, number)
        assert bad.value.status == 401
        assert str(bad.value).endswith("401 Bad credentials")
        await reader.issue(SLUG, number)
        with pytest.raises(ForgeApiError) as refused:
            await reader.comment(SLUG, number, "hi")
        assert refused.value.status == 403
        assert "Resource not accessible by personal access token" in str(refused.value)
        github_api_github.exhaust_rate_limit()
        with pytest.raises(ForgeRateLimited) as limited:
            await reader.issue(SLUG, number)
        assert limited.value.retry_at is not None
        assert "rate limited: retry after" in str(limited.value)
        github_api_github.exhaust_rate_limit(False)
        github_api_github.slow_down(120)
        with pytest.raises(ForgeRateLimited) as slowed:
            await reader.issue(SLUG, number)
        assert "in 120 s" in str(slowed.value)
        errors = [bad.value, refused.value, limited.value, slowed.value]
    finally:
        await wrong.close()
        await reader.close()
    for token in ("ghp_wrongWrongWrong", "ghp_readOnlyToken", DEFAULT_PAT):
        assert token not in caplog.text
        assert all(token not in str(error) for error in errors)


async def test_a_server_error_is_named_and_the_next_call_works(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """A 502 is an error naming the call; the call after it succeeds."""
    number = github_api_github.add_issue(REPO, "x")
    github_api_github.fail_next(502, "Server Error")
    with pytest.raises(ForgeApiError, match="502 Server Error"):
        await github_api_api.issue(SLUG, number)
    assert (await github_api_api.issue(SLUG, number)).number == number


async def test_issue_changes_say_who_gave_and_took_labels_and_assignees(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """The issue's events come back oldest first, each with its actor: the author's own
    label at opening, a triager's label, a writer's assignment and its undoing."""
    number = github_api_github.add_issue(REPO, "x", author="maintainer", labels=["bug"])
    github_api_github.label(REPO, number, "fleetwarden:coder", by="trudy")
    github_api_github.assign(REPO, number, BOT_LOGIN, by="alice")
    github_api_github.unassign(REPO, number, BOT_LOGIN, by="alice")
    github_api_github.unlabel(REPO, number, "bug", by="trudy")
    changes = await github_api_api.issue_changes(SLUG, number)
    assert [(c.kind, c.name, c.actor) for c in changes] == [
        ("labeled", "bug", "maintainer"),
        ("labeled", "fleetwarden:coder", "trudy"),
        ("assigned", BOT_LOGIN, "alice"),
        ("unassigned", BOT_LOGIN, "alice"),
        ("unlabeled", "bug", "trudy"),
    ]
    assert all(c.at.tzinfo is not None for c in changes)


async def test_issue_changes_of_a_long_history_are_its_newest(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """Past a hundred events only GitHub's last two pages are read (found by its Link
    header): the newest change is there, however long the history."""
    number = github_api_github.add_issue(REPO, "x")
    for _ in range(125):
        github_api_github.label(REPO, number, "spam", by="trudy")
        github_api_github.unlabel(REPO, number, "spam", by="trudy")
    github_api_github.label(REPO, number, "fleetwarden:coder", by="alice")
    changes = await github_api_api.issue_changes(SLUG, number)
    assert (changes[-1].name, changes[-1].actor) == ("fleetwarden:coder", "alice")
    assert len(changes) == 151  # pages 2 and 3 of 251 events
    asked = [s for s in github_api_github.requests if s.path.endswith(f"/issues/{number}/events")]
    assert len(asked) == 3


async def test_whoami_is_the_pats_login(
    github_api_github: FakeGitHub, github_api_api: GitHubApi
) -> None:
    """With a PAT the client is the PAT's account: ``GET /user``'s login."""
    github_api_github.add_pat("ghp_aliceAliceAlice", "alice")
    alice = GitHubApi(github_api_github.api_url, "ghp_aliceAliceAlice")
    try:
        assert await github_api_api.whoami() == BOT_LOGIN
        assert await alice.whoami() == "alice"
    finally:
        await alice.close()
    assert [(seen.path, seen.credential) for seen in github_api_github.requests] == [
        ("/user", "pat")
    ] * 2


async def test_whoami_of_an_app_is_its_bot_and_an_installation_has_no_user(
    github_api_github: FakeGitHub,
) -> None:
    """As an App the client is ``slug[bot]`` (``GET /app`` with the JWT: the name on its
    comments); an installation token has no user, as GitHub says with a 403."""
    private, public = make_app_key()
    github_api_github.enable_app(77, public, slug="acme-helper")
    github_api_github.install_app("acme")
    app = GitHubApi(github_api_github.api_url, AppKey("77", private))
    try:
        assert await app.whoami() == "acme-helper[bot]"
        assert [(seen.path, seen.credential) for seen in github_api_github.requests] == [
            ("/app", "app")
        ]
        minted = GitHubApi(github_api_github.api_url, await app.git_token(SLUG))
        try:
            with pytest.raises(ForgeApiError) as refused:
                await minted.whoami()
        finally:
            await minted.close()
    finally:
        await app.close()
    assert refused.value.status == 403
    assert str(refused.value).endswith("403 Resource not accessible by integration")


async def test_whoami_with_a_bad_token_is_a_401_without_it(
    github_api_github: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong token is ForgeApiError 401 naming the call, never the token."""
    caplog.set_level(logging.DEBUG)
    wrong = GitHubApi(github_api_github.api_url, "ghp_notAtAllRight123")
    try:
        with pytest.raises(ForgeApiError) as bad:
            await wrong.whoami()
    finally:
        await wrong.close()
    assert bad.value.status == 401 and "GET /user" in str(bad.value)
    assert "ghp_notAtAllRight123" not in str(bad.value) + caplog.text
