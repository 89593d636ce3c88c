"""The forge contract (tests/forge_contract.py) run over every ForgeApi: the in-memory
double forge work's tests use, the GitHub client on the strict fake GitHub and the Gitea
client on the strict fake Gitea. Each fake server is stopped after its test, and its
judge has found nothing wrong with what the client sent."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from fleet.forge.api.gitea import GiteaApi
from fleet.forge.api.github import GitHubApi
from fleet.forge.model import ForgeApi, ForgeFile, ForgePull, ForgeReview
from tests.fakes import gitea_api
from tests.fakes.gitea_api import GITEA_TOKEN, FakeGitea
from tests.fakes.github_api import BOT_LOGIN, DEFAULT_PAT, FakeGitHub
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


class TestForgeContract(ForgeContract):
    @pytest.fixture(params=["double", "github", "gitea"])
    async def forge(self, request: pytest.FixtureRequest) -> AsyncIterator[ForgeHarness]:
        if request.param == "double":
            yield DoubleForge()
            return
        if request.param == "github":
            async with FakeGitHub() as github:
                harness: GitHubForge | GiteaForge = GitHubForge(github)
                try:
                    yield harness
                finally:
                    await harness.api.close()
            assert github.violations == []
            return
        async with FakeGitea() as gitea:
            harness = GiteaForge(gitea)
            try:
                yield harness
            finally:
                await harness.api.close()
        assert gitea.violations == []
