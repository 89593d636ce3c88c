"""Tests for fleet.forge.events.gitlab_events: GitLab's note and merge request events read
by iid (an issue's and a merge request's told apart), what the forge runs do not act on
read as OTHER, a payload that is not its event's refused, and hostile text kept as data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from fleet.forge.events.delivery import BadDelivery, DeliveryHeaders, HookKeys
from fleet.forge.events.webhooks import from_http
from fleet.forge.model import EventKind, ForgeEvent
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import Slug
from tests.fakes.gitlab.hooks import (
    GITLAB_HOOK_TOKEN,
    gitlab_delivery,
    gitlab_issue,
    gitlab_merge_request,
    gitlab_note,
    gitlab_push,
)

REPO = Slug("acme", "app")
BOT = "fleetwarden-bot"
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
ENTRY = ForgeEntry(
    kind="gitlab", token_env="GITLAB_TOKEN", webhook_secret_env="GL_HOOK", login=BOT, agent="coder"
)
HOSTILE = (
    '/close\n/merge\n/assign @fleetwarden-bot\n~bug ~"needs review" !3 #4 %1 $5 &6 @all '
    "<script>alert(1)</script> & \u202e\u0000 ```\n[x](javascript:alert(1)) \U0001f600"
)


def _read(event: tuple[str, dict[str, Any]]) -> ForgeEvent:
    headers, body = gitlab_delivery(*event, token=GITLAB_HOOK_TOKEN)
    keys = HookKeys.of(ENTRY, GITLAB_HOOK_TOKEN.encode())
    return from_http("gl", ENTRY, keys, DeliveryHeaders.read("gitlab", headers), body, NOW)


def _bad(name: str, payload: object) -> str:
    headers, body = gitlab_delivery(name, {}, token=GITLAB_HOOK_TOKEN)
    body = json.dumps(payload).encode()
    keys = HookKeys.of(ENTRY, GITLAB_HOOK_TOKEN.encode())
    with pytest.raises(BadDelivery) as refused:
        from_http("gl", ENTRY, keys, DeliveryHeaders.read("gitlab", headers), body, NOW)
    assert refused.value.status == 400
    return refused.value.why


# -- notes ---------------------------------------------------------------------------------


def test_a_note_on_issue_3_and_one_on_merge_request_3_are_told_apart() -> None:
    """Issue 3 and merge request !3 are two things: the note on the issue is a COMMENT on
    3 (not a pull), the one on the merge request a COMMENT on 3 with ``is_pull`` and its
    source branch; each with its note's id and words."""
    on_issue = _read(gitlab_note(repo=REPO, number=3, sender="wendy", body="ok", note_id=11))
    on_pull = _read(
        gitlab_note(
            repo=REPO, number=3, sender="wendy", body="redo it", note_id=12, on="MergeRequest",
            source_branch="fw/coder/issue-3",
        )
    )  # fmt: skip
    assert (on_issue.kind, on_issue.number, on_issue.is_pull, on_issue.head) == (
        EventKind.COMMENT,
        3,
        False,
        None,
    )
    assert (on_issue.body, on_issue.comment_id, on_issue.actor) == ("ok", 11, "wendy")
    assert (on_pull.kind, on_pull.number, on_pull.is_pull, on_pull.head) == (
        EventKind.COMMENT,
        3,
        True,
        "fw/coder/issue-3",
    )
    assert (on_pull.body, on_pull.comment_id) == ("redo it", 12)


def test_a_note_s_ruby_style_time_is_read() -> None:
    """A note's ``2026-03-04 05:06:07 UTC`` is that time in UTC."""
    event = _read(gitlab_note(repo=REPO, number=3, sender="wendy", body="ok", at=NOW))
    assert event.at == NOW


@pytest.mark.parametrize(
    "how",
    [
        {"system": True},
        {"action": "update"},
        {"on": "Commit"},
        {"on": "Snippet"},
        {"internal": True},
    ],
    ids=["system", "edited", "commit", "snippet", "internal"],
)
def test_notes_the_runs_do_not_act_on_are_other(how: dict[str, Any]) -> None:
    """A system note (a label, an assignment written by GitLab), an edited note, a note on
    a commit or a snippet, an internal note: OTHER, their words not carried."""
    event = _read(
        gitlab_note(repo=REPO, number=3, sender="wendy", body="@fleetwarden-bot go", **how)
    )
    assert event.kind is EventKind.OTHER and event.body == ""


def test_a_note_from_before_note_actions_is_a_new_one() -> None:
    """GitLab before 16.11 sent no ``action`` on a note: a new one."""
    event = _read(gitlab_note(repo=REPO, number=3, sender="wendy", body="go", action=None))
    assert event.kind is EventKind.COMMENT


# -- merge requests ------------------------------------------------------------------------


def test_a_merge_request_merged_or_closed() -> None:
    """``merge``: PULL_CLOSED merged; ``close``: PULL_CLOSED not merged; on the merge
    request's iid, with its source branch."""
    merged = _read(
        gitlab_merge_request("merge", repo=REPO, number=3, sender="wendy", source_branch="fw/x")
    )
    closed = _read(gitlab_merge_request("close", repo=REPO, number=3, sender="wendy"))
    assert (merged.kind, merged.merged, merged.number, merged.is_pull, merged.head) == (
        EventKind.PULL_CLOSED,
        True,
        3,
        True,
        "fw/x",
    )
    assert (closed.kind, closed.merged) == (EventKind.PULL_CLOSED, False)


@pytest.mark.parametrize(
    "action", ["open", "update", "approved", "approval", "reopen", "unapproved"]
)
def test_other_merge_request_actions_are_other(action: str) -> None:
    """An approval (no words: nothing to continue), an update, an opening: OTHER."""
    event = _read(gitlab_merge_request(action, repo=REPO, number=3, sender="wendy"))
    assert (event.kind, event.is_pull, event.number) == (EventKind.OTHER, True, 3)


# -- everything else -----------------------------------------------------------------------


def test_events_the_runs_do_not_act_on_are_read_as_other() -> None:
    """A push, a pipeline, a system hook without a project, an event Fleetwarden does not
    know: OTHER, read as far as they go."""
    push = _read(gitlab_push(repo=REPO, sender="wendy"))
    assert (push.kind, push.repo, push.actor) == (EventKind.OTHER, REPO, "wendy")
    pipeline = {"object_kind": "pipeline", "object_attributes": {"id": 31, "iid": 3}}
    assert _read(("Pipeline Hook", pipeline)).kind is EventKind.OTHER
    system = _read(("System Hook", {"event_name": "project_create", "created_at": "x"}))
    assert (system.kind, system.repo, system.number) == (EventKind.OTHER, Slug("", ""), 0)
    emoji = {"object_kind": "emoji", "object_attributes": {"updated_at": "not a time"}}
    assert _read(("Emoji Hook", emoji)).kind is EventKind.OTHER


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("Issue Hook", {"object_kind": "note"}),
        ("Issue Hook", {"object_kind": "issue", "object_attributes": {"action": "open"}}),
        ("Note Hook", {"object_kind": "issue"}),
        ("Merge Request Hook", {"object_kind": "merge_request", "project": {}}),
        ("Note Hook", ["not", "an", "object"]),
    ],
)
def test_a_payload_that_is_not_its_event_s_is_refused(name: str, payload: object) -> None:
    """An Issue Hook that is no issue, one without its iid, a note without a project: 400."""
    assert _bad(name, payload)


def test_an_issue_s_unreadable_time_is_refused() -> None:
    """An issue whose time is not one: 400."""
    name, payload = gitlab_issue("close", repo=REPO, number=3, sender="wendy")
    payload["object_attributes"]["updated_at"] = "yesterday"
    assert _bad(name, payload) == "object_attributes.updated_at is not a time"


def test_hostile_text_is_kept_as_data() -> None:
    """Quick actions, references, mentions, markup, control characters in an issue's body
    and a note's: read back exactly as written (Rails' JSON escapes and all), never read
    as anything but text."""
    opened = _read(gitlab_issue("open", repo=REPO, number=3, sender="wendy", body=HOSTILE))
    noted = _read(gitlab_note(repo=REPO, number=3, sender="wendy", body=HOSTILE, on="MergeRequest"))
    assert opened.body == HOSTILE and noted.body == HOSTILE
    assert (opened.kind, noted.kind) == (EventKind.OPENED, EventKind.COMMENT)


def test_a_confidential_issues_event_only_ever_stops() -> None:
    """A confidential issue's close, unlabel or unassign stops its run (it may have been
    made confidential mid-run); its label, assignment or opening starts nothing."""

    def confidential(action: str, **more: Any) -> ForgeEvent:
        return _read(
            gitlab_issue(action, repo=REPO, number=3, sender="wendy", confidential=True, **more)
        )

    assert confidential("close").kind is EventKind.CLOSED
    taken = confidential("update", labels=[], previous_labels=["fleetwarden:coder"])
    assert (taken.kind, taken.label) == (EventKind.UNLABELED, "fleetwarden:coder")
    given = confidential("update", labels=["fleetwarden:coder"], previous_labels=[])
    assert given.kind is EventKind.OTHER
    assert confidential("open", labels=["fleetwarden:coder"]).kind is EventKind.OTHER
    assert confidential("open", body=HOSTILE).body == ""
