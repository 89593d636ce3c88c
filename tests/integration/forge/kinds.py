"""The forge kinds a forge suite runs on — GitHub, Gitea and GitLab (its own in
:mod:`tests.integration.forge.gitlab_kind`), each a strict fake held to its own published
API description — as the room's ``forge_kind`` fixture hands them over: the
fake, the forge's name in the config, Fleetwarden's login and token on it, and how it words
and signs a writer's labelling of an issue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.fakes.forge.webhook_sender import (
    gitea_delivery,
    github_comment,
    github_delivery,
    github_issue,
    github_pull,
    github_review,
)
from tests.fakes.gitea.payloads import comment_event, issue_event, pull_event, review_event
from tests.fakes.github import api as github_api
from tests.fakes.github.api import FakeGitHub
from tests.fakes.github.shapes import WEB
from tests.integration.components import SLUG, WRITER

KINDS = ("github", "gitea", "gitlab")


@dataclass(frozen=True)
class Forge:
    """One forge kind, its fake serving ``acme/app`` on the upstream."""

    kind: str
    name: str  # the forge's name in the config and its webhook's path
    fake: Any  # FakeGitHub or FakeGitea: the same verbs, each in its forge's shapes
    login: str
    pat: str

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
        """The delivery ``delivery`` (a new id when None), signed with ``secret``, telling
        that ``sender`` gave :data:`WRITER`'s ``issue`` (its ``title`` and ``body``, changed
        ``at``, where given) the label ``label``."""
        given = {"title": title, "body": body, "at": at}
        more: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
        if self.kind == "github":
            event = github_issue(
                "labeled", repo=SLUG, number=issue, sender=sender, author=WRITER, label=label,
                **more,
            )  # fmt: skip
            return github_delivery(*event, secret=secret, delivery=delivery)
        name, payload = issue_event(
            "label_updated", repo=SLUG, number=issue, sender=sender, author=WRITER,
            labels=[label], **more,
        )  # fmt: skip
        return gitea_delivery(name, payload, secret=secret, delivery=delivery)

    def commented(
        self, issue: int, sender: str, body: str, secret: bytes, *, pull: bool = False
    ) -> tuple[dict[str, str], bytes]:
        """``sender``'s comment ``body`` made on ``issue``, and the delivery, signed with
        ``secret``, telling of it."""
        made = self.fake.add_comment(str(SLUG), issue, body, author=sender)
        if self.kind == "github":
            event = github_comment(
                repo=SLUG, number=issue, sender=sender, body=body, comment_id=made
            )
            return github_delivery(*event, secret=secret)
        name, payload = comment_event(
            repo=SLUG, number=issue, sender=sender, body=body, comment_id=made
        )
        return gitea_delivery(name, payload, secret=secret)

    def changes_asked(
        self, number: int, head: str, words: str, secret: bytes
    ) -> tuple[dict[str, str], bytes]:
        """:data:`WRITER`'s review asking for changes (``words``) on pull request ``number``
        of branch ``head``, and the delivery, signed with ``secret``, telling of it."""
        if self.kind == "github":
            self.fake.submit_review(str(SLUG), number, WRITER, "CHANGES_REQUESTED", words)
            event = github_review(repo=SLUG, number=number, sender=WRITER, body=words, head=head)
            return github_delivery(*event, secret=secret)
        self.fake.submit_review(str(SLUG), number, WRITER, "REQUEST_CHANGES", words)
        name, payload = review_event(
            "rejected", repo=SLUG, number=number, sender=WRITER, body=words, head=head,
            author=self.login,
        )  # fmt: skip
        return gitea_delivery(name, payload, secret=secret)

    def merged(self, number: int, head: str, secret: bytes) -> tuple[dict[str, str], bytes]:
        """Pull request ``number`` of branch ``head`` merged on the forge by :data:`WRITER`,
        and the delivery, signed with ``secret``, telling of it."""
        self.fake.merge_pull(str(SLUG), number, by=WRITER)
        if self.kind == "github":
            event = github_pull(
                "closed", repo=SLUG, number=number, sender=WRITER, head=head, merged=True
            )
            return github_delivery(*event, secret=secret)
        name, payload = pull_event(
            "closed", repo=SLUG, number=number, sender=WRITER, head=head, merged=True
        )
        return gitea_delivery(name, payload, secret=secret)

    @property
    def stale_status(self) -> int:
        """What a stale delivery is answered: 400 (GitLab: 200, "ignored, stale" — GitLab
        turns off a hook that fails, so every valid delivery is answered 2xx)."""
        return 200 if self.kind == "gitlab" else 400

    def draft_title(self, title: str) -> str:
        """``title`` as the forge shows it on a draft pull request: GitHub's alone (a draft is
        a flag there), Gitea's after its ``WIP: `` prefix (its own way of marking one)."""
        return title if self.kind == "github" else f"WIP: {title}"

    def issue_url(self, number: int) -> str:
        """Where issue ``number`` of ``acme/app`` is on the forge's site, as its API says."""
        if self.kind == "github":
            return f"{WEB}/{SLUG}/issues/{number}"
        return f"{self.fake.site}/{SLUG}/issues/{number}"

    def pull_url(self, number: int) -> str:
        """Where pull request ``number`` of ``acme/app`` is on the forge's site (GitHub's
        ``/pull/``, Gitea's ``/pulls/``)."""
        if self.kind == "github":
            return f"{WEB}/{SLUG}/pull/{number}"
        return f"{self.fake.site}/{SLUG}/pulls/{number}"

    def label(self, issue: int, label: str, *, by: str) -> None:
        """``by`` gives ``issue`` the label ``label`` on the forge, as its record of the
        issue's changes keeps it."""
        if self.kind == "github":
            self.fake.label(str(SLUG), issue, label, by=by)
        else:
            self.fake.add_label(str(SLUG), issue, label, by=by)

    def edits(self, comment: int) -> int:
        """How many edits of comment ``comment`` on ``acme/app`` the forge took (answered
        200)."""
        path = f"/repos/{SLUG}/issues/comments/{comment}"
        if self.kind == "gitea":
            path = f"/api/v1{path}"
        edited = ("PATCH", path, 200)
        return sum(
            1 for seen in self.fake.requests if (seen.method, seen.path, seen.status) == edited
        )

    def meets(self, login: str) -> None:
        """``login`` is on the forge, with no access to ``acme/app`` (GitHub's fake knows
        every login; Gitea's only those it was given)."""
        if self.kind == "gitea":
            self.fake.add_user(login)

    def config(self, config: str) -> str:
        """``config`` (on :data:`~tests.integration.forge_rig.APP_ON_GITHUB`) with its forge
        of this kind."""
        if self.kind == "github":
            return config
        gitea = config.replace("  gh:\n    kind: github\n", "  tea:\n    kind: gitea\n")
        return gitea.replace("    forge: gh\n", "    forge: tea\n")


def on_github(fake: FakeGitHub) -> Forge:
    """The GitHub kind on ``fake``, Fleetwarden's login and token on it the fake's own."""
    return Forge("github", "gh", fake, github_api.BOT_LOGIN, github_api.DEFAULT_PAT)
