"""The GitLab kind of the forge suites: the strict fake GitLab, seen through the verbs the
suites use on every kind (:class:`GitLabSeen`: issues opened, comments read, merge requests
listed in the shapes GitHub's and Gitea's fakes give), and how GitLab words, authenticates
and numbers what happens on it (:class:`GitLabForge`).

GitLab numbers issues and merge requests apart: the first merge request of ``acme/app`` is
``!1`` beside issue ``#1``, so a suite names a merge request by what it was given, never
by a number it assumes. A review asking for changes is a note on the merge request (GitLab
Free has no review object); a delivery carries the hook's secret token
(``X-Gitlab-Token``), which is the suite's webhook secret."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.fakes.gitlab import api as gitlab_api
from tests.fakes.gitlab.api import FakeGitLab, Seen
from tests.fakes.gitlab.hooks import (
    gitlab_delivery,
    gitlab_issue,
    gitlab_merge_request,
    gitlab_note,
)
from tests.fakes.gitlab.state import DEVELOPER, MAINTAINER
from tests.integration.components import SLUG, WRITER
from tests.integration.forge.kinds import Forge

REPO = str(SLUG)


@dataclass(frozen=True)
class PullSeen:
    """A merge request as the suites read a pull request: its number (iid), title, body
    and head."""

    number: int
    title: str
    body: str
    head: str
    head_sha: str
    draft: bool
    state: str

    @property
    def pull(self) -> PullSeen:
        """Itself: GitHub's and Gitea's fakes keep a pull request's head on ``pull``."""
        return self


@dataclass(frozen=True)
class CommentSeen:
    """A note as the suites read a comment."""

    id: int
    author: str
    body: str


class GitLabSeen:
    """:class:`FakeGitLab` through the verbs the suites call on every kind's fake."""

    def __init__(self, fake: FakeGitLab) -> None:
        self.gitlab = fake

    @property
    def api_url(self) -> str:
        return self.gitlab.api_url

    @property
    def site(self) -> str:
        return self.gitlab.site

    @property
    def requests(self) -> list[Seen]:
        return self.gitlab.requests

    @property
    def violations(self) -> list[str]:
        return self.gitlab.violations

    def add_issue(
        self,
        repo: str,
        title: str,
        body: str = "",
        *,
        author: str = WRITER,
        labels: Sequence[str] = (),
        assignees: Sequence[str] = (),
    ) -> int:
        """An issue opened by ``author`` with its labels (each a label event of theirs)."""
        return self.gitlab.open_issue(
            repo, title, body, author=author, labels=labels, assignees=assignees
        )

    def add_comment(self, repo: str, number: int, body: str, *, author: str) -> int:
        return self.gitlab.add_note(repo, number, body, author=author)

    def comments_on(self, repo: str, number: int, *, pull: bool = False) -> list[CommentSeen]:
        """The notes people wrote on issue ``number`` (``pull``: on merge request
        ``number``), GitLab's system notes left out, oldest first."""
        notes = self.gitlab.notes_on(repo, number, pull=pull)
        return [CommentSeen(n.id, n.author, n.body) for n in notes if not n.system]

    def pulls(self, repo: str) -> list[PullSeen]:
        return [
            PullSeen(m.iid, m.title, m.description, m.source_branch, m.sha, m.draft, m.state)
            for m in self.gitlab.mrs(repo)
        ]

    def close_issue(self, repo: str, number: int) -> None:
        self.gitlab.close_issue(repo, number)

    def merge_pull(self, repo: str, number: int, *, by: str) -> None:
        self.gitlab.merge_mr(repo, number, by=by)

    def submit_review(self, repo: str, number: int, author: str, state: str, body: str) -> int:
        """A review asking for changes, as GitLab Free has one: a note on the merge request
        (``state`` says nothing more here); its id."""
        return self.gitlab.add_note(repo, number, body, author=author, pull=True)

    def branches(self, repo: str) -> dict[str, str]:
        return self.gitlab.branches(repo)


@dataclass(frozen=True)
class GitLabForge(Forge):
    """The GitLab kind on the fake (``fake`` a :class:`GitLabSeen`): the verbs of
    :class:`~tests.integration.forge.kinds.Forge`, in GitLab's words."""

    def labelled(
        self,
        issue: int,
        label: str,
        secret: bytes,
        *,
        sender: str = WRITER,
        delivery: str | None = None,
        title: str | None = None,
        body: str | None = None,
        at: datetime | None = None,
    ) -> tuple[dict[str, str], bytes]:
        given = {"title": title, "body": body, "at": at}
        more: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
        event = gitlab_issue(
            "update", repo=SLUG, number=issue, sender=sender, author=WRITER, labels=[label],
            previous_labels=[], **more,
        )  # fmt: skip
        return gitlab_delivery(*event, token=secret.decode(), delivery=delivery)

    def commented(
        self, issue: int, sender: str, body: str, secret: bytes, *, pull: bool = False
    ) -> tuple[dict[str, str], bytes]:
        """``sender``'s note ``body`` on issue ``issue`` (``pull``: on merge request
        ``issue``), and the delivery, with the hook's token ``secret``, telling of it."""
        made = self.fake.gitlab.add_note(REPO, issue, body, author=sender, pull=pull)
        event = gitlab_note(
            repo=SLUG, number=issue, sender=sender, body=body, note_id=made,
            on="MergeRequest" if pull else "Issue",
        )  # fmt: skip
        return gitlab_delivery(*event, token=secret.decode())

    def changes_asked(
        self, number: int, head: str, words: str, secret: bytes
    ) -> tuple[dict[str, str], bytes]:
        """A writer's note asking for changes on merge request ``number``: GitLab Free has
        no review object; a note on the merge request is how changes are asked."""
        made = self.fake.gitlab.add_note(REPO, number, words, author=WRITER, pull=True)
        event = gitlab_note(
            repo=SLUG, number=number, sender=WRITER, body=words, note_id=made,
            on="MergeRequest", source_branch=head,
        )  # fmt: skip
        return gitlab_delivery(*event, token=secret.decode())

    def merged(self, number: int, head: str, secret: bytes) -> tuple[dict[str, str], bytes]:
        self.fake.gitlab.merge_mr(REPO, number, by=WRITER)
        event = gitlab_merge_request(
            "merge", repo=SLUG, number=number, sender=WRITER, source_branch=head
        )
        return gitlab_delivery(*event, token=secret.decode())

    def merge_news(self, number: int, head: str, secret: bytes) -> tuple[dict[str, str], bytes]:
        """The delivery telling that merge request ``number`` was merged by the bot (on
        ``merge`` from chat), with the hook's token ``secret``."""
        event = gitlab_merge_request(
            "merge", repo=SLUG, number=number, sender=self.login, source_branch=head
        )
        return gitlab_delivery(*event, token=secret.decode())

    def draft_title(self, title: str) -> str:
        return f"Draft: {title}"

    def issue_url(self, number: int) -> str:
        return f"{self.fake.site}/{SLUG}/-/issues/{number}"

    def pull_url(self, number: int) -> str:
        return f"{self.fake.site}/{SLUG}/-/merge_requests/{number}"

    def label(self, issue: int, label: str, *, by: str) -> None:
        self.fake.gitlab.label(REPO, issue, label, by=by)

    def edits(self, comment: int) -> int:
        """How many edits of note ``comment`` the fake took (answered 200)."""
        return sum(
            1
            for seen in self.fake.requests
            if seen.method == "PUT"
            and seen.path.endswith(f"/notes/{comment}")
            and seen.status == 200
        )

    def meets(self, login: str) -> None:
        self.fake.gitlab.add_user(login)

    def config(self, config: str) -> str:
        lab = config.replace("  gh:\n    kind: github\n", "  lab:\n    kind: gitlab\n")
        return lab.replace("    forge: gh\n", "    forge: lab\n")


def on_gitlab(fake: FakeGitLab, git_dir: Any) -> GitLabForge:
    """The GitLab kind on ``fake``: ``acme/app`` linked to ``git_dir``, :data:`WRITER` a
    Developer, the bot a Maintainer."""
    fake.add_project(REPO)
    fake.link_git(REPO, git_dir)
    fake.add_member(REPO, WRITER, DEVELOPER)
    fake.add_member(REPO, gitlab_api.BOT_LOGIN, MAINTAINER)
    return GitLabForge(
        "gitlab", "lab", GitLabSeen(fake), gitlab_api.BOT_LOGIN, gitlab_api.GITLAB_TOKEN
    )
