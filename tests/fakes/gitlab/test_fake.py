"""The strict fake GitLab itself: it refuses as GitLab does (no token, a wrong one, a
project out of sight, too low an access level, a moved head, one's own approval), it
records what GitLab's description does not allow, and its webhook sender disables a
failing hook by GitLab's rule."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from fleet.timing.clock import ManualClock
from tests.fakes.gitlab.api import BOT_LOGIN, GITLAB_TOKEN, FakeGitLab, Token
from tests.fakes.gitlab.hook_sender import HookSender, HookState
from tests.fakes.gitlab.spec import GitLabSpec
from tests.fakes.loopback import LoopbackServer
from tests.git_upstream import GitUpstream, git

REPO = "acme/app"
PROJECT = "/projects/acme%2Fapp"


@pytest.fixture
async def fake_gitlab() -> AsyncIterator[FakeGitLab]:
    tokens = {
        GITLAB_TOKEN: Token(BOT_LOGIN),
        "guest-token": Token("gus"),
        "dev-token": Token("wendy"),
        "reader-token": Token("rita", ("read_api",)),
    }
    async with FakeGitLab(tokens) as fake:
        fake.add_project(REPO, files={"README.md": "hello\n"})
        fake.add_member(REPO, BOT_LOGIN, 40)
        fake.add_member(REPO, "gus", 10)
        fake.add_member(REPO, "wendy", 30)
        fake.add_member(REPO, "rita", 30)
        yield fake


async def _ask(
    fake: FakeGitLab,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: object = None,
    params: dict[str, str] | None = None,
) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, fake.api_url + path, headers=headers or {}, json=body, params=params
        ) as answer,  # fmt: skip
    ):
        raw = await answer.read()
        return answer.status, json.loads(raw) if raw else None


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_no_token_or_a_wrong_one_is_401_as_gitlab_says_it(fake_gitlab: FakeGitLab) -> None:
    """Without a token, with an unknown one in either header: 401 Unauthorized."""
    for headers in ({}, {"PRIVATE-TOKEN": "nope"}, _bearer("nope"), {"Authorization": "token x"}):
        assert await _ask(fake_gitlab, "GET", "/user", headers=headers) == (
            401,
            {"message": "401 Unauthorized"},
        )
    assert fake_gitlab.violations == []


async def test_either_header_carries_the_token(fake_gitlab: FakeGitLab) -> None:
    """PRIVATE-TOKEN and Authorization: Bearer both name the token's user."""
    for headers in ({"PRIVATE-TOKEN": GITLAB_TOKEN}, _bearer(GITLAB_TOKEN)):
        status, data = await _ask(fake_gitlab, "GET", "/user", headers=headers)
        assert status == 200 and isinstance(data, dict) and data["username"] == BOT_LOGIN
    assert fake_gitlab.violations == []


async def test_a_project_out_of_sight_is_404_project_not_found(fake_gitlab: FakeGitLab) -> None:
    """A stranger, and anyone asking for a project that is not there, get the same 404."""
    fake_gitlab.tokens["stranger-token"] = Token("stranger")
    fake_gitlab.add_user("stranger")
    for token, path in (("stranger-token", PROJECT), (GITLAB_TOKEN, "/projects/acme%2Fnone")):
        status, data = await _ask(fake_gitlab, "GET", path, headers=_bearer(token))
        assert (status, data) == (404, {"message": "404 Project Not Found"})
    assert fake_gitlab.violations == []


async def test_access_levels_are_enforced(fake_gitlab: FakeGitLab) -> None:
    """A Guest comments on an issue but cannot see a merge request or open one; a
    Developer opens one; a read_api token writes nothing."""
    iid = fake_gitlab.open_issue(REPO, "t", author="wendy")
    fake_gitlab.add_branch(REPO, "feature", files={"f": "f"})
    guest = _bearer("guest-token")
    status, _ = await _ask(fake_gitlab, "POST", f"{PROJECT}/issues/{iid}/notes", headers=guest,
                           body={"body": "me too"})  # fmt: skip
    assert status == 201
    mr = {"source_branch": "feature", "target_branch": "main", "title": "T"}
    assert (await _ask(fake_gitlab, "POST", f"{PROJECT}/merge_requests", headers=guest, body=mr))[
        0
    ] == 403
    read = await _ask(
        fake_gitlab, "POST", f"{PROJECT}/merge_requests", headers=_bearer("reader-token"), body=mr
    )
    assert read == (403, {"error": "insufficient_scope"})
    status, made = await _ask(
        fake_gitlab, "POST", f"{PROJECT}/merge_requests", headers=_bearer("dev-token"), body=mr
    )
    assert status == 201 and isinstance(made, dict) and made["draft"] is False
    seen = await _ask(fake_gitlab, "GET", f"{PROJECT}/merge_requests/{made['iid']}", headers=guest)
    assert seen == (404, {"message": "404 Merge Request Not Found"})
    again = await _ask(
        fake_gitlab, "POST", f"{PROJECT}/merge_requests", headers=_bearer("dev-token"), body=mr
    )
    assert again[0] == 409
    assert fake_gitlab.violations == []


async def test_a_merge_is_guarded_by_the_sha(fake_gitlab: FakeGitLab) -> None:
    """A sha that is not the source branch's head: 409 naming the head; the right one merges."""
    iid = fake_gitlab.open_mr(REPO, "feature", author="wendy")
    head = fake_gitlab.mr(REPO, iid).sha
    path = f"{PROJECT}/merge_requests/{iid}/merge"
    status, data = await _ask(
        fake_gitlab, "PUT", path, headers=_bearer(GITLAB_TOKEN), body={"sha": "0" * 40}
    )
    assert (status, data) == (409, {"message": f"SHA does not match HEAD of source branch: {head}"})
    status, data = await _ask(
        fake_gitlab, "PUT", path, headers=_bearer(GITLAB_TOKEN), body={"sha": head}
    )
    assert status == 200 and isinstance(data, dict) and data["state"] == "merged"
    status, _ = await _ask(
        fake_gitlab, "PUT", path, headers=_bearer(GITLAB_TOKEN), body={"sha": head}
    )
    assert status == 405
    assert fake_gitlab.violations == []


async def test_ones_own_merge_request_is_not_approved(fake_gitlab: FakeGitLab) -> None:
    """Its author's approval is 401 (merge_requests_author_approval is off); another's
    counts once, with GitLab's system note."""
    iid = fake_gitlab.open_mr(REPO, "feature", author="wendy")
    path = f"{PROJECT}/merge_requests/{iid}/approve"
    assert (await _ask(fake_gitlab, "POST", path, headers=_bearer("dev-token")))[0] == 401
    status, data = await _ask(fake_gitlab, "POST", path, headers=_bearer(GITLAB_TOKEN))
    assert status == 201 and isinstance(data, dict) and data["approved"] is True
    assert (await _ask(fake_gitlab, "POST", path, headers=_bearer(GITLAB_TOKEN)))[0] == 401
    notes = fake_gitlab.notes_on(REPO, iid, pull=True)
    assert [(n.author, n.body, n.system) for n in notes] == [
        (BOT_LOGIN, "approved this merge request", True)
    ]
    assert fake_gitlab.violations == []


async def test_an_assignment_is_a_system_note_in_gitlabs_words(fake_gitlab: FakeGitLab) -> None:
    """Assignees given and taken are recorded as GitLab writes them, names by to_sentence."""
    iid = fake_gitlab.open_issue(REPO, "t", author="wendy")
    fake_gitlab.assign(REPO, iid, "a", "b", "c", by="wendy")
    fake_gitlab.unassign(REPO, iid, "b", by="wendy")
    bodies = [n.body for n in fake_gitlab.notes_on(REPO, iid) if n.system]
    assert bodies == ["assigned to @a, @b, and @c", "unassigned @b"]


async def test_what_the_description_does_not_allow_is_a_violation(fake_gitlab: FakeGitLab) -> None:
    """An undescribed path, query parameter or body field, a wrong type: recorded, 400/404."""
    assert (await _ask(fake_gitlab, "GET", "/nothing/here", headers=_bearer(GITLAB_TOKEN)))[
        0
    ] == 404
    bad = await _ask(fake_gitlab, "GET", f"{PROJECT}/merge_requests", headers=_bearer(GITLAB_TOKEN),
                     params={"head": "x"})  # fmt: skip
    assert bad[0] == 400
    iid = fake_gitlab.open_issue(REPO, "t")
    notes = f"{PROJECT}/issues/{iid}/notes"
    wrong = await _ask(fake_gitlab, "POST", notes, headers=_bearer(GITLAB_TOKEN),
                       body={"body": 3, "sticky": True})  # fmt: skip
    assert wrong[0] == 400
    assert len(fake_gitlab.violations) == 4 and "undescribed operation" in fake_gitlab.violations[0]
    assert any("undescribed field 'sticky'" in v for v in fake_gitlab.violations)


def test_the_description_judges_answers_by_their_fields_and_stated_types() -> None:
    """A field it does not name, or a stated integer sent as text, is a violation; a field
    it calls ``string`` for want of a documented type takes a number."""
    spec = GitLabSpec.load()
    op, _ = spec.match("GET", "/api/v4/user") or (None, None)
    assert op is not None
    assert spec.check_answer(op, 200, {"id": 1, "username": "u", "bot": True}, b"x") == []
    found = spec.check_answer(op, 200, {"id": "1", "secret": 2}, b"x")
    assert any("'1' is not of type integer" in f for f in found)
    assert any("'secret' is not in the description" in f for f in found)


class _Receiver(LoopbackServer):
    """A webhook receiver answering the statuses it is told, one per delivery."""

    def __init__(self, statuses: list[int]) -> None:
        super().__init__()
        self.statuses = statuses
        self.got: list[bytes] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/hook", self._hook)

    async def _hook(self, request: web.Request) -> web.Response:
        self.got.append(await request.read())
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


async def test_four_4xx_in_a_row_disable_a_hook_until_re_enabled() -> None:
    """Three failures and a success keep it; four 4xx answers in a row disable it for good."""
    async with _Receiver([404, 500, 401, 200, 400, 400, 403, 422]) as receiver:
        hook = HookSender(receiver.base_url + "/hook")
        for _ in range(4):
            await hook.send({"X-Gitlab-Event": "Issue Hook"}, b"{}")
        assert hook.failures == 0 and hook.state is HookState.ENABLED
        for _ in range(4):
            await hook.send({}, b"{}")
        assert hook.state is HookState.PERMANENTLY_DISABLED
        assert not (await hook.send({}, b"{}")).sent and len(receiver.got) == 8
        hook.re_enable()
        assert (await hook.send({}, b"{}")).ok and len(receiver.got) == 9


async def test_5xx_and_timeouts_disable_a_hook_for_a_while() -> None:
    """Four 5xx-or-timeouts disable it for a minute; another failure then, for two."""
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    async with _Receiver([500, 502, 503, 500, 500]) as receiver:
        hook = HookSender(receiver.base_url + "/hook", clock=clock, timeout=5)
        for _ in range(4):
            await hook.send({}, b"{}")
        assert hook.state is HookState.TEMPORARILY_DISABLED
        assert not (await hook.send({}, b"{}")).sent
        clock.advance(61)
        assert (await hook.send({}, b"{}")).status == 500
        assert hook.disabled_until == clock.now() + timedelta(minutes=2)
        clock.advance(119)
        assert hook.state is HookState.TEMPORARILY_DISABLED
        clock.advance(2)
        assert (await hook.send({}, b"{}")).ok and hook.failures == 0


async def test_a_slow_receiver_fails_a_delivery() -> None:
    """No answer within the timeout is a failure, counted like a 5xx."""

    class _Slow(_Receiver):
        async def _hook(self, request: web.Request) -> web.Response:
            await asyncio.sleep(1)
            return web.Response()

    async with _Slow([]) as receiver:
        hook = HookSender(receiver.base_url + "/hook", timeout=0.05)
        delivery = await hook.send({}, b"{}")
        assert delivery.sent and delivery.status is None and delivery.error == "timed out"
        assert hook.failures == 1


async def test_a_project_linked_to_git_serves_what_was_pushed(
    fake_gitlab: FakeGitLab, tmp_path: Path
) -> None:
    """Branches, files and a merge request's head come from the real bare repository."""
    upstream = GitUpstream(tmp_path, "t")
    bare = upstream.create("app", {"README.md": "from git\n"})
    fake_gitlab.add_project("acme/linked")
    fake_gitlab.add_member("acme/linked", BOT_LOGIN, 40)
    fake_gitlab.link_git("acme/linked", bare)
    git("update-ref", "refs/heads/feature", upstream.commit("app", {"f.txt": "f\n"}), cwd=bare)
    iid = fake_gitlab.open_mr("acme/linked", "feature", author="wendy")
    path = "/projects/acme%2Flinked/repository/files/README.md"
    status, data = await _ask(fake_gitlab, "GET", path, headers=_bearer(GITLAB_TOKEN),
                              params={"ref": "main"})  # fmt: skip
    assert status == 200 and isinstance(data, dict) and data["size"] == len("from git\n")
    tip = upstream.commit("app", {"f.txt": "g\n"}, branch="feature")
    assert fake_gitlab.mr("acme/linked", iid).sha == tip
    assert fake_gitlab.violations == []
