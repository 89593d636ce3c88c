"""The Gitea client against the strict fake Gitea: every ForgeApi call, its error paths,
and no token in any error or log line."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import web

from fleet.forge.api.gitea.client import GiteaApi
from fleet.forge.api.gitea.read import change_of, is_wip, pull_of, review_of
from fleet.forge.model import CheckRun, ForgeApi, ForgeApiError
from fleet.ledger.records.forge import Slug
from tests.fakes.gitea.api import BOT_LOGIN, GITEA_TOKEN, FakeGitea
from tests.fakes.loopback import LoopbackServer

REPO = "acme/app"
SLUG = Slug("acme", "app")


@pytest.fixture
async def org_gitea() -> AsyncIterator[FakeGitea]:
    async with FakeGitea() as fake:
        fake.add_org("acme", owners=["olga"], members=[BOT_LOGIN])
        fake.add_repo(REPO, files={"README.md": "hello\n", "src/a.py": "x = 1\n"})
        fake.add_collaborator(REPO, BOT_LOGIN, "admin")
        yield fake
    assert fake.violations == []


def _is_a_forge_api(client: GiteaApi) -> ForgeApi:
    return client  # mypy holds GiteaApi to the ForgeApi protocol here


@pytest.fixture
async def api(org_gitea: FakeGitea) -> AsyncIterator[GiteaApi]:
    client = GiteaApi(org_gitea.api_url, GITEA_TOKEN)
    yield client
    await client.close()


async def test_issue_reads_title_labels_assignees_and_author(
    org_gitea: FakeGitea, api: GiteaApi
) -> None:
    """An issue comes back with its words, labels, assignees and author."""
    number = org_gitea.add_issue(
        REPO, "Fix <b>it</b>", "the body", author="bob", labels=["fleetwarden:coder", "bug"]
    )
    org_gitea.assign(REPO, number, BOT_LOGIN)
    issue = await api.issue(SLUG, number)
    assert (issue.number, issue.title, issue.body, issue.author) == (
        number,
        "Fix <b>it</b>",
        "the body",
        "bob",
    )
    assert issue.labels == ("fleetwarden:coder", "bug")
    assert issue.assignees == (BOT_LOGIN,)
    assert issue.state == "open" and not issue.is_pull
    assert issue.url == f"{org_gitea.site}/acme/app/issues/{number}"


async def test_a_pull_request_read_as_an_issue_is_a_pull(
    org_gitea: FakeGitea, api: GiteaApi
) -> None:
    """A pull request seen through the issues API says so, and has no assignees (null)."""
    number = org_gitea.add_pull(REPO, "feature")
    issue = await api.issue(SLUG, number)
    assert issue.is_pull and issue.assignees == ()


async def test_a_missing_issue_is_a_404_naming_the_call(api: GiteaApi) -> None:
    """A missing issue is a ForgeApiError naming the forge, the call and Gitea's words."""
    with pytest.raises(ForgeApiError) as caught:
        await api.issue(SLUG, 99)
    assert caught.value.status == 404
    assert str(caught.value) == (
        "Gitea refused GET /repos/acme/app/issues/99: 404 The target couldn't be found."
    )


async def test_a_repository_the_token_cannot_read_is_not_found(
    org_gitea: FakeGitea, api: GiteaApi
) -> None:
    """A private repository the bot is no collaborator of answers 404, as on Gitea."""
    org_gitea.add_repo("other/secret")
    org_gitea.add_issue("other/secret", "hidden")
    with pytest.raises(ForgeApiError) as caught:
        await api.issue(Slug("other", "secret"), 1)
    assert caught.value.status == 404


async def test_comments_are_listed_posted_and_edited(org_gitea: FakeGitea, api: GiteaApi) -> None:
    """Comments are read in order; the bot's comment is posted and then edited."""
    number = org_gitea.add_issue(REPO, "Fix it")
    org_gitea.add_comment(REPO, number, "first", author="bob")
    org_gitea.add_comment(REPO, number, "second", author="carol")
    posted = await api.comment(SLUG, number, "working on it")
    assert posted.author == BOT_LOGIN and posted.body == "working on it"
    assert posted.url.endswith(f"#issuecomment-{posted.id}")
    await api.edit_comment(SLUG, posted.id, "done")
    comments = await api.comments(SLUG, number)
    assert [(c.author, c.body) for c in comments] == [
        ("bob", "first"),
        ("carol", "second"),
        (BOT_LOGIN, "done"),
    ]
    assert [c.body for c in org_gitea.comments_on(REPO, number)][-1] == "done"


async def test_editing_another_users_comment_without_write_access_is_refused(
    org_gitea: FakeGitea,
) -> None:
    """A reader editing someone else's comment gets Gitea's 403."""
    org_gitea.add_repo("acme/open", private=False)
    number = org_gitea.add_issue("acme/open", "Fix it")
    other = org_gitea.add_comment("acme/open", number, "mine", author="bob")
    org_gitea.tokens["reader-token"] = "reader"
    org_gitea.add_user("reader")
    client = GiteaApi(org_gitea.api_url, "reader-token")
    try:
        with pytest.raises(ForgeApiError) as caught:
            await client.edit_comment(Slug("acme", "open"), other, "hijacked")
    finally:
        await client.close()
    assert caught.value.status == 403
    assert org_gitea.comments_on("acme/open", number)[0].body == "mine"


async def test_open_issues_pages_through_all_of_them(org_gitea: FakeGitea, api: GiteaApi) -> None:
    """More open issues than one page holds are all read, page by page."""
    for index in range(120):
        org_gitea.add_issue(REPO, f"issue {index}")
    org_gitea.world.close(org_gitea.issue(REPO, 1))
    found = await api.open_issues(SLUG)
    assert len(found) == 119 and {i.number for i in found} == set(range(2, 121))
    pages = [r for r in org_gitea.requests if r.path == "/api/v1/repos/acme/app/issues"]
    assert len(pages) == 3


async def test_open_issues_since_asks_gitea_for_the_recent_ones(
    org_gitea: FakeGitea, api: GiteaApi
) -> None:
    """``since`` reaches Gitea as RFC 3339 and only issues updated since come back."""
    old = org_gitea.add_issue(REPO, "old")
    new = org_gitea.add_issue(REPO, "new")
    org_gitea.issue(REPO, old).updated = org_gitea.issue(REPO, old).updated.replace(year=2020)
    since = org_gitea.issue(REPO, new).updated.replace(year=2021)
    found = await api.open_issues(SLUG, since=since)
    assert [i.number for i in found] == [new]
    assert "since=2021-" in org_gitea.requests[-1].query


async def test_open_pull_marks_a_draft_as_gitea_does(org_gitea: FakeGitea, api: GiteaApi) -> None:
    """A draft pull request is opened with the ``WIP: `` title prefix and reads as draft."""
    org_gitea.add_branch(REPO, "fleetwarden/issue-3")
    pull = await api.open_pull(
        SLUG, head="fleetwarden/issue-3", base="main", title="Fix it", body="Closes #3", draft=True
    )
    assert pull.title == "WIP: Fix it" and pull.draft
    assert (pull.head, pull.base, pull.author) == ("fleetwarden/issue-3", "main", BOT_LOGIN)
    assert pull.head_sha == org_gitea.branches(REPO)["fleetwarden/issue-3"]
    held = org_gitea.pulls(REPO)[0]
    assert held.body == "Closes #3" and held.head == "fleetwarden/issue-3"


async def test_open_pull_refusals_are_errors(org_gitea: FakeGitea, api: GiteaApi) -> None:
    """A missing head branch is 404; a second pull request for the same branches is 409."""
    with pytest.raises(ForgeApiError) as missing:
        await api.open_pull(SLUG, head="nope", base="main", title="T", body="", draft=False)
    assert missing.value.status == 404
    org_gitea.add_branch(REPO, "feature")
    await api.open_pull(SLUG, head="feature", base="main", title="T", body="", draft=False)
    with pytest.raises(ForgeApiError) as twice:
        await api.open_pull(SLUG, head="feature", base="main", title="T", body="", draft=False)
    assert twice.value.status == 409 and "already exists" in str(twice.value)


async def test_find_pull_finds_the_open_one_from_the_branch(
    org_gitea: FakeGitea, api: GiteaApi
) -> None:
    """find_pull returns the open pull request from the branch, not a closed or another."""
    closed = org_gitea.add_pull(REPO, "feature", title="old try")
    org_gitea.close_pull(REPO, closed)
    org_gitea.add_pull(REPO, "other")
    wanted = org_gitea.add_pull(REPO, "feature", title="new try")
    found = await api.find_pull(SLUG, "feature")
    assert found is not None and found.number == wanted and found.state == "open"
    assert await api.find_pull(SLUG, "absent") is None


async def test_edit_pull_keeps_a_draft_a_draft(org_gitea: FakeGitea, api: GiteaApi) -> None:
    """A new title for a draft keeps its ``WIP: `` marker; the body changes alone."""
    number = org_gitea.add_pull(REPO, "feature", title="WIP: first", author=BOT_LOGIN)
    await api.edit_pull(SLUG, number, title="second", body="new words")
    pull = await api.pull(SLUG, number)
    assert (pull.title, pull.body, pull.draft) == ("WIP: second", "new words", True)
    await api.edit_pull(SLUG, number, body="only the body")
    assert org_gitea.issue(REPO, number).title == "WIP: second"


async def test_merged_and_closed_pulls_read_as_such(org_gitea: FakeGitea, api: GiteaApi) -> None:
    """A merged pull request is closed and merged; a closed one only closed."""
    merged = org_gitea.add_pull(REPO, "one")
    org_gitea.merge_pull(REPO, merged)
    closed = org_gitea.add_pull(REPO, "two")
    org_gitea.close_pull(REPO, closed)
    one, two = await api.pull(SLUG, merged), await api.pull(SLUG, closed)
    assert (one.state, one.merged) == ("closed", True)
    assert (two.state, two.merged) == ("closed", False)


async def test_reviews_are_named_as_github_names_them(org_gitea: FakeGitea, api: GiteaApi) -> None:
    """Reviews read lowercased in GitHub's words; a review request is no review."""
    org_gitea.add_collaborator(REPO, "rita", "write")
    number = org_gitea.add_pull(REPO, "feature", author=BOT_LOGIN)
    await api.request_review(SLUG, number, ["rita"])
    org_gitea.submit_review(REPO, number, "rita", "REQUEST_CHANGES", "not yet")
    org_gitea.submit_review(REPO, number, "rita", "COMMENT", "hm")
    org_gitea.submit_review(REPO, number, "rita", "APPROVED", "good")
    reviews = await api.reviews(SLUG, number)
    assert [(r.author, r.state, r.body) for r in reviews] == [
        ("rita", "changes_requested", "not yet"),
        ("rita", "commented", "hm"),
        ("rita", "approved", "good"),
    ]
    asked = org_gitea.issue(REPO, number).pull
    assert asked is not None and asked.reviews[0].state == "REQUEST_REVIEW"


async def test_request_review_refusals(org_gitea: FakeGitea, api: GiteaApi) -> None:
    """An unknown reviewer is 404; no reviewers is no call at all."""
    number = org_gitea.add_pull(REPO, "feature", author=BOT_LOGIN)
    with pytest.raises(ForgeApiError) as caught:
        await api.request_review(SLUG, number, ["ghost"])
    assert caught.value.status == 404 and "User 'ghost' not exist" in str(caught.value)
    before = len(org_gitea.requests)
    await api.request_review(SLUG, number, [])
    assert len(org_gitea.requests) == before


async def test_file_reads_text_at_a_ref(org_gitea: FakeGitea, api: GiteaApi) -> None:
    """A file is read as text, at the default branch or at a named ref."""
    org_gitea.add_branch(REPO, "feature", files={"src/a.py": "x = 2\n"})
    assert (await api.file(SLUG, "src/a.py")).text == "x = 1\n"
    on_branch = await api.file(SLUG, "src/a.py", ref="feature")
    assert on_branch.text == "x = 2\n" and not on_branch.truncated and on_branch.sha


async def test_file_refusals_directory_and_missing(api: GiteaApi) -> None:
    """A directory is no file; a missing path is 404."""
    with pytest.raises(ForgeApiError, match="is a directory"):
        await api.file(SLUG, "src")
    with pytest.raises(ForgeApiError) as caught:
        await api.file(SLUG, "nope.txt")
    assert caught.value.status == 404


async def test_a_big_file_is_cut_and_bad_bytes_replaced(
    org_gitea: FakeGitea, api: GiteaApi
) -> None:
    """Past 1 MiB a file is truncated; bytes that are not UTF-8 are replaced."""
    org_gitea.add_file(REPO, "big.txt", b"\xff" + b"a" * (1024 * 1024 + 10))
    found = await api.file(SLUG, "big.txt")
    assert found.truncated and len(found.text) == 1024 * 1024
    assert found.text.startswith("\ufffda")


async def test_permission_maps_gitea_access_modes(org_gitea: FakeGitea, api: GiteaApi) -> None:
    """Owner and admin are admin; write, read; a stranger or unknown user is none."""
    org_gitea.add_collaborator(REPO, "wendy", "write")
    org_gitea.add_collaborator(REPO, "rita", "read")
    org_gitea.add_user("stranger")
    assert await api.permission(SLUG, "olga") == "admin"  # an owner of the org
    assert await api.permission(SLUG, BOT_LOGIN) == "admin"
    assert await api.permission(SLUG, "wendy") == "write"
    assert await api.permission(SLUG, "rita") == "read"
    assert await api.permission(SLUG, "stranger") == "none"
    assert await api.permission(SLUG, "ghost") == "none"


async def test_permission_without_the_right_to_ask_is_an_error(org_gitea: FakeGitea) -> None:
    """A token that is no repository admin may not ask for another's permission: an
    error, not a silent "none"."""
    org_gitea.add_collaborator(REPO, "writer", "write")
    org_gitea.add_collaborator(REPO, "wendy", "write")
    org_gitea.tokens["writer-token"] = "writer"
    client = GiteaApi(org_gitea.api_url, "writer-token")
    try:
        assert await client.permission(SLUG, "writer") == "write"  # its own
        with pytest.raises(ForgeApiError) as caught:
            await client.permission(SLUG, "wendy")
    finally:
        await client.close()
    assert caught.value.status == 403


async def test_in_org_member_stranger_and_a_token_outside_the_org(
    org_gitea: FakeGitea, api: GiteaApi
) -> None:
    """Members are in; others not; a token outside the org is redirected and says no."""
    org_gitea.add_org("acme", members=["mia"])
    org_gitea.add_user("stranger")
    assert await api.in_org("acme", "mia")
    assert not await api.in_org("acme", "stranger")
    assert not await api.in_org("nowhere", "mia")
    org_gitea.add_org("elsewhere", members=["mia"])
    assert not await api.in_org("elsewhere", "mia")  # 303: the redirect is not followed


async def test_in_team_by_name(org_gitea: FakeGitea, api: GiteaApi) -> None:
    """Team members are in (the team found by name), others and unknown teams not."""
    org_gitea.add_team("acme", "Reviewers", members=["rita", BOT_LOGIN])
    org_gitea.add_user("stranger")
    assert await api.in_team("acme", "reviewers", "rita")
    assert not await api.in_team("acme", "reviewers", "stranger")
    assert not await api.in_team("acme", "nobody-team", "rita")


async def test_in_team_refused_to_a_token_outside_the_team(
    org_gitea: FakeGitea, api: GiteaApi
) -> None:
    """Gitea answers a team's members only to its members or owners: an error else."""
    org_gitea.add_team("acme", "core", members=["rita"])
    with pytest.raises(ForgeApiError) as caught:
        await api.in_team("acme", "core", "rita")
    assert caught.value.status == 403 and "Must be a team member" in str(caught.value)
    org_gitea.add_org("outside", members=["rita"])
    org_gitea.add_team("outside", "core", members=["rita"])
    with pytest.raises(ForgeApiError) as outside:
        await api.in_team("outside", "core", "rita")
    assert "Must be an organization member" in str(outside.value)


async def test_delete_branch_closes_its_pull_and_tolerates_a_gone_one(
    org_gitea: FakeGitea, api: GiteaApi
) -> None:
    """Deleting a branch removes it (Gitea closes its pull request); a gone one is fine;
    the default branch is refused."""
    number = org_gitea.add_pull(REPO, "fleetwarden/issue-3")
    await api.delete_branch(SLUG, "fleetwarden/issue-3")
    assert "fleetwarden/issue-3" not in org_gitea.branches(REPO)
    assert org_gitea.issue(REPO, number).state == "closed"
    await api.delete_branch(SLUG, "fleetwarden/issue-3")
    with pytest.raises(ForgeApiError) as caught:
        await api.delete_branch(SLUG, "main")
    assert caught.value.status == 403


async def test_check_runs_do_not_exist_on_gitea(org_gitea: FakeGitea, api: GiteaApi) -> None:
    """check_run returns None and calls nothing."""
    made = await api.check_run(
        SLUG,
        CheckRun(head_sha="a" * 40, title="Fleetwarden", summary="working", status="in_progress"),
    )
    assert made is None and org_gitea.requests == []


async def test_git_token_is_the_token_and_repr_hides_it(api: GiteaApi) -> None:
    """The mirror pushes with the token; the client's repr never shows it; the client is
    the token's user (the login ``GET /user`` answers)."""
    assert await api.git_token(SLUG) == GITEA_TOKEN
    assert await api.whoami() == BOT_LOGIN
    assert GITEA_TOKEN not in repr(api)
    assert api.kind == "gitea" and is_wip("[wip] x") and not is_wip("WIPE out")


async def test_a_wrong_token_is_401_and_named_nowhere(
    org_gitea: FakeGitea, caplog: pytest.LogCaptureFixture
) -> None:
    """A token Gitea does not know is a 401 whose message, like every log line, lacks it."""
    secret = "not-a-real-token-5f1e2d3c4b5a69788796"
    client = GiteaApi(org_gitea.api_url, secret)
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(ForgeApiError) as caught:
            await client.issue(SLUG, 1)
        with pytest.raises(ForgeApiError) as who:
            await client.whoami()
    finally:
        await client.close()
    assert caught.value.status == who.value.status == 401
    assert "user does not exist" in str(caught.value) and "GET /user" in str(who.value)
    assert secret not in str(caught.value) + str(who.value) + caplog.text


async def test_no_call_logs_or_raises_the_token(
    org_gitea: FakeGitea, api: GiteaApi, caplog: pytest.LogCaptureFixture
) -> None:
    """Successful and refused calls alike leave the token out of logs and errors."""
    caplog.set_level(logging.DEBUG)
    number = org_gitea.add_issue(REPO, "Fix it")
    await api.comment(SLUG, number, "hi")
    errors: list[str] = []
    for bad in (api.issue(SLUG, 404), api.file(SLUG, "nope"), api.delete_branch(SLUG, "main")):
        try:
            await bad
        except ForgeApiError as exc:
            errors.append(str(exc))
    assert len(errors) == 3
    assert all(GITEA_TOKEN not in text for text in errors)
    assert GITEA_TOKEN not in caplog.text


class _Malformed(LoopbackServer):
    """A server answering an issue with the wrong types, as a broken proxy might."""

    def routes(self, app: web.Application) -> None:
        async def issue(_: web.Request) -> web.Response:
            return web.json_response({"number": "three", "title": None})

        app.router.add_get("/api/v1/repos/acme/app/issues/3", issue)


async def test_a_malformed_answer_is_an_error_not_a_crash() -> None:
    """An answer with fields of the wrong type is a ForgeApiError naming the field."""
    async with _Malformed() as server:
        client = GiteaApi(server.base_url + "/api/v1", GITEA_TOKEN)
        try:
            with pytest.raises(ForgeApiError, match="'number'"):
                await client.issue(SLUG, 3)
        finally:
            await client.close()


def test_a_client_needs_a_token() -> None:
    """An empty token is refused at construction."""
    with pytest.raises(ValueError, match="token"):
        GiteaApi("http://127.0.0.1:1/api/v1", "")


def test_reading_forgejo_draft_flag_and_dismissed_reviews() -> None:
    """A ``draft`` field (newer Gitea, Forgejo) wins over the title; a dismissed review
    reads as dismissed; an unknown review state is kept, lowercased."""
    user = {"login": "bob"}
    branch = {"ref": "feature", "sha": "a" * 40}
    pull = {
        "number": 4,
        "title": "WIP: not really",
        "user": user,
        "head": branch,
        "base": {"ref": "main"},
        "state": "open",
        "html_url": "https://git.example/acme/app/pulls/4",
        "updated_at": "2026-03-01T12:00:00+01:00",
        "draft": False,
    }
    read = pull_of(pull)
    assert not read.draft and read.updated_at == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    review = {"id": 1, "user": user, "state": "APPROVED", "dismissed": True}
    review |= {"submitted_at": "2026-03-01T12:00:00Z"}
    found = review_of(review)
    assert found is not None and found.state == "dismissed"
    other = review_of({**review, "dismissed": False, "state": "UNKNOWN"})
    assert other is not None and other.state == "unknown"


async def test_issue_changes_read_the_timeline(org_gitea: FakeGitea, api: GiteaApi) -> None:
    """The timeline's label and assignee entries come back oldest first with who made
    them (a label given: body "1", taken: ""); comments and a deleted label's are none."""
    number = org_gitea.add_issue(REPO, "x", author="mia", labels=["bug"])
    org_gitea.add_label(REPO, number, "fleetwarden:coder", by="trudy")
    org_gitea.add_comment(REPO, number, "please", author="trudy")
    org_gitea.assign(REPO, number, BOT_LOGIN, by="olga")
    org_gitea.unassign(REPO, number, BOT_LOGIN, by="olga")
    org_gitea.unlabel(REPO, number, "bug", by="olga")
    changes = await api.issue_changes(SLUG, number)
    assert [(c.kind, c.name, c.actor) for c in changes] == [
        ("labeled", "bug", "mia"),
        ("labeled", "fleetwarden:coder", "trudy"),
        ("assigned", BOT_LOGIN, "olga"),
        ("unassigned", BOT_LOGIN, "olga"),
        ("unlabeled", "bug", "olga"),
    ]
    [asked] = [s for s in org_gitea.requests if s.path.endswith("/timeline")]
    assert asked.query == ""  # unpaged: Gitea then lists the whole timeline
    assert change_of({"type": "label", "label": None, "body": "1"}) is None
