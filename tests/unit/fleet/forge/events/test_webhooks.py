"""Tests for fleet.forge.events.webhooks: signatures checked as GitHub and Gitea make them, every
GitHub example payload read, Gitea's own event types read as Gitea sends them, and stale
events told apart."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fleet.forge.events.delivery import MAX_BODY, BadDelivery, stale, verify
from fleet.forge.events.webhooks import parse
from fleet.forge.model import EventKind, ForgeEvent
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import Slug
from tests.fakes.forge.webhook_sender import (
    gitea_delivery,
    github_comment,
    github_delivery,
    github_example,
    github_examples,
    github_issue,
    github_pull,
    github_review,
    sign_gitea,
    sign_github,
)
from tests.fakes.gitea import payloads as gitea
from tests.forge_data import WEBHOOK_EXAMPLES

SECRET = b"It's a Secret to Everybody"
REPO = Slug("acme", "app")
AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
GITEA = ForgeEntry(
    kind="gitea",
    api_url="https://gitea.example.com/api/v1",
    token_env="GITEA_TOKEN",
    webhook_secret_env="GITEA_HOOK_SECRET",
    login="fw-bot",
    agent="coder",
)


def _all_examples() -> list[tuple[str, int]]:
    data = json.loads((WEBHOOK_EXAMPLES / "index.json").read_text(encoding="utf-8"))
    return [(entry["name"], i) for entry in data for i in range(len(entry["examples"]))]


def _github(event: str, payload: dict[str, Any]) -> ForgeEvent:
    headers, body = github_delivery(event, payload, secret=SECRET)
    verify("github", SECRET, headers, body)
    return parse("gh", "github", headers, body)


def _gitea(event_type: str, payload: dict[str, Any], **more: Any) -> ForgeEvent:
    headers, body = gitea_delivery(event_type, payload, secret=SECRET, **more)
    verify("gitea", SECRET, headers, body)
    return parse("tea", "gitea", headers, body, entry=GITEA)


def _refused(kind: Any, headers: dict[str, str], body: bytes, secret: bytes = SECRET) -> int:
    with pytest.raises(BadDelivery) as refused:
        verify(kind, secret, headers, body)
    assert "expected" not in refused.value.why
    assert sign_gitea(secret, body) not in str(refused.value) if secret else True
    return refused.value.status


# -- signatures ---------------------------------------------------------------------------


def test_the_signature_is_the_one_github_documents() -> None:
    """The signature is GitHub's documented example: the secret and body of its docs."""
    # https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries
    expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign_github(SECRET, b"Hello, World!") == f"sha256={expected}"
    assert sign_gitea(SECRET, b"Hello, World!") == expected


@pytest.mark.parametrize("event", ["issues", "issue_comment", "pull_request", "ping"])
def test_a_github_delivery_signed_as_github_signs_is_taken(event: str) -> None:
    """A delivery signed with the secret passes, the headers read in any case."""
    headers, body = github_delivery(event, github_example(event), secret=SECRET)
    verify("github", SECRET, headers, body)
    verify("github", SECRET, {k.lower(): v for k, v in headers.items()}, body)


def test_an_unsigned_github_delivery_is_refused() -> None:
    """No signature (the hook has no secret) is 401, and so is an empty one."""
    headers, body = github_delivery("issues", github_example("issues"), secret=b"")
    assert "X-Hub-Signature-256" not in headers
    assert _refused("github", headers, body) == 401
    assert _refused("github", {**headers, "X-Hub-Signature-256": ""}, body) == 401


def test_a_mis_signed_github_delivery_is_refused() -> None:
    """Another secret, a changed body, SHA-1 alone or a bare hex are all 401."""
    headers, body = github_delivery("issues", github_example("issues"), secret=b"other")
    assert _refused("github", headers, body) == 401
    headers, body = github_delivery("issues", github_example("issues"), secret=SECRET)
    assert _refused("github", headers, body.replace(b"Codertocat", b"Codertocaz")) == 401
    sha1_only = {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}
    assert _refused("github", sha1_only, body) == 401
    bare = {**headers, "X-Hub-Signature-256": sign_gitea(SECRET, body)}
    assert _refused("github", bare, body) == 401
    assert _refused("github", {**headers, "X-Hub-Signature-256": "sha256=zz\u00e9"}, body) == 401


def test_no_secret_set_takes_nothing() -> None:
    """With an empty secret nothing passes, not even a delivery signed with it."""
    headers, body = github_delivery("issues", github_example("issues"), secret=b"")
    signed = {**headers, "X-Hub-Signature-256": sign_github(b"", body)}
    assert _refused("github", signed, body, secret=b"") == 401


def test_a_signed_delivery_without_its_names_is_a_bad_request() -> None:
    """Signed but without the event or delivery header (or a malformed one): 400."""
    headers, body = github_delivery("issues", github_example("issues"), secret=SECRET)
    for name in ("X-GitHub-Event", "X-GitHub-Delivery"):
        assert _refused("github", {k: v for k, v in headers.items() if k != name}, body) == 400
    assert _refused("github", {**headers, "X-GitHub-Delivery": "a b\nc"}, body) == 400
    assert _refused("github", {**headers, "X-GitHub-Event": "Issues!"}, body) == 400


def test_an_unsigned_delivery_learns_nothing_more() -> None:
    """Unsigned and without names, the answer is 401: the signature is checked first."""
    assert _refused("github", {}, b"{}") == 401
    assert _refused("gitea", {}, b"{}") == 401


def test_a_body_over_the_cap_is_refused() -> None:
    """A body over 5 MiB is 413, signed or not."""
    body = b" " * (MAX_BODY + 1)
    headers = {"X-Hub-Signature-256": sign_github(SECRET, body)}
    assert _refused("github", headers, body) == 413


def test_a_gitea_delivery_signed_as_gitea_signs_is_taken() -> None:
    """Gitea's X-Gitea-Signature is taken; without it, the X-Hub-Signature-256 it also
    sends; Forgejo's own header too."""
    headers, body = gitea_delivery(*_gitea_label(["bug"]), secret=SECRET)
    verify("gitea", SECRET, headers, body)
    hub_only = {k: v for k, v in headers.items() if k not in ("X-Gitea-Signature",)}
    verify("gitea", SECRET, hub_only, body)
    headers, body = gitea_delivery(*_gitea_label([]), secret=SECRET, forgejo=True)
    forgejo = {k: v for k, v in headers.items() if not k.startswith(("X-Gitea", "X-Hub"))}
    verify("gitea", SECRET, forgejo, body)


def test_a_mis_signed_gitea_delivery_is_refused() -> None:
    """A wrong X-Gitea-Signature is 401 even beside a right X-Hub-Signature-256, and an
    unsigned Gitea delivery (the hook without a secret) is 401."""
    headers, body = gitea_delivery(*_gitea_label(["bug"]), secret=SECRET)
    wrong = {**headers, "X-Gitea-Signature": sign_gitea(b"other", body)}
    assert _refused("gitea", wrong, body) == 401
    headers, body = gitea_delivery(*_gitea_label(["bug"]), secret=b"")
    assert headers["X-Gitea-Signature"] == ""
    assert _refused("gitea", headers, body) == 401


def test_a_gitea_delivery_is_not_taken_as_github() -> None:
    """A forge configured as GitHub wants GitHub's event header, not Gitea's alone."""
    headers, body = gitea_delivery(*_gitea_label(["bug"]), secret=SECRET)
    names = {k: v for k, v in headers.items() if not k.startswith("X-GitHub")}
    assert _refused("github", names, body) == 400


# -- GitHub's payloads --------------------------------------------------------------------


@pytest.mark.parametrize(("event", "index"), _all_examples())
def test_every_github_example_is_read(event: str, index: int) -> None:
    """Each of GitHub's example payloads, of every event, reads into an event of its
    repository (or none, for an organization's hook)."""
    payload = github_examples(event)[index]
    found = _github(event, payload)
    assert found.name == event and found.forge == "gh"
    full = (payload.get("repository") or {}).get("full_name")
    assert str(found.repo) == (full or "/")


EXPECTED = {
    ("issues", "opened"): EventKind.OPENED,
    ("issues", "labeled"): EventKind.LABELED,
    ("issues", "unlabeled"): EventKind.UNLABELED,
    ("issues", "assigned"): EventKind.ASSIGNED,
    ("issues", "unassigned"): EventKind.UNASSIGNED,
    ("issue_comment", "created"): EventKind.COMMENT,
    ("pull_request", "closed"): EventKind.PULL_CLOSED,
    ("pull_request_review", "submitted"): EventKind.REVIEW,
}


@pytest.mark.parametrize(
    ("event", "index"),
    [(e, i) for e, i in _all_examples() if e in {e for e, _ in EXPECTED} | {"ping"}],
)
def test_the_relevant_github_examples_mean_what_they_say(event: str, index: int) -> None:
    """The examples of the events a run cares about read as their kind, with their
    number, actor and time; all others are OTHER."""
    payload = github_examples(event)[index]
    found = _github(event, payload)
    assert found.kind is EXPECTED.get((event, str(payload.get("action"))), EventKind.OTHER)
    # Labels and assignments are confirmed against the issue's events before anything
    # is done, as on Gitea: the delivery names them, the forge's record says who acted.
    assert found.confirm is (
        found.kind
        in (EventKind.LABELED, EventKind.UNLABELED, EventKind.ASSIGNED, EventKind.UNASSIGNED)
    )
    if event == "ping":
        return
    thing = payload.get("issue") or payload["pull_request"]
    assert found.number == thing["number"]
    assert found.actor == payload["sender"]["login"] == "Codertocat"
    when = {
        "issues": thing["updated_at"],
        "issue_comment": (payload.get("comment") or {}).get("created_at"),
        "pull_request": thing["closed_at"] or thing["updated_at"],
        "pull_request_review": (payload.get("review") or {}).get("submitted_at"),
    }[event]
    assert found.at == datetime.fromisoformat(when)


def test_a_github_label_event_names_its_label() -> None:
    """The labeled example names label ``bug``, issue #1, at the issue's update time."""
    found = _github("issues", github_example("issues", "labeled"))
    assert (found.kind, found.label, found.number) == (EventKind.LABELED, "bug", 1)
    assert found.at == datetime(2019, 5, 15, 15, 20, 18, tzinfo=UTC)
    assert found.repo == Slug("Codertocat", "Hello-World") and not found.is_pull


def test_github_events_built_for_a_test_read_back() -> None:
    """The builders' repository, number, people, labels and times come back out."""
    found = _github(
        *github_issue(
            "labeled", repo=REPO, number=7, sender="alice", label="fleetwarden:coder", at=AT
        )
    )
    assert (found.repo, found.number, found.actor) == (REPO, 7, "alice")
    assert (found.label, found.at) == ("fleetwarden:coder", AT)
    found = _github(*github_issue("unassigned", repo=REPO, number=7, sender="a", assignee="fw-bot"))
    assert (found.kind, found.assignee) == (EventKind.UNASSIGNED, "fw-bot")
    found = _github(*github_issue("opened", repo=REPO, number=9, sender="a", body="@fw-bot fix"))
    assert (found.kind, found.body) == (EventKind.OPENED, "@fw-bot fix")


def test_a_github_comment_on_a_pull_request_is_on_a_pull() -> None:
    """A comment whose issue is a pull request says so, with its id, body and time."""
    event = github_comment(
        repo=REPO, number=8, sender="bob", body="again", comment_id=41, is_pull=True, at=AT
    )
    found = _github(*event)
    assert (found.kind, found.is_pull, found.comment_id) == (EventKind.COMMENT, True, 41)
    assert (found.body, found.at, found.actor) == ("again", AT, "bob")
    plain = _github(*github_comment(repo=REPO, number=3, sender="bob", body="x"))
    assert not plain.is_pull and plain.number == 3


def test_github_pull_requests_close_merged_or_not() -> None:
    """A closed pull request says whether it was merged, and its branch."""
    for merged in (True, False):
        event = github_pull("closed", repo=REPO, number=8, sender="bob", merged=merged, head="b")
        found = _github(*event)
        assert (found.kind, found.merged, found.head) == (EventKind.PULL_CLOSED, merged, "b")
    assert _github(*github_pull("opened", repo=REPO, number=8, sender="bob")).kind is (
        EventKind.OTHER
    )


def test_a_github_review_names_its_state() -> None:
    """A submitted review reads lowercased state, body, id and submission time."""
    event = github_review(
        repo=REPO, number=8, sender="bob", state="changes_requested", review_id=9, at=AT
    )
    found = _github(*event)
    assert (found.kind, found.review_state, found.comment_id) == (
        EventKind.REVIEW,
        "changes_requested",
        9,
    )
    assert (found.at, found.body, found.is_pull) == (AT, "Please change this.", True)


def test_a_payload_that_is_not_its_event_is_a_bad_request() -> None:
    """Not JSON, not an object, or without the issue's number: 400."""
    for body in (b"not json", b"[1, 2]"):
        headers, _ = github_delivery("issues", {}, secret=SECRET)
        with pytest.raises(BadDelivery) as refused:
            parse("gh", "github", headers, body)
        assert refused.value.status == 400
    payload = github_example("issues", "labeled")
    del payload["issue"]["number"]
    headers, body = github_delivery("issues", payload, secret=SECRET)
    with pytest.raises(BadDelivery, match=r"issue\.number"):
        parse("gh", "github", headers, body)
    payload = github_example("issue_comment", "created")
    payload["comment"]["created_at"] = "yesterday"
    headers, body = github_delivery("issue_comment", payload, secret=SECRET)
    with pytest.raises(BadDelivery, match="not a time"):
        parse("gh", "github", headers, body)


# -- Gitea's payloads ---------------------------------------------------------------------


def _gitea_label(labels: list[str], action: str = "label_updated") -> tuple[str, dict[str, Any]]:
    return gitea.issue_event(action, repo=REPO, number=7, sender="alice", labels=labels, at=AT)


def test_gitea_label_events_read_the_labels_the_issue_now_has() -> None:
    """Gitea names no label: a trigger label present is LABELED with it; none left is
    UNLABELED with no label; label_cleared the same."""
    found = _gitea(*_gitea_label(["bug", "fleetwarden:coder"]))
    assert (found.kind, found.label, found.name) == (
        EventKind.LABELED,
        "fleetwarden:coder",
        "issue_label",
    )
    assert (found.repo, found.number, found.actor, found.at) == (REPO, 7, "alice", AT)
    found = _gitea(*_gitea_label(["bug"]))
    assert (found.kind, found.label) == (EventKind.UNLABELED, None)
    found = _gitea(*_gitea_label([], "label_cleared"))
    assert (found.kind, found.label) == (EventKind.UNLABELED, None)
    assert _gitea_label([])[0] == "issue_label"


def test_gitea_assignment_events_read_the_assignees_the_issue_now_has() -> None:
    """Assigned with the bot among the assignees is ASSIGNED to it; to others, to nobody
    known; unassigned with the bot gone is UNASSIGNED from it."""

    def event(action: str, assignees: list[str]) -> ForgeEvent:
        return _gitea(
            *gitea.issue_event(action, repo=REPO, number=7, sender="al", assignees=assignees)
        )

    assert event("assigned", ["al", "fw-bot"]).assignee == "fw-bot"
    assert event("assigned", ["al"]).assignee is None
    found = event("unassigned", ["al"])
    assert (found.kind, found.assignee, found.name) == (
        EventKind.UNASSIGNED,
        "fw-bot",
        "issue_assign",
    )
    assert event("unassigned", ["fw-bot"]).assignee is None
    # Logins name one account whatever their case, as the forge matches them.
    assert event("assigned", ["al", "FW-Bot"]).assignee == "fw-bot"
    assert event("unassigned", ["FW-BOT"]).assignee is None


def test_gitea_label_and_assignment_events_are_to_be_confirmed() -> None:
    """Gitea's label and assignment events, read from how the issue now is, are marked
    ``confirm`` (a writer adding ``bug`` beside someone else's trigger label reads as
    LABELED until forge work asks the forge which change it was); opened and closed, and
    comments, are not."""
    to_confirm = [
        _gitea(*_gitea_label(["bug", "fleetwarden:coder"])),
        _gitea(*_gitea_label([], "label_cleared")),
        _gitea(*gitea.issue_event("assigned", repo=REPO, number=7, sender="al")),
        _gitea(*gitea.issue_event("unassigned", repo=REPO, number=7, sender="al")),
    ]
    assert all(found.confirm for found in to_confirm)
    for action in ("opened", "closed"):
        assert not _gitea(*gitea.issue_event(action, repo=REPO, number=7, sender="al")).confirm


def test_gitea_issue_events_open_and_close() -> None:
    """An issue opened carries its body; closed is CLOSED; edited is OTHER."""
    event = gitea.issue_event("opened", repo=REPO, number=4, sender="al", body="@fw-bot do it")
    found = _gitea(*event)
    assert (found.kind, found.body, found.name) == (EventKind.OPENED, "@fw-bot do it", "issues")
    assert _gitea(*gitea.issue_event("closed", repo=REPO, number=4, sender="al")).kind is (
        EventKind.CLOSED
    )
    assert _gitea(*gitea.issue_event("edited", repo=REPO, number=4, sender="al")).kind is (
        EventKind.OTHER
    )


def test_gitea_comments_on_issues_and_pulls() -> None:
    """issue_comment and pull_request_comment are COMMENTs, the latter on a pull."""
    event = gitea.comment_event(repo=REPO, number=3, sender="bob", body="hi", comment_id=12, at=AT)
    found = _gitea(*event)
    assert (found.kind, found.is_pull, found.comment_id, found.at) == (
        EventKind.COMMENT,
        False,
        12,
        AT,
    )
    event = gitea.comment_event(repo=REPO, number=8, sender="bob", body="more", is_pull=True)
    found = _gitea(*event)
    assert (found.kind, found.is_pull, found.body, found.name) == (
        EventKind.COMMENT,
        True,
        "more",
        "pull_request_comment",
    )
    edited = gitea.comment_event(repo=REPO, number=8, sender="b", body="x", action="edited")
    assert _gitea(*edited).kind is EventKind.OTHER


@pytest.mark.parametrize(
    ("kind", "state"),
    [("approved", "approved"), ("rejected", "changes_requested"), ("comment", "commented")],
)
def test_gitea_reviews_read_their_state_from_the_event_type(kind: str, state: str) -> None:
    """Gitea's three review event types are REVIEWs of the matching state."""
    event = gitea.review_event(kind, repo=REPO, number=8, sender="bob", body="no", at=AT)
    found = _gitea(*event)
    assert (found.kind, found.review_state, found.body) == (EventKind.REVIEW, state, "no")
    assert (found.number, found.actor, found.at, found.head) == (8, "bob", AT, "changes")


def test_an_older_gitea_without_event_types_is_read_from_its_event() -> None:
    """Without X-Gitea-Event-Type, ``pull_request_rejected`` is still a changes request."""
    event_type, payload = gitea.review_event("rejected", repo=REPO, number=8, sender="bob")
    headers, body = gitea_delivery(event_type, payload, secret=SECRET)
    old = {k: v for k, v in headers.items() if not k.endswith("Event-Type")}
    assert old["X-Gitea-Event"] == "pull_request_rejected"
    found = parse("tea", "gitea", old, body, entry=GITEA)
    assert (found.kind, found.review_state) == (EventKind.REVIEW, "changes_requested")


def test_gitea_pull_requests_close_merged_or_not() -> None:
    """Gitea says ``closed`` for a merge too; ``merged`` tells them apart."""
    for merged in (True, False):
        event = gitea.pull_event("closed", repo=REPO, number=8, sender="b", merged=merged)
        found = _gitea(*event)
        assert (found.kind, found.merged, found.head) == (EventKind.PULL_CLOSED, merged, "changes")
    sync = gitea.pull_event("synchronized", repo=REPO, number=8, sender="b")
    assert _gitea(*sync).kind is EventKind.OTHER


# -- staleness ----------------------------------------------------------------------------


def test_an_event_older_than_the_limit_is_stale() -> None:
    """Past the limit (seconds or a timedelta) an event is stale; within it, not."""
    found = _github(*github_comment(repo=REPO, number=3, sender="b", body="x", at=AT))
    assert not stale(found, AT + timedelta(seconds=3600), 3600)
    assert stale(found, AT + timedelta(seconds=3601), 3600)
    assert stale(found, AT + timedelta(hours=2), timedelta(hours=1))
    assert not stale(found, AT - timedelta(minutes=5), 60)


def test_an_event_that_moves_nothing_is_never_stale() -> None:
    """A ping (OTHER) from 2019 is not stale: refusing it would only show a failure."""
    found = _github("ping", github_example("ping"))
    assert found.kind is EventKind.OTHER
    assert not stale(found, AT, 60)
