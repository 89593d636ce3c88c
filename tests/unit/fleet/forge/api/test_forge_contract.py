"""The forge contract (tests/forge_contract.py) run over every ForgeApi: the in-memory
double forge work's tests use, the GitHub client on the strict fake GitHub, the Gitea
client on the strict fake Gitea and the GitLab client on the strict fake GitLab. Each fake
server is stopped after its test, and its judge has found nothing wrong with what the
client sent."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from fleet.forge.api.gitea.client import GiteaApi
from fleet.forge.api.github.client import GitHubApi
from fleet.forge.api.gitlab.client import GitLabApi
from fleet.forge.model import ForgeApi, ForgeFile, ForgePull, ForgeReview
from tests.fakes.gitea import api as gitea_api
from tests.fakes.gitea.api import GITEA_TOKEN, FakeGitea
from tests.fakes.github.api import BOT_LOGIN, DEFAULT_PAT, FakeGitHub
from tests.fakes.gitlab.api import BOT_LOGIN as GITLAB_BOT
from tests.fakes.gitlab.api import GITLAB_TOKEN, FakeGitLab
from tests.forge_contract import WRITER, ForgeContract, ForgeHarness
from tests.unit.fleet.forge.forge_double import BOT, SLUG, WHEN, FakeForgeApi

REPO = str(SLUG)
FILES = {"README.md": "hello\n", "src/a.py": "x = 1\n"}


def _sha(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


class DoubleForge:
    """The in-memory double, seeded as people would act on a forge."""

    def __init__(self) -> None:
        self.double = FakeForgeApi()
        self.api: ForgeApi = self.double
        self.repo, self.bot = SLUG, BOT
        self._branches = {"main"}
        self.double.allow(BOT, "admin")
        self.double.allow(WRITER)
        for path, text in FILES.items():
            self.double.files[(REPO, path, None)] = ForgeFile(path, text, _sha("main", path))

    def _number(self) -> int:
        return max((n for _, n in [*self.double.issues, *self.double.pulls]), default=0) + 1

    def opens_issue(self, title: str, body: str, *, author: str) -> int:
        return self.double.add_issue(self._number(), title=title, body=body, author=author).number

    def comments(self, number: int, body: str, *, author: str) -> int:
        return self.double.add_comment(number, author, body).id

    def labels(self, number: int, label: str, *, by: str, taken: bool = False) -> None:
        issue = self.double.issues[(REPO, number)]
        labels = tuple(x for x in issue.labels if x != label) + (() if taken else (label,))
        self.double.issues[(REPO, number)] = replace(issue, labels=labels)
        self.double.change(number, "unlabeled" if taken else "labeled", label, by)

    def assigns(self, number: int, login: str, *, by: str) -> None:
        issue = self.double.issues[(REPO, number)]
        assignees = (*issue.assignees, login)
        self.double.issues[(REPO, number)] = replace(issue, assignees=assignees)
        self.double.change(number, "assigned", login, by)

    def closes(self, number: int) -> None:
        issue = self.double.issues[(REPO, number)]
        self.double.issues[(REPO, number)] = replace(issue, state="closed")

    def branch(self, name: str, files: dict[str, str]) -> None:
        self._branches.add(name)
        for path, text in files.items():
            self.double.files[(REPO, path, name)] = ForgeFile(path, text, _sha(name, path))

    def opens_pull(self, head: str, *, author: str) -> int:
        number = self._number()
        self.double.pulls[(REPO, number)] = ForgePull(
            number=number,
            title="A change",
            body="",
            author=author,
            head=head,
            base="main",
            head_sha=_sha(head),
            state="open",
            merged=False,
            draft=False,
            url=f"https://github.com/{REPO}/pull/{number}",
            updated_at=WHEN,
        )
        return number

    def reviews(self, number: int, state: str, body: str, *, author: str) -> None:
        made = ForgeReview(next(self.double._ids), author, state.lower(), body, WHEN)
        self.double.review_lists.setdefault((REPO, number), []).append(made)

    def merges(self, number: int) -> None:
        pull = self.double.pulls[(REPO, number)]
        self.double.pulls[(REPO, number)] = replace(pull, state="closed", merged=True)

    def member(self, login: str) -> None:
        self.double.org_members.add(("acme", login.lower()))
        self.double.team_members.add(("acme", "devs", login.lower()))

    def user(self, login: str) -> None:
        self.double.users.add(login)

    def branches(self) -> set[str]:
        return self._branches - {b for _, b in self.double.deleted_branches}

    def asked_to_review(self, number: int) -> list[str]:
        return list(self.double.review_requests.get((REPO, number), []))

    def draft(self, number: int) -> bool:
        return self.double.pulls[(REPO, number)].draft

    def reviews_held(self, number: int) -> list[tuple[str, str]]:
        return [(r.author, r.body) for r in self.double.review_lists.get((REPO, number), [])]


class GitHubForge:
    """The GitHub client, acting with a PAT of :data:`BOT_LOGIN`, on the strict fake."""

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        fake.add_repo(REPO, base_sha=_sha("main"), files=dict(FILES))
        fake.add_collaborator(REPO, BOT_LOGIN, "admin")
        fake.add_collaborator(REPO, WRITER, "write")
        self.api: ForgeApi = GitHubApi(fake.api_url, DEFAULT_PAT)
        self.repo, self.bot = SLUG, BOT_LOGIN

    def opens_issue(self, title: str, body: str, *, author: str) -> int:
        return self.fake.add_issue(REPO, title, body, author=author)

    def comments(self, number: int, body: str, *, author: str) -> int:
        return self.fake.add_comment(REPO, number, body, author=author)

    def labels(self, number: int, label: str, *, by: str, taken: bool = False) -> None:
        (self.fake.unlabel if taken else self.fake.label)(REPO, number, label, by=by)

    def assigns(self, number: int, login: str, *, by: str) -> None:
        self.fake.assign(REPO, number, login, by=by)

    def closes(self, number: int) -> None:
        self.fake.close_issue(REPO, number)

    def branch(self, name: str, files: dict[str, str]) -> None:
        self.fake.set_branch(REPO, name, _sha(name), files={**FILES, **files})

    def opens_pull(self, head: str, *, author: str) -> int:
        return self.fake.add_pull(REPO, head, author=author)

    def reviews(self, number: int, state: str, body: str, *, author: str) -> None:
        self.fake.submit_review(REPO, number, author, state, body)  # type: ignore[arg-type]

    def merges(self, number: int) -> None:
        self.fake.merge_pull(REPO, number)

    def member(self, login: str) -> None:
        self.fake.add_org_member("acme", login)
        self.fake.add_team_member("acme", "devs", login)

    def user(self, login: str) -> None:
        self.fake.accounts.get(login)

    def branches(self) -> set[str]:
        return set(self.fake.repo(REPO).all_branches())

    def asked_to_review(self, number: int) -> list[str]:
        pull = self.fake.issue_of(REPO, number).pull
        return list(pull.requested) if pull is not None else []

    def draft(self, number: int) -> bool:
        return self.fake.is_draft(REPO, number)

    def reviews_held(self, number: int) -> list[tuple[str, str]]:
        return [(author, body) for author, _, body in self.fake.reviews_of(REPO, number)]


class GiteaForge:
    """The Gitea client, acting with the token of :data:`gitea_api.BOT_LOGIN`, on the
    strict fake."""

    def __init__(self, fake: FakeGitea) -> None:
        self.fake = fake
        fake.add_org("acme", owners=["olga"], members=[gitea_api.BOT_LOGIN])
        fake.add_repo(REPO, files=dict(FILES))
        fake.add_collaborator(REPO, gitea_api.BOT_LOGIN, "admin")
        fake.add_collaborator(REPO, WRITER, "write")
        self.api: ForgeApi = GiteaApi(fake.api_url, GITEA_TOKEN)
        self.repo, self.bot = SLUG, gitea_api.BOT_LOGIN

    def opens_issue(self, title: str, body: str, *, author: str) -> int:
        return self.fake.add_issue(REPO, title, body, author=author)

    def comments(self, number: int, body: str, *, author: str) -> int:
        return self.fake.add_comment(REPO, number, body, author=author)

    def labels(self, number: int, label: str, *, by: str, taken: bool = False) -> None:
        (self.fake.unlabel if taken else self.fake.add_label)(REPO, number, label, by=by)

    def assigns(self, number: int, login: str, *, by: str) -> None:
        self.fake.assign(REPO, number, login, by=by)

    def closes(self, number: int) -> None:
        self.fake.world.close(self.fake.issue(REPO, number))

    def branch(self, name: str, files: dict[str, str]) -> None:
        self.fake.add_branch(REPO, name, files=files)

    def opens_pull(self, head: str, *, author: str) -> int:
        return self.fake.add_pull(REPO, head, author=author)

    def reviews(self, number: int, state: str, body: str, *, author: str) -> None:
        self.fake.submit_review(REPO, number, author, state, body)

    def merges(self, number: int) -> None:
        self.fake.merge_pull(REPO, number)

    def member(self, login: str) -> None:
        self.fake.add_team("acme", "devs", members=[login, gitea_api.BOT_LOGIN])

    def user(self, login: str) -> None:
        self.fake.add_user(login)

    def branches(self) -> set[str]:
        return set(self.fake.branches(REPO))

    def asked_to_review(self, number: int) -> list[str]:
        pull = self.fake.issue(REPO, number).pull
        reviews = pull.reviews if pull is not None else []
        return [r.author for r in reviews if r.state == "REQUEST_REVIEW"]

    def draft(self, number: int) -> bool:
        return self.fake.is_draft(REPO, number)

    def reviews_held(self, number: int) -> list[tuple[str, str]]:
        held = self.fake.reviews_of(REPO, number)
        return [(author, body) for author, state, body in held if state != "REQUEST_REVIEW"]


# GitLab Free keeps no review objects: a review is a note, an approval GitLab's approval,
# and the reviews read back are the approvals alone. These tests read reviews back with
# their bodies and "changes requested" states, which GitLab does not hold; what GitLab
# does instead is pinned in gitlab/test_client.py.
GITLAB_HAS_NO = {
    "test_a_review_is_asked_for_and_reviews_read_in_githubs_words": "review objects",
    "test_a_review_is_posted_with_its_body": "review objects",
    "test_anothers_pull_request_is_approved_or_changes_asked": "review objects",
}


class GitLabForge:
    """The GitLab client, acting with the token of :data:`GITLAB_BOT` (a Maintainer of
    project ``acme/app``), on the strict fake. Issues and merge requests are numbered
    apart; a person's review is what GitLab keeps of one: their note and, for an
    approval, their approval."""

    def __init__(self, fake: FakeGitLab) -> None:
        self.fake = fake
        fake.add_group("acme", members={"olga": 50, GITLAB_BOT: 10})
        fake.add_project(REPO, files=dict(FILES))
        fake.add_member(REPO, GITLAB_BOT, 40)
        fake.add_member(REPO, WRITER, 30)
        self.api: ForgeApi = GitLabApi(fake.api_url, GITLAB_TOKEN)
        self.repo, self.bot = SLUG, GITLAB_BOT

    def opens_issue(self, title: str, body: str, *, author: str) -> int:
        return self.fake.open_issue(REPO, title, body, author=author)

    def comments(self, number: int, body: str, *, author: str) -> int:
        return self.fake.add_note(REPO, number, body, author=author)

    def labels(self, number: int, label: str, *, by: str, taken: bool = False) -> None:
        self.fake.label(REPO, number, label, by=by, removed=taken)

    def assigns(self, number: int, login: str, *, by: str) -> None:
        self.fake.assign(REPO, number, login, by=by)

    def closes(self, number: int) -> None:
        self.fake.close_issue(REPO, number)

    def branch(self, name: str, files: dict[str, str]) -> None:
        self.fake.add_branch(REPO, name, files=files)

    def opens_pull(self, head: str, *, author: str) -> int:
        self.fake.add_member(REPO, author, 30)
        return self.fake.open_mr(REPO, head, author=author)

    def reviews(self, number: int, state: str, body: str, *, author: str) -> None:
        self.fake.add_note(REPO, number, body, author=author, pull=True)
        if state == "APPROVED":
            self.fake.approve(REPO, number, by=author)

    def merges(self, number: int) -> None:
        self.fake.merge_mr(REPO, number)

    def member(self, login: str) -> None:
        self.fake.add_group_member("acme", login, 30)
        self.fake.add_group_member("acme/devs", login, 30)

    def user(self, login: str) -> None:
        self.fake.add_user(login)

    def branches(self) -> set[str]:
        return set(self.fake.branches(REPO))

    def asked_to_review(self, number: int) -> list[str]:
        return list(self.fake.mr(REPO, number).reviewers)

    def draft(self, number: int) -> bool:
        return self.fake.is_draft(REPO, number)

    def reviews_held(self, number: int) -> list[tuple[str, str]]:
        notes = self.fake.notes_on(REPO, number, pull=True)
        return [(n.author, n.body) for n in notes if not n.system]


class TestForgeContract(ForgeContract):
    @pytest.fixture(params=["double", "github", "gitea", "gitlab"])
    async def forge(self, request: pytest.FixtureRequest) -> AsyncIterator[ForgeHarness]:
        if request.param == "double":
            yield DoubleForge()
            return
        if request.param == "github":
            async with FakeGitHub() as github:
                harness: GitHubForge | GiteaForge | GitLabForge = GitHubForge(github)
                try:
                    yield harness
                finally:
                    await harness.api.close()
            assert github.violations == []
            return
        if request.param == "gitlab":
            missing = GITLAB_HAS_NO.get(request.node.originalname)
            if missing is not None:
                pytest.skip(f"GitLab Free has no {missing}")
            async with FakeGitLab() as gitlab:
                harness = GitLabForge(gitlab)
                try:
                    yield harness
                finally:
                    await harness.api.close()
            assert gitlab.violations == []
            return
        async with FakeGitea() as gitea:
            harness = GiteaForge(gitea)
            try:
                yield harness
            finally:
                await harness.api.close()
        assert gitea.violations == []
