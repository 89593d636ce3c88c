"""Tests for tests.fakes.gitlab.hooks and gitlab_payloads: every builder's delivery carries
the headers GitLab sends and a payload with the fields GitLab's docs list for its event
(``webhook_events.md``, GitLab 18), and reads back through Fleetwarden's own intake."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from fleet.forge.events.delivery import DeliveryHeaders, HookKeys
from fleet.forge.events.webhooks import from_http
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import Slug
from tests.fakes.gitlab.hooks import (
    GITLAB_HOOK_TOKEN,
    GITLAB_SIGNING_TOKEN,
    GITLAB_URL,
    gitlab_delivery,
    gitlab_issue,
    gitlab_merge_request,
    gitlab_note,
    gitlab_push,
)

REPO = Slug("acme/platform", "app")
AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
ENTRY = ForgeEntry(
    kind="gitlab",
    token_env="GITLAB_TOKEN",
    webhook_secret_env="GL_HOOK",
    signing_secret_env="GL_SIGNING",
    login="fleetwarden-bot",
)

# The fields GitLab's docs show for each object (the deprecated ones it still sends too).
USER = {"id", "name", "username", "avatar_url", "email"}
PROJECT = {
    "id", "name", "description", "web_url", "avatar_url", "git_ssh_url", "git_http_url",
    "namespace", "visibility_level", "path_with_namespace", "default_branch", "homepage",
    "url", "ssh_url", "http_url",
}  # fmt: skip
REPOSITORY = {"name", "url", "description", "homepage"}
LABEL = {
    "id", "title", "color", "project_id", "created_at", "updated_at", "template",
    "description", "type", "group_id",
}  # fmt: skip
ISSUE = {
    "id", "iid", "title", "description", "assignee_ids", "assignee_id", "author_id",
    "project_id", "created_at", "updated_at", "updated_by_id", "confidential", "milestone_id",
    "state_id", "state", "type", "url", "labels", "discussion_locked", "due_date",
}  # fmt: skip
MERGE_REQUEST = {
    "id", "iid", "target_branch", "source_branch", "source_project_id", "target_project_id",
    "author_id", "assignee_ids", "assignee_id", "reviewer_ids", "title", "description",
    "created_at", "updated_at", "milestone_id", "state_id", "state", "merge_status",
    "detailed_merge_status", "work_in_progress", "draft", "url", "source", "target",
    "last_commit", "labels",
}  # fmt: skip
NOTE = {
    "id", "note", "noteable_type", "author_id", "created_at", "updated_at", "project_id",
    "attachment", "line_code", "commit_id", "noteable_id", "system", "st_diff", "url",
}  # fmt: skip
TOP = {"object_kind", "event_type", "user", "project", "repository", "object_attributes"}


def _has(fields: set[str], found: dict[str, Any]) -> None:
    missing = fields - set(found)
    assert not missing, f"missing {sorted(missing)}"


def _common(payload: dict[str, Any]) -> None:
    _has(TOP, payload)
    _has(USER, payload["user"])
    _has(PROJECT, payload["project"])
    _has(REPOSITORY, payload["repository"])
    assert payload["project"]["path_with_namespace"] == str(REPO)


def test_an_issue_hook_has_the_documented_fields() -> None:
    """An Issue Hook: object_attributes with the action, labels and assignees at the top,
    ``changes`` of labels and assignees as previous/current."""
    name, payload = gitlab_issue(
        "update", repo=REPO, number=3, sender="wendy", labels=["a"], previous_labels=[],
        assignees=["ann"], previous_assignees=[], at=AT,
    )  # fmt: skip
    assert (name, payload["object_kind"], payload["event_type"]) == ("Issue Hook", "issue", "issue")
    _common(payload)
    _has(ISSUE | {"action"}, payload["object_attributes"])
    assert payload["object_attributes"]["iid"] == 3 and payload["object_attributes"]["id"] != 3
    for label in payload["labels"] + payload["changes"]["labels"]["current"]:
        _has(LABEL, label)
    _has(USER, payload["assignees"][0])
    assert payload["changes"]["labels"]["previous"] == []
    assert [u["username"] for u in payload["changes"]["assignees"]["current"]] == ["ann"]
    assert payload["changes"]["updated_at"]["current"] == "2026-03-04 05:06:07 UTC"
    assert payload["object_attributes"]["updated_at"] == "2026-03-04T05:06:07Z"


def test_note_hooks_carry_what_they_are_on() -> None:
    """A Note Hook on an issue carries ``issue``, on a merge request ``merge_request``."""
    for on, key, fields in (
        ("Issue", "issue", ISSUE),
        ("MergeRequest", "merge_request", MERGE_REQUEST),
    ):
        name, payload = gitlab_note(repo=REPO, number=3, sender="wendy", body="hi", on=on)
        assert (name, payload["object_kind"]) == ("Note Hook", "note")
        _common(payload)
        _has(NOTE | {"action"}, payload["object_attributes"])
        _has(fields, payload[key])
        assert payload[key]["iid"] == 3 and payload["object_attributes"]["noteable_type"] == on
    assert gitlab_note(repo=REPO, number=3, sender="w", body="x", internal=True)[0] == (
        "Confidential Note Hook"
    )


def test_a_merge_request_hook_has_the_documented_fields() -> None:
    """A Merge Request Hook: its object_attributes with the action, source and target."""
    name, payload = gitlab_merge_request("merge", repo=REPO, number=3, sender="wendy")
    assert (name, payload["object_kind"]) == ("Merge Request Hook", "merge_request")
    _common(payload)
    _has(MERGE_REQUEST | {"action"}, payload["object_attributes"])
    _has(PROJECT, payload["object_attributes"]["source"])
    assert payload["object_attributes"]["state"] == "merged"
    assert {"labels", "changes", "assignees", "reviewers"} <= set(payload)


def test_a_delivery_has_gitlab_s_headers() -> None:
    """The headers GitLab's docs list, the Standard Webhooks three when signed (its id the
    Idempotency-Key), and Rails' escapes in the body."""
    event = gitlab_note(repo=REPO, number=3, sender="w", body="a & <b>")
    headers, body = gitlab_delivery(
        *event, token=GITLAB_HOOK_TOKEN, signing_key=GITLAB_SIGNING_TOKEN, delivery="k-1", at=AT
    )
    assert headers["X-Gitlab-Event"] == "Note Hook"
    assert headers["X-Gitlab-Token"] == GITLAB_HOOK_TOKEN
    assert headers["X-Gitlab-Instance"] == GITLAB_URL
    assert headers["User-Agent"].startswith("GitLab/")
    assert headers["Idempotency-Key"] == headers["webhook-id"] == "k-1"
    for name in ("X-Gitlab-Webhook-UUID", "X-Gitlab-Event-UUID"):
        uuid.UUID(headers[name])
    assert headers["webhook-timestamp"] == str(int(AT.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    assert b"a \\u0026 \\u003cb\\u003e" in body and json.loads(body) == event[1]
    unsigned, _ = gitlab_delivery(*event)
    assert not {"X-Gitlab-Token", "webhook-signature"} & set(unsigned)


@pytest.mark.parametrize(
    "event",
    [
        gitlab_issue("open", repo=REPO, number=3, sender="wendy", at=AT),
        gitlab_note(repo=REPO, number=3, sender="wendy", body="hi", at=AT),
        gitlab_merge_request("close", repo=REPO, number=3, sender="wendy", at=AT),
        gitlab_push(repo=REPO, sender="wendy"),
    ],
    ids=["issue", "note", "merge_request", "push"],
)
def test_each_delivery_is_taken_by_the_intake(event: tuple[str, dict[str, Any]]) -> None:
    """Each builder's delivery, token and signature both, passes Fleetwarden's checks and
    reads as an event of its project."""
    headers, body = gitlab_delivery(
        *event, token=GITLAB_HOOK_TOKEN, signing_key=GITLAB_SIGNING_TOKEN, at=AT
    )
    keys = HookKeys.of(ENTRY, GITLAB_HOOK_TOKEN.encode(), GITLAB_SIGNING_TOKEN.encode())
    read = from_http("gl", ENTRY, keys, DeliveryHeaders.read("gitlab", headers), body, AT)
    assert read.repo == REPO and read.delivery == headers["Idempotency-Key"]
