"""The GitLab client against the strict fake GitLab: what it bridges (notes on issues or
merge requests numbered apart, GitLab's system notes left out or read for assignments,
drafts by title, approvals for reviews, the merge's sha guard, commit statuses), paging,
and hostile answers — a wrong shape is an error, never a crash, and the token is in no
error or log line."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from fleet.forge.api.gitlab.client import GitLabApi
from fleet.forge.api.gitlab.people import permission_of
from fleet.forge.api.gitlab.read import assignee_changes_of, without_draft
from fleet.forge.api.no_reply import gitlab_no_reply_address
from fleet.forge.model import CheckRun, ForgeApi, ForgeApiError
from fleet.ledger.records.forge import Slug
from tests.fakes.gitlab.api import BOT_LOGIN, GITLAB_TOKEN, FakeGitLab
from tests.fakes.loopback import LoopbackServer

REPO = "acme/app"
SLUG = Slug("acme", "app")


@pytest.fixture
async def gitlab_api_gitlab() -> AsyncIterator[FakeGitLab]:
    async with FakeGitLab() as fake:
        fake.add_group("acme", members={"olga": 50})
        fake.add_project(REPO, files={"README.md": "hello\n", "src/a.py": "x = 1\n"})
        fake.add_member(REPO, BOT_LOGIN, 40)
        fake.add_member(REPO, "wendy", 30)
        yield fake
    assert fake.violations == []


def _is_a_forge_api(client: GitLabApi) -> ForgeApi:
    return client  # mypy holds GitLabApi to the ForgeApi protocol here


@pytest.fixture
async def gitlab_api_api(gitlab_api_gitlab: FakeGitLab) -> AsyncIterator[GitLabApi]:
    client = GitLabApi(gitlab_api_gitlab.api_url, GITLAB_TOKEN)
    _is_a_forge_api(client)
    yield client
    await client.close()


async def test_issues_and_merge_requests_are_numbered_apart(
    gitlab_api_gitlab: FakeGitLab, gitlab_api_api: GitLabApi
) -> None:
    """Issue #1 and merge request !1 each keep their own comments."""
    issue = gitlab_api_gitlab.open_issue(REPO, "t", author="wendy")
    mr = gitlab_api_gitlab.open_mr(REPO, "feature", author="wendy")
    assert issue == mr == 1
    await gitlab_api_api.comment(SLUG, 1, "on the issue")
    posted = await gitlab_api_api.comment(SLUG, 1, "on the merge request", pull=True)
    assert posted.url.endswith(f"/{REPO}/-/merge_requests/1#note_{posted.id}")
    await gitlab_api_api.edit_comment(SLUG, posted.id, "edited", number=1, pull=True)
    assert [c.body for c in await gitlab_api_api.comments(SLUG, 1)] == ["on the issue"]
    assert [c.body for c in await gitlab_api_api.comments(SLUG, 1, pull=True)] == ["edited"]
    with pytest.raises(ForgeApiError) as caught:  # a note is found by what it is on
        await gitlab_api_api.edit_comment(SLUG, posted.id, "x", number=1)
    assert caught.value.status == 404


async def test_system_notes_are_no_comments_and_pages_are_followed(
    gitlab_api_gitlab: FakeGitLab, gitlab_api_api: GitLabApi
) -> None:
    """GitLab's own notes are left out; 250 comments come back whole, oldest first."""
    iid = gitlab_api_gitlab.open_issue(REPO, "t", author="wendy")
    gitlab_api_gitlab.assign(REPO, iid, BOT_LOGIN, by="wendy")
    for n in range(250):
        gitlab_api_gitlab.add_note(REPO, iid, f"c{n}", author="wendy")
    comments = await gitlab_api_api.comments(SLUG, iid)
    assert [c.body for c in comments] == [f"c{n}" for n in range(250)]
    pages = [s for s in gitlab_api_gitlab.requests if s.path.endswith(f"/issues/{iid}/notes")]
    assert len(pages) == 3 and all("per_page=100" in s.query for s in pages)


async def test_an_issue_without_description_reads_empty(
    gitlab_api_gitlab: FakeGitLab, gitlab_api_api: GitLabApi
) -> None:
    """GitLab's null description is an empty body; its state opened is open."""
    iid = gitlab_api_gitlab.open_issue(REPO, "t", "", author="wendy", labels=["bug"])
    issue = await gitlab_api_api.issue(SLUG, iid)
    assert (issue.body, issue.state, issue.labels) == ("", "open", ("bug",))


async def test_who_assigned_whom_is_read_from_system_notes(
    gitlab_api_gitlab: FakeGitLab, gitlab_api_api: GitLabApi
) -> None:
    """Several names given at once, one taken: each a change by the note's author, with
    the label events in time order."""
    iid = gitlab_api_gitlab.open_issue(REPO, "t", author="wendy")
    gitlab_api_gitlab.label(REPO, iid, "fleetwarden", by="wendy")
    gitlab_api_gitlab.assign(REPO, iid, "a", "b", "c", by="olga")
    gitlab_api_gitlab.unassign(REPO, iid, "b", by="wendy")
    changes = await gitlab_api_api.issue_changes(SLUG, iid)
    assert [(c.kind, c.name, c.actor) for c in changes] == [
        ("labeled", "fleetwarden", "wendy"),
        ("assigned", "a", "olga"),
        ("assigned", "b", "olga"),
        ("assigned", "c", "olga"),
        ("unassigned", "b", "wendy"),
    ]


def test_gitlabs_assignment_wordings_are_read() -> None:
    """Both parts in one note; GitLab's older "additionally" form; forms naming no one."""

    def note(body: str, system: bool = True) -> dict[str, Any]:
        return {"system": system, "body": body, "author": {"username": "olga"},
                "created_at": "2026-01-01T00:00:00.000Z"}  # fmt: skip

    both = assignee_changes_of(note("assigned to @a and @b and unassigned @c"))
    assert [(c.kind, c.name) for c in both] == [
        ("assigned", "a"),
        ("assigned", "b"),
        ("unassigned", "c"),
    ]
    older = assignee_changes_of(note("assigned to @a additionally to @b"))
    assert [(c.kind, c.name) for c in older] == [("assigned", "a")]
    assert assignee_changes_of(note("removed all assignees")) == []
    assert assignee_changes_of(note("assigned to @a", system=False)) == []


async def test_a_draft_is_lifted_whatever_its_prefix_and_made_again(
    gitlab_api_gitlab: FakeGitLab, gitlab_api_api: GitLabApi
) -> None:
    """[Draft], (Draft), Draft - all come off; to_draft puts Draft: back."""
    for n, title in enumerate(("[Draft] Fix", "(draft) Fix", "Draft - Fix", "Draft: Fix")):
        iid = gitlab_api_gitlab.open_mr(REPO, f"branch-{n}", title=title, author="wendy")
        await gitlab_api_api.ready_for_review(SLUG, iid)
        assert (
            not gitlab_api_gitlab.is_draft(REPO, iid)
            and gitlab_api_gitlab.mr(REPO, iid).title == "Fix"
        )
        await gitlab_api_api.to_draft(SLUG, iid)
        assert gitlab_api_gitlab.mr(REPO, iid).title == "Draft: Fix"
    assert without_draft("WIP: [Draft] x") == "x"


async def test_an_edited_draft_keeps_its_prefix(
    gitlab_api_gitlab: FakeGitLab, gitlab_api_api: GitLabApi
) -> None:
    """A new title on a draft stays a draft."""
    gitlab_api_gitlab.add_branch(REPO, "d")
    pull = await gitlab_api_api.open_pull(
        SLUG, head="d", base="main", title="T", body="", draft=True
    )
    assert pull.title == "Draft: T" and pull.draft
    await gitlab_api_api.edit_pull(SLUG, pull.number, title="T2")
    assert (await gitlab_api_api.pull(SLUG, pull.number)).title == "Draft: T2"


async def test_a_review_is_a_note_an_approval_gitlabs_and_reviews_the_approvals(
    gitlab_api_gitlab: FakeGitLab, gitlab_api_api: GitLabApi
) -> None:
    """Reviews read back are the approvals; a review's body is a note on the merge request."""
    iid = gitlab_api_gitlab.open_mr(REPO, "feature", author="wendy")
    address = await gitlab_api_api.review(SLUG, iid, "looks right", event="APPROVE")
    assert f"/merge_requests/{iid}#note_" in address
    await gitlab_api_api.review(SLUG, iid, "one more thing", event="REQUEST_CHANGES")
    reviews = await gitlab_api_api.reviews(SLUG, iid)
    assert [(r.author, r.state) for r in reviews] == [(BOT_LOGIN, "approved")]
    bodies = [n.body for n in gitlab_api_gitlab.notes_on(REPO, iid, pull=True) if not n.system]
    assert bodies == ["looks right", "one more thing"]
    with pytest.raises(ForgeApiError) as caught:  # approved already: GitLab's 401
        await gitlab_api_api.review(SLUG, iid, "again", event="APPROVE")
    assert caught.value.status == 422


async def test_reviewers_are_asked_by_id(
    gitlab_api_gitlab: FakeGitLab, gitlab_api_api: GitLabApi
) -> None:
    """Reviewers are added to those asked already; an unknown login is refused."""
    iid = gitlab_api_gitlab.open_mr(REPO, "feature", author="olga")
    await gitlab_api_api.request_review(SLUG, iid, ["wendy"])
    await gitlab_api_api.request_review(SLUG, iid, [BOT_LOGIN])
    assert gitlab_api_gitlab.mr(REPO, iid).reviewers == ["wendy", BOT_LOGIN]
    with pytest.raises(ForgeApiError, match="no user"):
        await gitlab_api_api.request_review(SLUG, iid, ["nobody-at-all"])


async def test_a_merge_whose_head_moved_is_a_409(
    gitlab_api_gitlab: FakeGitLab, gitlab_api_api: GitLabApi
) -> None:
    """The sha guard: an old head refused, saying it moved; the current one merges."""
    iid = gitlab_api_gitlab.open_mr(REPO, "feature", author="wendy")
    with pytest.raises(ForgeApiError, match="head moved") as caught:
        await gitlab_api_api.merge_pull(SLUG, iid, sha="0" * 40)
    assert caught.value.status == 409
    merged = await gitlab_api_api.merge_pull(SLUG, iid, sha=gitlab_api_gitlab.mr(REPO, iid).sha)
    assert merged.merged and merged.state == "closed"


async def test_files_default_branch_and_the_cap(
    gitlab_api_gitlab: FakeGitLab, gitlab_api_api: GitLabApi
) -> None:
    """The default branch is the project's; a big file is cut and says so."""
    gitlab_api_gitlab.world.project(REPO).default_branch = "trunk"
    gitlab_api_gitlab.add_branch(REPO, "trunk", files={"big.txt": "x" * (1024 * 1024 + 5)})
    found = await gitlab_api_api.file(SLUG, "big.txt")
    assert found.truncated and len(found.text) == 1024 * 1024 and len(found.sha) == 40


async def test_access_levels_become_permissions(
    gitlab_api_gitlab: FakeGitLab, gitlab_api_api: GitLabApi
) -> None:
    """Owner through the group is admin, Reporter read, a stranger none."""
    gitlab_api_gitlab.add_member(REPO, "rita", 20)
    gitlab_api_gitlab.add_user("stranger")
    assert await gitlab_api_api.permission(SLUG, "olga") == "admin"
    assert await gitlab_api_api.permission(SLUG, "rita") == "read"
    assert await gitlab_api_api.permission(SLUG, "stranger") == "none"
    assert [permission_of(x) for x in (50, 40, 30, 20, 10, 5, 0)] == [
        "admin", "admin", "write", "read", "read", "read", "none",
    ]  # fmt: skip


async def test_a_team_is_a_subgroup(
    gitlab_api_gitlab: FakeGitLab, gitlab_api_api: GitLabApi
) -> None:
    """A member of acme/devs is in the team and, through it, not in acme itself."""
    gitlab_api_gitlab.add_group_member("acme", BOT_LOGIN, 10)
    gitlab_api_gitlab.add_group_member("acme/devs", "dora", 30)
    assert await gitlab_api_api.in_team("acme", "devs", "dora")
    assert not await gitlab_api_api.in_org("acme", "dora")
    assert await gitlab_api_api.in_org("acme", "olga") and await gitlab_api_api.in_team(
        "acme", "devs", "olga"
    )


async def test_a_check_run_is_a_commit_status(
    gitlab_api_gitlab: FakeGitLab, gitlab_api_api: GitLabApi
) -> None:
    """Queued is pending, completed-success success: one status, moved on, its id kept."""
    sha = gitlab_api_gitlab.branches(REPO)["main"]
    made = await gitlab_api_api.check_run(
        SLUG, CheckRun(head_sha=sha, title="Fleetwarden", summary="s", status="queued")
    )
    done = CheckRun(
        head_sha=sha, title="Done", summary="s", status="completed", conclusion="failure"
    )
    again = await gitlab_api_api.check_run(SLUG, done, check_id=made)
    assert made == again
    assert [(s["name"], s["state"]) for s in gitlab_api_gitlab.statuses(REPO)] == [
        ("fleetwarden", "failed")
    ]


def test_the_no_reply_address_is_gitlabs() -> None:
    """gitlab.com's own domain; a self-managed host's; an IP address names no one."""
    assert (
        gitlab_no_reply_address(7, "wendy", "https://gitlab.com/api/v4")
        == "7-wendy@users.noreply.gitlab.com"
    )
    assert (
        gitlab_no_reply_address(7, "wendy", "https://git.example.com/api/v4")
        == "7-wendy@users.noreply.git.example.com"
    )
    assert gitlab_no_reply_address(7, "wendy", "http://127.0.0.1:9/api/v4") == (
        "7-wendy@users.noreply.gitlab.invalid"
    )
    assert gitlab_no_reply_address(7, "bad name", "https://gitlab.com/api/v4") is None


async def test_a_wrong_token_is_401_and_named_nowhere(
    gitlab_api_gitlab: FakeGitLab, caplog: pytest.LogCaptureFixture
) -> None:
    """A token GitLab does not know is a 401 whose message, like every log line, lacks it."""
    secret = "not-a-real-token-5f1e2d3c4b5a69788796"
    client = GitLabApi(gitlab_api_gitlab.api_url, secret)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ForgeApiError) as caught:
        await client.whoami()
    await client.close()
    assert caught.value.status == 401 and secret not in str(caught.value)
    assert secret not in caplog.text and secret not in repr(client)


class _Hostile(LoopbackServer):
    """A server answering every call with ``self.body`` (and the token echoed back)."""

    def __init__(self) -> None:
        super().__init__()
        self.body: Any = None
        self.headers: dict[str, str] = {}

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._any)

    async def _any(self, request: web.Request) -> web.Response:
        if isinstance(self.body, int):
            said = request.headers.get("Authorization", "")
            return web.json_response({"message": f"bad {said}"}, status=self.body)
        return web.json_response(self.body, headers=self.headers)


GOOD: dict[str, Any] = {
    "iid": 1,
    "title": "t",
    "author": {"username": "w"},
    "state": "opened",
    "web_url": "u",
    "updated_at": "2026-01-01T00:00:00Z",
    "labels": [],
}


GOOD: dict[str, Any] = {
    "iid": 1,
    "title": "t",
    "author": {"username": "w"},
    "state": "opened",
    "web_url": "u",
    "updated_at": "2026-01-01T00:00:00Z",
    "labels": [],
}


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"iid": "1"},
        {**GOOD, "author": "wendy"},
        {**GOOD, "author": {"username": 3}},
        {**GOOD, "state": "weird"},
        {**GOOD, "updated_at": "yesterday"},
        {**GOOD, "labels": [3]},
        {**GOOD, "assignees": "wendy"},
    ],
)
async def test_a_malformed_answer_is_an_error_not_a_crash(body: Any) -> None:
    """Every wrong shape of an issue is a ForgeApiError naming the call."""
    async with _Hostile() as server:
        server.body = body
        client = GitLabApi(server.base_url + "/api/v4", GITLAB_TOKEN)
        with pytest.raises(ForgeApiError, match="GET /projects/acme%2Fapp/issues/1"):
            await client.issue(SLUG, 1)
        await client.close()


async def test_hostile_listings_and_files_are_errors() -> None:
    """A listing that is no list, notes of the wrong shape, a file not base64: errors."""
    async with _Hostile() as server:
        client = GitLabApi(server.base_url + "/api/v4", GITLAB_TOKEN)
        server.body = {"not": "a list"}
        with pytest.raises(ForgeApiError, match="no list"):
            await client.comments(SLUG, 1)
        server.body = [{"id": "x", "system": False}]
        with pytest.raises(ForgeApiError, match="valid 'id'"):
            await client.comments(SLUG, 1)
        server.body = {"default_branch": "main", "encoding": "text", "content": "x", "blob_id": "b"}
        with pytest.raises(ForgeApiError):
            await client.file(SLUG, "a.txt")
        server.body = [{"id": 1, "username": "u"}]
        server.headers = {"X-Next-Page": "1"}  # a page that points back is not followed
        assert await client.user("u") == (1, "u")
        await client.close()


async def test_a_refusal_echoing_the_token_does_not_carry_it() -> None:
    """GitLab's words are blotted of the token before they reach an error."""
    async with _Hostile() as server:
        server.body = 403
        client = GitLabApi(server.base_url + "/api/v4", GITLAB_TOKEN)
        with pytest.raises(ForgeApiError) as caught:
            await client.pull(SLUG, 1)
        await client.close()
    assert caught.value.status == 403 and GITLAB_TOKEN not in str(caught.value)


def test_a_client_needs_a_token() -> None:
    """An empty token is refused at construction."""
    with pytest.raises(ValueError, match="token"):
        GitLabApi("https://gitlab.com/api/v4", "")


async def test_internal_notes_and_confidential_issues_are_never_read(
    gitlab_api_gitlab: FakeGitLab, gitlab_api_api: GitLabApi
) -> None:
    """What GitLab shows members only (an internal note, a confidential issue) is never read
    into a prompt, whence an agent could carry it to a public post."""
    public = gitlab_api_gitlab.open_issue(REPO, "Open", "for all", author="wendy")
    gitlab_api_gitlab.add_note(REPO, public, "seen by all", author="wendy")
    said = gitlab_api_gitlab.add_note(REPO, public, "members only", author="wendy")
    gitlab_api_gitlab.issue(REPO, public).notes[-1].internal = True
    assert [c.body for c in await gitlab_api_api.comments(SLUG, public)] == ["seen by all"]
    assert said
    hidden = gitlab_api_gitlab.open_issue(REPO, "A vulnerability", "the details", author="wendy")
    gitlab_api_gitlab.issue(REPO, hidden).confidential = True
    with pytest.raises(ForgeApiError, match="is confidential, and is not read"):
        await gitlab_api_api.issue(SLUG, hidden)


async def test_a_guest_of_the_group_is_no_member_who_may_act(
    gitlab_api_gitlab: FakeGitLab, gitlab_api_api: GitLabApi
) -> None:
    """``allow.org``/``team`` on GitLab: a Guest or a Reporter of the group is not enough."""
    gitlab_api_gitlab.add_group_member("acme", "gus", 10)
    gitlab_api_gitlab.add_group_member("acme", "rex", 20)
    gitlab_api_gitlab.add_group_member("acme", "dev", 30)
    assert not await gitlab_api_api.in_org("acme", "gus") and not await gitlab_api_api.in_org(
        "acme", "rex"
    )
    assert await gitlab_api_api.in_org("acme", "dev")
